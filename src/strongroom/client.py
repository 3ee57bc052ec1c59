"""Client: the vault's operations over HTTP (httpx), satisfying `strongroom.api.VaultAPI`.

`vaultctl --addr URL --token JWT` uses it instead of a local `Vault`, so every command works the
same remotely. Errors come back as the same exception classes the core raises: the server's
`{"error", "code"}` body names the class (`errors.error_for_code`). The `actor` argument
of the protocol is ignored: the server audits the token's user and the socket's
address. The token is sent only in the Authorization header and never appears in an error.
"""

from __future__ import annotations

import builtins
import json as json_module
import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from strongroom import errors
from strongroom.api import Progress, RotationResult
from strongroom.models import (
    DEFAULT_ACTOR,
    Actor,
    AuditAnchor,
    AuditEntry,
    AuditVerification,
    SecretInfo,
    VaultHealth,
    VaultStatus,
    VersionInfo,
)

__all__ = ["Client", "Webhooks"]

_BY_STATUS: dict[int, type[errors.StrongroomError]] = {
    400: errors.InvalidInput,
    401: errors.AuthenticationFailed,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.InvalidInput,
    422: errors.InvalidInput,
    423: errors.VaultLocked,
    429: errors.TooManyAttempts,
    503: errors.StorageUnavailable,
}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _at(text: str) -> datetime:
    moment = _time(text)
    assert moment is not None  # noqa: S101 - required field of the server's response
    return moment


def _duration(ttl: timedelta) -> str:
    seconds = int(ttl.total_seconds())
    if seconds <= 0 or seconds != ttl.total_seconds():
        raise errors.InvalidInput("expires_in must be a positive whole number of seconds")
    return f"{seconds}s"


def _secret(d: dict[str, Any]) -> SecretInfo:
    return SecretInfo(
        d["id"],
        d["path"],
        d.get("description"),
        d["created_by"],
        _at(d["created_at"]),
        _at(d["updated_at"]),
        d["version"],
        _time(d.get("expires_at")),
    )


def _entry(d: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        d["id"],
        _at(d["timestamp"]),
        d.get("secret_id"),
        d.get("path"),
        d["user_id"],
        d["action"],
        d["ip_address"],
        d["success"],
        d.get("error"),
        d.get("request_id"),
    )


class Client:
    """A remote vault. Thread-safe like httpx.Client; close it when done."""

    def __init__(
        self,
        addr: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        ca_cert: str | None = None,
    ) -> None:
        """`ca_cert`: a PEM CA bundle that verifies an `https://` server (default: the system's
        trust store)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = True
        if addr.lower().startswith("http://") and not ca_cert:
            # Plain HTTP never uses a trust store (redirects are not followed), and loading
            # one costs ~40 ms of every CLI call. This context trusts nothing, so it could
            # not verify a server even if one were reached over TLS.
            verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        elif ca_cert:
            try:
                verify = ssl.create_default_context(cafile=ca_cert)
            except (OSError, ssl.SSLError):
                raise errors.InvalidInput(
                    f"CA certificate {ca_cert!r} is unreadable or not PEM"
                ) from None
        self._http = httpx.Client(
            base_url=addr.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
        )
        #: Webhook configuration (Admins): add, list, remove, test.
        self.webhooks = Webhooks(self)

    # -- plumbing -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One request; the JSON object of a 2xx answer.

        Raises:
            StrongroomError: the subclass the server named, or StorageUnavailable when the
                server cannot be reached.
        """
        response, body = self._send(method, url, json=json, params=params)
        if response.is_success and isinstance(body, dict):
            return body
        raise self._error(response, body)

    def _send(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None,
        params: dict[str, Any] | None,
    ) -> tuple[httpx.Response, object]:
        """One request and its JSON body (None when not JSON).

        Raises:
            StorageUnavailable: the server cannot be reached.
        """
        try:
            response = self._http.request(method, url, json=json, params=params)
        except httpx.HTTPError as exc:
            raise errors.StorageUnavailable(
                f"cannot reach the server ({type(exc).__name__})"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        return response, body

    def v1(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """One request to the Vault-compatible API (`/v1/<path>`); its JSON object, or None
        for a 204. Errors map by status (`{"errors": [...]}` gives the message).

        Raises:
            StrongroomError: the subclass for the status, or StorageUnavailable when the server
                cannot be reached.
        """
        response, body = self._send(method, f"/v1/{path}", json=json, params=params)
        if response.is_success:
            return body if isinstance(body, dict) else None
        messages = body.get("errors") if isinstance(body, dict) else None
        text = f"server answered {response.status_code}"
        if isinstance(messages, list) and messages and isinstance(messages[0], str):
            text = messages[0]
        cls = _BY_STATUS.get(response.status_code, errors.StrongroomError)
        if issubclass(cls, errors.TooManyAttempts):
            raise cls(text, retry_after=1.0)
        raise cls(text)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call to the administration endpoints under `/api/vault` (users, policies,
        tokens): `path` is the part after `/api/vault`; returns the JSON answer.

        Raises:
            StrongroomError: the subclass the server named (PermissionDenied, NotFound, ...).
        """
        return self._call(method, "/api/vault" + path, json=body)

    @staticmethod
    def _error(response: httpx.Response, body: object) -> errors.StrongroomError:
        message = code = None
        if isinstance(body, dict):
            message, code = body.get("error"), body.get("code")
        cls = errors.error_for_code(code) if isinstance(code, str) else errors.StrongroomError
        if cls is errors.StrongroomError:
            cls = _BY_STATUS.get(response.status_code, errors.StrongroomError)
        text = message if isinstance(message, str) else f"server answered {response.status_code}"
        if issubclass(cls, errors.TooManyAttempts):
            retry = response.headers.get("retry-after", "1")
            return cls(text, retry_after=float(retry) if retry.isdigit() else 1.0)
        return cls(text)

    @staticmethod
    def _secret_url(path: str, suffix: str = "") -> str:
        return f"/api/vault/secrets/{quote(path, safe='/')}{suffix}"

    # -- VaultAPI -------------------------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        """True when the server's vault holds no keys."""
        return self.status().locked

    def unlock(self, master_key: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Unlock the server's vault.

        Raises:
            InvalidMasterKey, TooManyAttempts, PermissionDenied, AuthenticationFailed.
        """
        self._call("POST", "/api/vault/unlock", json={"master_key": master_key})

    def lock(self, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Lock the server's vault (every worker).

        Raises:
            PermissionDenied, AuthenticationFailed.
        """
        self._call("POST", "/api/vault/lock")

    def status(self) -> VaultStatus:
        """Lock state and keyring summary.

        Raises:
            AuthenticationFailed: no valid token.
        """
        d = self._call("GET", "/api/vault/status")
        return VaultStatus(
            d["locked"],
            d.get("initialized", True),
            d.get("vault_id"),
            d.get("terms", 0),
            d.get("current_term"),
        )

    def health(self) -> VaultHealth:
        """The health body.

        Raises:
            StorageUnavailable: the server cannot be reached.
        """
        d = self._call("GET", "/api/vault/health")
        return VaultHealth(d["locked"], _time(d.get("last_access")), d["auto_lock"], d["audit"])

    def create_secret(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        expires_in: timedelta | None = None,
        actor: Actor = DEFAULT_ACTOR,
    ) -> SecretInfo:
        """Create a secret (version 1).

        Raises:
            InvalidInput, SecretExists, VaultLocked, PermissionDenied.
        """
        body: dict[str, Any] = {"path": path, "value": value}
        if description is not None:
            body["description"] = description
        if expires_in is not None:
            body["expires_in"] = _duration(expires_in)
        return _secret(self._call("POST", "/api/vault/secrets", json=body)["secret"])

    def get_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """The current value.

        Raises:
            SecretNotFound, SecretExpired, VaultLocked, PermissionDenied, IntegrityError.
        """
        return str(self._call("GET", self._secret_url(path))["value"])

    def get_secret_version(
        self,
        path: str,
        version: int,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> str:
        """The value of one version.

        Raises:
            SecretNotFound, VersionNotFound, VaultLocked, PermissionDenied.
        """
        return str(self._call("GET", self._secret_url(path, f"/versions/{int(version)}"))["value"])

    def update_secret(
        self,
        path: str,
        value: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> int:
        """Store a new version; return its number.

        Raises:
            SecretNotFound, InvalidInput, VaultLocked, PermissionDenied.
        """
        return int(self._call("PUT", self._secret_url(path), json={"value": value})["version"])

    def delete_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> None:
        """Delete a secret and its versions.

        Raises:
            SecretNotFound, VaultLocked, PermissionDenied.
        """
        self._call("DELETE", self._secret_url(path))

    def list_secrets(self, prefix: str = "", *, actor: Actor = DEFAULT_ACTOR) -> list[SecretInfo]:
        """Secrets under `prefix`.

        Raises:
            InvalidInput, VaultLocked, PermissionDenied.
        """
        params = {"prefix": prefix} if prefix else None
        return [
            _secret(d) for d in self._call("GET", "/api/vault/secrets", params=params)["secrets"]
        ]

    def list_versions(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> list[VersionInfo]:
        """Versions of a secret, newest first.

        Raises:
            SecretNotFound, VaultLocked, PermissionDenied.
        """
        found = self._call("GET", self._secret_url(path, "/versions"))["versions"]
        return [
            VersionInfo(
                d["version"],
                _at(d["updated_at"]),
                d["updated_by"],
                _time(d.get("deleted_at")),
                bool(d.get("destroyed")),
            )
            for d in found
        ]

    def rollback_secret(
        self,
        path: str,
        version: int,
        *,
        actor: Actor = DEFAULT_ACTOR,
    ) -> int:
        """Store a new version with `version`'s value; return the new number.

        Raises:
            SecretNotFound, VersionNotFound, VaultLocked, PermissionDenied.
        """
        url = self._secret_url(path, "/rollback")
        return int(self._call("POST", url, json={"version": version})["version"])

    def rotate_secret(self, path: str, *, actor: Actor = DEFAULT_ACTOR) -> RotationResult:
        """Re-encrypt one secret under the newest data key.

        Raises:
            SecretNotFound, VaultLocked, PermissionDenied.
        """
        d = self._call("POST", self._secret_url(path, "/rotate"), json={})
        return RotationResult(d["term"], d["reencrypted"], 1)

    def rotate_all(
        self,
        new_master_key: str,
        *,
        actor: Actor = DEFAULT_ACTOR,
        progress: Progress | None = None,
    ) -> RotationResult:
        """Rotate the master key (SuperAdmin). Progress is reported once, at the end.

        Raises:
            InvalidInput, VaultLocked, PermissionDenied.
        """
        d = self._call("POST", "/api/vault/rotate-all", json={"new_master_key": new_master_key})
        if progress is not None:
            progress(d["reencrypted"], d["reencrypted"])
        return RotationResult(d["term"], d["reencrypted"], d["secrets"])

    def cleanup_expired(
        self,
        *,
        actor: Actor = DEFAULT_ACTOR,
        progress: Progress | None = None,
    ) -> int:
        """Remove expired secrets; return how many.

        Raises:
            VaultLocked, PermissionDenied.
        """
        count = int(self._call("POST", "/api/vault/cleanup")["count"])
        if progress is not None:  # one request: the server reports only the end
            progress(count, count)
        return count

    def generate_token(self, length: int = 32, *, actor: Actor = DEFAULT_ACTOR) -> str:
        """A random URL-safe token from `length` bytes.

        Raises:
            InvalidInput, VaultLocked, PermissionDenied.
        """
        return str(
            self._call("POST", "/api/vault/generate-token", json={"length": length})["token"]
        )

    def audit_logs(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Audit entries matching every filter, newest first.

        Raises:
            InvalidInput, VaultLocked, PermissionDenied.
        """
        params: dict[str, Any] = {"limit": limit}
        if path is not None:
            params["path"] = path
        if user_id is not None:
            params["user_id"] = user_id
        if action is not None:
            params["action"] = action
        if since is not None:
            params["since"] = since.isoformat()
        logs = self._call("GET", "/api/vault/audit", params=params)["logs"]
        return [_entry(d) for d in logs]

    def verify_audit(self, anchor: AuditAnchor | None = None) -> AuditVerification:
        """Verify the server's audit chain (and against an exported `anchor`).

        Raises:
            VaultLocked, PermissionDenied.
        """
        params = {"anchor_id": anchor.id, "anchor_mac": anchor.mac} if anchor else None
        d = self._call("GET", "/api/vault/audit/verify", params=params)
        return AuditVerification(
            d["ok"], d["entries"], d.get("first_bad_id"), d.get("unchained", 0), d.get("reason")
        )

    def export_audit(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream the server's audit export (`GET /api/vault/audit/export`), oldest first, one
        row at a time (constant memory).

        Raises:
            VaultLocked, PermissionDenied, InvalidInput; StorageUnavailable when the server
            cannot be reached or the stream breaks.
        """
        params = {"format": "jsonl"}
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        try:
            with self._http.stream("GET", "/api/vault/audit/export", params=params) as response:
                if not response.is_success:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise self._error(response, body)
                for line in response.iter_lines():
                    if line:
                        yield json_module.loads(line)
        except httpx.HTTPError as exc:
            raise errors.StorageUnavailable(
                f"the audit export stream broke ({type(exc).__name__})"
            ) from exc

    def login(
        self, username: str, password: str, *, totp: str | None = None
    ) -> tuple[str, datetime]:
        """Log in as a built-in user (`totp`: the code, for a user with TOTP enabled); use the
        returned token from now on.

        Raises:
            AuthenticationFailed, TooManyAttempts.
        """
        body = {"username": username, "password": password}
        d = self._call(
            "POST", "/api/auth/login", json=body if totp is None else {**body, "totp": totp}
        )
        self._http.headers["Authorization"] = f"Bearer {d['token']}"
        return d["token"], _at(d["expires_at"])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Webhooks:
    """`client.webhooks`: the server's `/api/vault/webhooks` (Admins)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(
        self,
        url: str,
        *,
        events: list[str] | None = None,
        path_prefix: str = "",
        allow_link_local: bool = False,
    ) -> dict[str, Any]:
        """Add a webhook; the answer holds its signing secret (shown once).

        Raises:
            InvalidInput, PermissionDenied, VaultLocked.
        """
        body = {
            "url": url,
            "events": events or [],
            "path_prefix": path_prefix,
            "allow_link_local": allow_link_local,
        }
        return self._client._call("POST", "/api/vault/webhooks", json=body)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every webhook with its delivery state.

        Raises:
            PermissionDenied.
        """
        return list(self._client._call("GET", "/api/vault/webhooks")["webhooks"])

    def remove(self, webhook_id: int) -> None:
        """Remove a webhook.

        Raises:
            NotFound, PermissionDenied.
        """
        self._client._call("DELETE", f"/api/vault/webhooks/{int(webhook_id)}")

    def test(self, webhook_id: int) -> str:
        """Queue a `webhook.test` event; return its event id.

        Raises:
            NotFound, PermissionDenied.
        """
        return str(self._client._call("POST", f"/api/vault/webhooks/{int(webhook_id)}/test")["id"])
