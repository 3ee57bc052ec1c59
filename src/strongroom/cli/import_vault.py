"""`vaultctl import-vault`: copy every secret of a HashiCorp Vault / OpenBao KV v2 mount into
Strongroom, with every version, its number, times, deletion state and the key's metadata.

The source is read over its HTTP API with httpx (`GET ...?list=true`, `metadata/`, `data/`); the
target is the local vault (`--db-dsn`, master key as for every local command), written through
`Vault.kv_import`, one transaction and one audit entry per key. Versions whose data the source no
longer serves (soft-deleted or destroyed there) are copied as destroyed: their numbers and times
stay, their values cannot be had. Nothing here prints a secret value or a token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import click
import httpx

from strongroom import errors
from strongroom.core.kv_import import KVImportVersion
from strongroom.models import DEFAULT_ACTOR, Actor, validate_path

if TYPE_CHECKING:
    from strongroom.core import Vault

__all__ = ["COMMANDS", "ImportReport", "VaultSource", "import_mount", "import_vault"]

_FRACTION = re.compile(r"(\.\d{6})\d+")


class SourceError(click.ClickException):
    """The source Vault could not be read (exit 1)."""


def parse_vault_time(text: object) -> datetime | None:
    """A Vault RFC 3339 time (nanoseconds allowed) as an aware datetime; "" or null -> None.

    Raises:
        SourceError: the text is not a time.
    """
    if text in ("", None):
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", str(text)).replace("Z", "+00:00"))
    except ValueError as exc:
        raise SourceError(f"the source sent an unreadable time {str(text)[:40]!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class VaultSource:
    """Reads one KV v2 mount of a running Vault or OpenBao."""

    def __init__(
        self,
        addr: str,
        token: str,
        mount: str,
        *,
        namespace: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        headers = {"X-Vault-Token": token, "X-Vault-Request": "true"}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self.mount = mount.strip("/")
        self._http = httpx.Client(
            base_url=addr.rstrip("/") + "/v1/", headers=headers, verify=verify, timeout=timeout
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, route: str, path: str, **params: str) -> dict[str, Any] | None:
        """The envelope's `data` of a GET, None on 404."""
        url = f"{self.mount}/{route}/{quote(path, safe='/')}".rstrip("/")
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the source: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SourceError(
                f"the source answered {response.status_code} for {route}/{path}: "
                f"{_errors_of(response)}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceError(f"the source sent no JSON for {route}/{path}") from exc
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    def check_mount(self) -> None:
        """Refuse a mount the source says is not KV version 2 (when it says: the check needs
        no more than the token's access to the mount).

        Raises:
            SourceError: the mount is of another type or KV version 1.
        """
        try:
            response = self._http.get(f"sys/internal/ui/mounts/{quote(self.mount)}")
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the source: {type(exc).__name__}") from exc
        if response.status_code != 200:
            return
        try:
            mount = response.json().get("data") or {}
        except (ValueError, AttributeError):
            return
        version = str((mount.get("options") or {}).get("version", ""))
        if mount.get("type") not in ("kv", "generic") or version != "2":
            raise SourceError(
                f"mount {self.mount!r} is not a KV version 2 mount "
                f"(type {mount.get('type')!r}, version {version or 'none'!r})"
            )

    def kv2_mounts(self) -> list[str]:
        """The source's KV version 2 mounts (`sys/mounts`), paths without their slash.

        Raises:
            SourceError: the source cannot be reached or refuses to list its mounts.
        """
        try:
            response = self._http.get("sys/mounts")
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the source: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise SourceError(
                f"the source answered {response.status_code} for sys/mounts: {_errors_of(response)}"
            )
        try:
            listing = response.json().get("data") or {}
        except (ValueError, AttributeError) as exc:
            raise SourceError("the source sent no JSON for sys/mounts") from exc
        return sorted(
            path.strip("/")
            for path, mount in listing.items()
            if isinstance(mount, dict)
            and mount.get("type") == "kv"
            and str((mount.get("options") or {}).get("version", "")) == "2"
        )

    def keys(self, folder: str = "") -> Iterator[str]:
        """Every key under `folder`, depth first, in sorted order."""
        listing = self._get("metadata", folder, list="true")
        for name in sorted((listing or {}).get("keys") or []):
            if name.endswith("/"):
                yield from self.keys(folder + name)
            else:
                yield folder + name

    def read_key(self, path: str) -> tuple[dict[str, Any], list[KVImportVersion]]:
        """A key's metadata and every version it still lists (data None when not served).

        Raises:
            SourceError: the key vanished or the source failed.
        """
        meta = self._get("metadata", path)
        if meta is None:
            raise SourceError(f"{path}: disappeared from the source while importing")
        versions: list[KVImportVersion] = []
        for number, state in sorted(
            ((int(n), s) for n, s in (meta.get("versions") or {}).items()), key=lambda item: item[0]
        ):
            body = None if state.get("destroyed") else self._get("data", path, version=str(number))
            data = (body or {}).get("data")
            versions.append(
                KVImportVersion(
                    number,
                    data if isinstance(data, dict) else None,
                    parse_vault_time(state.get("created_time")) or datetime.now(UTC),
                    parse_vault_time(state.get("deletion_time")),
                    bool(state.get("destroyed")),
                )
            )
        return meta, versions


def _errors_of(response: httpx.Response) -> str:
    try:
        found = response.json().get("errors")
    except (ValueError, AttributeError):
        found = None
    return "; ".join(str(e).strip() for e in found) if found else "no detail"


@dataclass
class ImportReport:
    """What an import did."""

    imported: list[str] = field(default_factory=list)
    versions: int = 0
    unreadable: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def import_mount(
    source: VaultSource,
    vault: Vault,
    *,
    prefix: str = "",
    replace: bool = False,
    actor: Actor = DEFAULT_ACTOR,
    on_key: Callable[[str, int], None] | None = None,
    into: str = "secret",
) -> ImportReport:
    """Copy every key of `source` into the mount `into` of `vault` under `prefix`; one failure
    does not stop the rest.

    Raises:
        SourceError: the source cannot be listed.
    """
    report = ImportReport()
    source.check_mount()
    for key in source.keys():
        target = f"{prefix}/{key}" if prefix else key
        try:
            validate_path(target)
            meta, versions = source.read_key(key)
            copied = vault.kv.import_key(
                target,
                versions,
                current_version=int(meta.get("current_version") or 0),
                created_at=parse_vault_time(meta.get("created_time")),
                replace=replace,
                mount=into,
                actor=actor,
                **_settings(meta),
            )
        except errors.SecretExists:
            report.skipped.append(target)
            continue
        except (errors.StrongroomError, SourceError) as exc:
            report.failed[target] = exc.message
            continue
        report.imported.append(target)
        report.versions += len(versions)
        report.unreadable += len(versions) - copied
        if on_key is not None:
            on_key(target, len(versions))
    return report


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "max_versions": meta.get("max_versions") or 0,
        "cas_required": bool(meta.get("cas_required")),
        "delete_version_after": meta.get("delete_version_after") or "0s",
        "custom_metadata": meta.get("custom_metadata") or {},
    }


class _TargetSession(Protocol):
    """What the `vaultctl` invocation provides (cli.session.Session)."""

    @property
    def actor(self) -> Actor: ...

    def unlock_local(self, *, initialise: bool = False) -> Vault: ...


def _target(ctx: click.Context) -> tuple[Vault, Actor]:
    session = ctx.find_root().obj
    if not callable(getattr(session, "unlock_local", None)):
        raise click.UsageError("import-vault runs as `vaultctl import-vault`")
    typed: _TargetSession = session
    # A first write: an empty target database gets a new vault (announced on stderr).
    vault = typed.unlock_local(initialise=True)
    return vault, typed.actor


@click.command("import-vault")
@click.option(
    "--addr",
    required=True,
    metavar="URL",
    help="URL of the source Vault/OpenBao, e.g. https://vault.example.com:8200.",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help="Source token (visible in the process list: prefer --token-file).",
)
@click.option("--token-file", metavar="FILE", help="Read the source token from FILE.")
@click.option("--mount", default="secret", show_default=True, help="The KV v2 mount to copy.")
@click.option("--namespace", metavar="NS", help="Vault Enterprise namespace of the mount.")
@click.option("--ca-cert", metavar="FILE", help="CA bundle to verify the source's TLS.")
@click.option("--prefix", default="", metavar="PATH", help="Put the copies under PATH/.")
@click.option(
    "--into-mount",
    "into",
    default="secret",
    show_default=True,
    help="The local KV mount to copy into (created as KV v2 when missing).",
)
@click.option(
    "--all-mounts",
    is_flag=True,
    help="Copy every KV v2 mount of the source, each into the local mount of the same path.",
)
@click.option(
    "--replace", is_flag=True, help="Replace secrets that already exist here (default: skip them)."
)
@click.pass_context
def import_vault(
    ctx: click.Context,
    addr: str,
    token: str | None,
    token_file: str | None,
    mount: str,
    namespace: str | None,
    ca_cert: str | None,
    prefix: str,
    into: str,
    all_mounts: bool,
    replace: bool,
) -> None:
    """Copy every secret of a Vault/OpenBao KV v2 mount (or of every one: --all-mounts), all
    versions, into this vault.

    Writes into the local database (global --db-dsn and master key, given before the command
    name). Versions the source no longer serves (deleted or destroyed) keep their number and
    times and are stored as destroyed. Existing secrets are skipped unless --replace.

    \b
    Example:
      vaultctl import-vault --addr http://127.0.0.1:8200 --token-file ~/.vault-token --mount secret
    """
    if (token is None) == (token_file is None):
        raise click.UsageError("give the source token with exactly one of --token or --token-file")
    if token_file is not None:
        try:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"cannot read token file {token_file!r}") from exc
    prefix = prefix.strip("/")
    if prefix:
        validate_path(prefix)
    vault, actor = _target(ctx)
    verify: bool | str = ca_cert if ca_cert else True
    pairs = [(mount, into)]
    if all_mounts:
        lister = VaultSource(addr, token or "", mount, namespace=namespace, verify=verify)
        try:
            pairs = [(m, m) for m in lister.kv2_mounts()]
        finally:
            lister.close()
    failed = False
    for source_mount, target in pairs:
        source = VaultSource(addr, token or "", source_mount, namespace=namespace, verify=verify)
        try:
            failed |= _import_one(source, vault, actor, target, prefix, replace, len(pairs) > 1)
        finally:
            source.close()
    if failed:
        ctx.exit(1)


def _import_one(
    source: VaultSource,
    vault: Vault,
    actor: Actor,
    into: str,
    prefix: str,
    replace: bool,
    name_mounts: bool,
) -> bool:
    """Copy one source mount into the local mount `into` (created when missing), printing
    one line per key and a summary; True when a key failed."""
    if not any(m.path == into.strip("/") + "/" for m in vault.mounts.list(actor=actor)):
        vault.mounts.enable(into, "kv-v2", actor=actor)
    where = f" into {into.strip('/')}/" if name_mounts or into.strip("/") != "secret" else ""
    report = import_mount(
        source,
        vault,
        prefix=prefix,
        replace=replace,
        actor=actor,
        on_key=lambda path, n: click.echo(f"imported {path}{where} ({n} versions)"),
        into=into,
    )
    for path in report.skipped:
        click.echo(f"skipped {path}{where}: it exists (use --replace)", err=True)
    for path, why in report.failed.items():
        click.echo(f"failed {path}{where}: {why}", err=True)
    click.echo(
        f"Imported {len(report.imported)} secrets{where} ({report.versions} versions, "
        f"{report.unreadable} not readable at the source and stored as destroyed); "
        f"skipped {len(report.skipped)}, failed {len(report.failed)}."
    )
    return bool(report.failed)


COMMANDS: list[click.Command] = [import_vault]
