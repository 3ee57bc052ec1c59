"""`vaultctl server`: start the HTTP server (a thin adapter: options -> ServerSettings -> serve).

Runnable alone for tests: `python -m strongroom.cli.server --listen 127.0.0.1:8080`.
Secrets come from the environment or files, never from a visible flag: VAULT_MASTER_KEY or
--master-key-file, VAULT_JWT_SECRET or --jwt-secret-file; DATABASE_URL for the database.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import click
from click.core import ParameterSource

from strongroom import errors
from strongroom.cli.serverstart import check_listen, initialise_if_new, remove_on_exit
from strongroom.cli.vaultcheck import announce_initialised
from strongroom.clock import parse_duration
from strongroom.core.tokens import JWTAuth
from strongroom.http.serve import serve
from strongroom.http.settings import DEFAULT_BODY_LIMIT, Masked, ServerSettings
from strongroom.storage import redact_dsn

__all__ = ["server"]


def _read_secret_file(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read {what} file {path!r}: {exc.strerror}") from exc
    if not text:
        raise errors.InvalidInput(f"{what} file {path!r} is empty")
    return text


def _warn_if_on_command_line() -> None:
    """The hidden --master-key/--jwt-secret flags exist for the environment variables; given
    as flags they are visible in the process list, as vaultctl's other commands warn too."""
    ctx = click.get_current_context()
    for name in ("master_key", "jwt_secret"):
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            what = "a master key" if name == "master_key" else "the JWT secret"
            click.echo(
                f"Warning: {what} on the command line is visible in the process list and "
                "shell history; prefer the environment variable or a file",
                err=True,
            )


def _duration(text: str) -> timedelta:
    return parse_duration(text)


@click.command("server")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to bind.")
@click.option(
    "--db-dsn",
    envvar="DATABASE_URL",
    default=None,
    help="Database DSN (or DATABASE_URL); default sqlite:///vault.db.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (they share one lock state).",
)
@click.option(
    "--master-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Unlock at start with the key in this file (or set VAULT_MASTER_KEY).",
)
@click.option("--master-key", envvar="VAULT_MASTER_KEY", default=None, hidden=True)
@click.option(
    "--jwt-secret-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="HS256 token key file, >= 32 bytes (or set VAULT_JWT_SECRET).",
)
@click.option("--jwt-secret", envvar="VAULT_JWT_SECRET", default=None, hidden=True)
@click.option(
    "--trusted-proxy",
    multiple=True,
    help="Proxy IP/CIDR whose X-Forwarded-For is believed (repeatable).",
)
@click.option(
    "--body-limit",
    type=click.IntRange(1024),
    default=DEFAULT_BODY_LIMIT,
    show_default=True,
    help="Largest request body in bytes.",
)
@click.option(
    "--auto-lock-timeout",
    default="15m",
    show_default=True,
    help="Lock after this long without a secret operation.",
)
@click.option("--no-auto-lock", is_flag=True, help="Never lock automatically.")
@click.option(
    "--token-ttl", default="1h", show_default=True, help="Lifetime of tokens from /api/auth/login."
)
@click.option(
    "--dev",
    is_flag=True,
    help="Try-out mode: a temporary database, generated master key and admin token.",
)
@click.option(
    "--argon2-time-cost", envvar="STRONGROOM_ARGON2_TIME_COST", type=int, default=3, hidden=True
)
@click.option(
    "--argon2-memory-kib",
    envvar="STRONGROOM_ARGON2_MEMORY_KIB",
    type=int,
    default=64 * 1024,
    hidden=True,
)
@click.option(
    "--argon2-parallelism", envvar="STRONGROOM_ARGON2_PARALLELISM", type=int, default=4, hidden=True
)
def server(
    listen: str,
    db_dsn: str | None,
    workers: int,
    master_key_file: str | None,
    master_key: str | None,
    jwt_secret_file: str | None,
    jwt_secret: str | None,
    trusted_proxy: tuple[str, ...],
    body_limit: int,
    auto_lock_timeout: str,
    no_auto_lock: bool,
    token_ttl: str,
    dev: bool,
    argon2_time_cost: int,
    argon2_memory_kib: int,
    argon2_parallelism: int,
) -> None:
    """Start the HTTP server (REST API under /api/vault, /metrics, /docs).

    \b
    Example:
      export VAULT_JWT_SECRET="$(openssl rand -base64 48)"
      vaultctl server --listen 127.0.0.1:8080 --workers 2
    """
    _warn_if_on_command_line()
    try:
        key = _read_secret_file(master_key_file, "master key") or master_key or None
        jwt_key = _read_secret_file(jwt_secret_file, "JWT secret") or jwt_secret or None
        if dev:
            key = key or secrets.token_urlsafe(32)
            jwt_key = jwt_key or secrets.token_urlsafe(48)
            if db_dsn is None:
                folder = tempfile.mkdtemp(prefix="strongroom-dev-")
                remove_on_exit(folder)
                db_dsn = f"sqlite:///{folder}/vault.db"
        if not jwt_key:
            raise errors.InvalidInput(
                "VAULT_JWT_SECRET (or --jwt-secret-file) is required: at least 32 bytes"
            )
        settings = ServerSettings(
            jwt_secret=Masked(jwt_key),
            listen=listen,
            db_dsn=db_dsn or "sqlite:///vault.db",
            workers=workers,
            master_key=Masked(key) if key else None,
            trusted_proxies=trusted_proxy,
            body_limit=body_limit,
            dev=dev,
            auto_lock=not no_auto_lock,
            auto_lock_timeout=_duration(auto_lock_timeout),
            argon2_time_cost=argon2_time_cost,
            argon2_memory_kib=argon2_memory_kib,
            argon2_parallelism=argon2_parallelism,
            token_ttl=_duration(token_ttl),
        )
        check_listen(settings.host, settings.port)  # in use: one line, exit 2, no banner
        if initialise_if_new(settings):
            announce_initialised(f"Storage: {redact_dsn(settings.db_dsn)}")
    except errors.StrongroomError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    _announce(settings, key if dev else None)
    try:
        status = serve(settings)
    except errors.StrongroomError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(status)


def _announce(settings: ServerSettings, dev_key: str | None) -> None:
    url = f"http://{settings.listen}"
    state = "unlocked at start" if settings.master_key else "locked (POST /api/vault/unlock)"
    plural = "s" if settings.workers > 1 else ""
    click.echo(f"Strongroom server on {url} ({settings.workers} worker{plural}, vault {state})")
    click.echo(f"Database: {redact_dsn(settings.db_dsn)}")
    if dev_key is not None:
        token, _ = JWTAuth(settings.jwt_secret.reveal()).issue(
            1, "SuperAdmin", ttl=timedelta(hours=24)
        )
        click.echo("Development mode: nothing here is for production.")
        click.echo(f"Master key: {dev_key}")
        click.echo(f"Admin token (SuperAdmin, 24h): {token}")
        click.echo(f'Try: curl {url}/api/vault/status -H "Authorization: Bearer $TOKEN"')
    else:
        click.echo(
            "Tokens: POST /api/auth/login for built-in users (vaultctl user create), or "
            "any HS256 JWT signed with VAULT_JWT_SECRET (claims sub, role, exp)."
        )
    sys.stdout.flush()


if __name__ == "__main__":
    server()
