"""Pure pieces of the HTTP adapter: secret URL dispatch, reserved paths, client IP, errors."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from starlette.responses import Response

from strongroom import errors
from strongroom.config import Secret as Masked
from strongroom.config import Settings as ServerSettings
from strongroom.config import parse_listen
from strongroom.http.api_vault import check_creatable
from strongroom.http.deps import client_ip, request_id
from strongroom.http.errors import error_response
from strongroom.http.routing import SECRET_PREFIX, Target, split_secret_url


@pytest.mark.parametrize(
    ("method", "rest", "template", "target"),
    [
        ("GET", "a/b", SECRET_PREFIX, Target("a/b")),
        ("GET", "a/b/versions", SECRET_PREFIX + "/versions", Target("a/b")),
        ("GET", "a/b/versions/12", SECRET_PREFIX + "/versions/{version}", Target("a/b", 12)),
        ("GET", "a/versions/b", SECRET_PREFIX, Target("a/versions/b")),
        ("GET", "a/b/audit", SECRET_PREFIX + "/audit", Target("a/b")),
        ("POST", "a/b/rotate", SECRET_PREFIX + "/rotate", Target("a/b")),
        ("POST", "a/b/rollback", SECRET_PREFIX + "/rollback", Target("a/b")),
        ("POST", "a/b", SECRET_PREFIX, Target("a/b")),
        ("PUT", "a/rotate", SECRET_PREFIX, Target("a/rotate")),
        ("GET", "versions", SECRET_PREFIX, Target("versions")),
    ],
)
def test_split_secret_url(method: str, rest: str, template: str, target: Target) -> None:
    assert split_secret_url(method, rest) == (template, target)


@pytest.mark.parametrize(
    "path", ["a/versions", "rotate", "x/rollback", "a/b/audit", "a/versions/7"]
)
def test_reserved_paths_are_refused(path: str) -> None:
    with pytest.raises(errors.InvalidInput):
        check_creatable(path)


@pytest.mark.parametrize("path", ["a/versions/b", "versions/a", "audit-log", "a/7"])
def test_ordinary_paths_are_allowed(path: str) -> None:
    assert check_creatable(path) == path


def test_client_ip_trusts_only_configured_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    fwd = [(b"x-forwarded-for", b"1.2.3.4, 10.1.1.1")]
    assert client_ip({"client": ("127.0.0.1", 1), "headers": fwd}, proxies) == "127.0.0.1"
    assert client_ip({"client": ("10.0.0.5", 1), "headers": fwd}, proxies) == "1.2.3.4"
    assert client_ip({"client": ("10.0.0.5", 1), "headers": []}, proxies) == "10.0.0.5"
    bad = [(b"x-forwarded-for", b"not-an-ip")]
    assert client_ip({"client": ("10.0.0.5", 1), "headers": bad}, proxies) == "10.0.0.5"
    assert client_ip({"client": ("10.0.0.5", 1), "headers": fwd}, []) == "10.0.0.5"


def test_request_id_is_taken_only_when_well_formed() -> None:
    assert request_id({"headers": [(b"x-request-id", b"abc-1")]}) == "abc-1"
    generated = request_id({"headers": [(b"x-request-id", b"bad id\n")]})
    assert generated != "bad id\n" and len(generated) == 16


def body(response: Response) -> Any:
    return json.loads(bytes(response.body))


def test_error_bodies_for_api_and_v1() -> None:
    api = error_response(errors.VaultLocked(), "/api/vault/secrets/a", "rid")
    assert api.status_code == 423
    assert body(api) == {"error": "vault is locked", "code": "vault_locked", "request_id": "rid"}
    v1 = error_response(errors.VaultLocked(), "/v1/secret/data/a")
    assert (v1.status_code, body(v1)) == (503, {"errors": ["Vault is sealed"]})
    denied = error_response(errors.AuthenticationFailed("token expired"), "/v1/sys/health")
    assert (denied.status_code, body(denied)) == (403, {"errors": ["permission denied"]})
    cas = error_response(errors.VersionConflict(), "/v1/secret/data/a")
    assert cas.status_code == 400
    limited = error_response(errors.TooManyAttempts(retry_after=2.2), "/api/auth/login")
    assert limited.headers["retry-after"] == "3"
    broken = error_response(errors.IntegrityError("details"), "/api/vault/secrets/a")
    assert body(broken)["error"] == errors.IntegrityError.default_message


def test_settings_validate_and_mask() -> None:
    settings = ServerSettings(jwt_secret=Masked("s" * 32), master_key=Masked("mk-secret"))
    assert "mk-secret" not in repr(settings) and "s" * 32 not in repr(settings)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    bad: dict[str, Any]
    for bad in (
        {"jwt_secret": Masked("short")},
        {"jwt_secret": Masked("s" * 32), "workers": 0},
        {"jwt_secret": Masked("s" * 32), "listen": "nohost"},
        {"jwt_secret": Masked("s" * 32), "trusted_proxies": ("x.y",)},
    ):
        with pytest.raises(errors.InvalidInput):
            ServerSettings(**bad)
