"""`vaultctl server`: start the HTTP server (a thin adapter: environment + flags -> Settings ->
serve).

Runnable alone for tests: `python -m strongroom.cli.server --listen 127.0.0.1:8080`.
The server builds the same `Settings` as every `vaultctl` command (`Settings.from_env`), so it
honours every documented variable (DATABASE_URL, VAULT_MASTER_KEY, VAULT_MASTER_KEY_FILE,
VAULT_JWT_SECRET, STRONGROOM_AUTO_LOCK[_TIMEOUT], STRONGROOM_TLS_CERT/_KEY/_CLIENT_CA,
STRONGROOM_ARGON2_*); its flags win over them.
Secrets come from the environment or files, never from a visible flag.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
import tempfile
from datetime import timedelta
from typing import Any

import click
from click.core import ParameterSource

from strongroom import errors
from strongroom.cli import startup
from strongroom.cli.serverstart import check_listen, initialise_if_new, remove_on_exit
from strongroom.cli.vaultcheck import announce_initialised
from strongroom.clock import parse_duration
from strongroom.config import (
    DEFAULT_DSN,
    MAX_WORKERS,
    Secret,
    Settings,
    default_workers,
    read_key_file,
)
from strongroom.core.tokens import JWTAuth
from strongroom.http.serve import serve
from strongroom.http.tls import server_context
from strongroom.storage import redact_dsn

__all__ = ["COMMANDS", "server"]


def _short(ttl: timedelta) -> str:
    """`15m`, `1h`: how a default duration is shown in `--help`."""
    seconds = int(ttl.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text is not None else None


def _interval(text: str | None) -> timedelta | None:
    """`--cleanup-interval`: a duration, or `0` for off."""
    if text is None:
        return None
    return timedelta(0) if text.strip() == "0" else parse_duration(text)


def _given(**values: Any) -> list[Any]:
    """The values, with None for each option left at its default."""
    ctx = click.get_current_context()
    return [
        None if ctx.get_parameter_source(name) is ParameterSource.DEFAULT else value
        for name, value in values.items()
    ]


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


class _PerCPUOption(click.Option):
    """`--workers`: its default, one per CPU, is counted when `--help` shows it (not at import,
    and not when the server starts: then `Settings` counts)."""

    def get_help_extra(self, ctx: click.Context) -> click.types.OptionHelpExtra:
        extra = super().get_help_extra(ctx)
        extra["default"] = f"number of CPUs, here {default_workers()}"
        return extra


@click.command("server")
@click.option("--listen", default=Settings.listen, show_default=True, help="HOST:PORT to bind.")
@click.option(
    "--db-dsn",
    default=None,
    help=f"Database DSN (or DATABASE_URL); default {DEFAULT_DSN}.",
)
@click.option(
    "--workers",
    cls=_PerCPUOption,
    type=click.IntRange(1, MAX_WORKERS),
    default=None,
    help="Worker processes (they share one lock state).",
)
@click.option(
    "--master-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Unlock at start with the key in this file (or set VAULT_MASTER_KEY or "
    "VAULT_MASTER_KEY_FILE).",
)
@click.option("--master-key", default=None, hidden=True)
@click.option(
    "--jwt-secret-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="HS256 token key file, >= 32 bytes (or set VAULT_JWT_SECRET).",
)
@click.option("--jwt-secret", default=None, hidden=True)
@click.option(
    "--jwt-public-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="PEM public key verifying RS256/ES256/EdDSA panel tokens (VAULT_JWT_PUBLIC_KEY_FILE).",
)
@click.option(
    "--jwt-jwks",
    type=click.Path(dir_okay=False),
    default=None,
    help="Local JWKS file of verification keys chosen by kid (VAULT_JWT_JWKS_FILE).",
)
@click.option(
    "--totp-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Key file (32+ bytes) sealing users' TOTP seeds; the same on every server "
    "(VAULT_TOTP_KEY_FILE).",
)
@click.option(
    "--jwt-max-ttl",
    default=None,
    help="Refuse a JWT whose exp - iat exceeds this, e.g. 24h (VAULT_JWT_MAX_TTL).",
)
@click.option(
    "--trusted-proxy",
    multiple=True,
    help="Proxy IP/CIDR whose X-Forwarded-For is believed (repeatable).",
)
@click.option(
    "--audit-device",
    multiple=True,
    metavar="SPEC",
    help="Stream every audit entry to file:PATH, syslog or socket:HOST:PORT[,udp]; append "
    ",optional to keep serving when it fails (repeatable; docs/audit.md).",
)
@click.option(
    "--body-limit",
    type=click.IntRange(1024),
    default=Settings.body_limit,
    show_default=True,
    help="Largest request body in bytes.",
)
@click.option(
    "--auto-lock-timeout",
    default=_short(Settings.auto_lock_timeout),
    show_default=True,
    help="Lock after this long without a secret operation (or STRONGROOM_AUTO_LOCK_TIMEOUT).",
)
@click.option(
    "--no-auto-lock", is_flag=True, help="Never lock automatically (or STRONGROOM_AUTO_LOCK=false)."
)
@click.option(
    "--token-ttl",
    default=_short(Settings.token_ttl),
    show_default=True,
    help="Lifetime of tokens from /api/auth/login.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="Serve HTTPS with this PEM certificate chain (or STRONGROOM_TLS_CERT); SIGHUP reloads it.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The certificate's PEM private key (or STRONGROOM_TLS_KEY).",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="Mutual TLS: require client certificates signed by this PEM CA bundle.",
)
@click.option(
    "--auto-unlock",
    is_flag=True,
    help="After an auto-lock, the next authenticated request unlocks again from the key "
    "source (--master-key-file or VAULT_MASTER_KEY); audited as auto_unlock.",
)
@click.option(
    "--cleanup-interval",
    default=_short(Settings.cleanup_interval),
    show_default=True,
    help="Delete expired secrets this often (audited; 0 turns it off).",
)
@click.option(
    "--shutdown-timeout",
    default=f"{int(Settings.graceful_timeout)}s",
    show_default=True,
    help="On SIGTERM, how long in-flight requests get to finish.",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Try-out mode: a temporary database, generated master key and admin token.",
)
@click.option("--no-ui", is_flag=True, help="Do not serve the web console at /ui/.")
@click.option(
    "--no-cpu-affinity",
    is_flag=True,
    help="Let the OS move workers between CPUs (default: with a worker per CPU, each is bound "
    "to a CPU of its own; STRONGROOM_CPU_AFFINITY=false).",
)
@click.option("--argon2-time-cost", type=int, default=None, hidden=True)
@click.option("--argon2-memory-kib", type=int, default=None, hidden=True)
@click.option("--argon2-parallelism", type=int, default=None, hidden=True)
def server(
    listen: str,
    db_dsn: str | None,
    workers: int | None,
    master_key_file: str | None,
    master_key: str | None,
    jwt_secret_file: str | None,
    jwt_secret: str | None,
    jwt_public_key: str | None,
    jwt_jwks: str | None,
    totp_key_file: str | None,
    jwt_max_ttl: str | None,
    trusted_proxy: tuple[str, ...],
    audit_device: tuple[str, ...],
    body_limit: int,
    auto_lock_timeout: str,
    no_auto_lock: bool,
    token_ttl: str,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    auto_unlock: bool,
    cleanup_interval: str,
    shutdown_timeout: str,
    dev: bool,
    no_ui: bool,
    no_cpu_affinity: bool,
    argon2_time_cost: int | None,
    argon2_memory_kib: int | None,
    argon2_parallelism: int | None,
) -> None:
    """Start the HTTP server (REST API under /api/vault, web console /ui/, /metrics, /docs).

    \b
    Example:
      export VAULT_JWT_SECRET="$(openssl rand -base64 48)"
      vaultctl server --listen 127.0.0.1:8080 --workers 2
      vaultctl server --listen 0.0.0.0:8443 --tls-cert fullchain.pem --tls-key privkey.pem \\
        --master-key-file /run/secrets/master_key --auto-unlock
    """
    startup.collector_on()  # a long-running process: the collector on (cli.startup)
    _warn_if_on_command_line()
    # Defaults shown in --help are Settings' own; only flags actually given override the
    # environment (STRONGROOM_AUTO_LOCK_TIMEOUT, for one).
    listen, workers, body_limit, auto_lock_timeout, token_ttl, cleanup, shutdown = _given(
        listen=listen,
        workers=workers,
        body_limit=body_limit,
        auto_lock_timeout=auto_lock_timeout,
        token_ttl=token_ttl,
        cleanup_interval=cleanup_interval,
        shutdown_timeout=shutdown_timeout,
    )
    try:
        settings = Settings.from_env(
            db_dsn=db_dsn,
            listen=listen,
            workers=workers,
            master_key=_secret(read_key_file(master_key_file) if master_key_file else master_key),
            jwt_secret=_secret(read_key_file(jwt_secret_file) if jwt_secret_file else jwt_secret),
            jwt_public_key=jwt_public_key,
            jwt_jwks=jwt_jwks,
            totp_key_file=totp_key_file,
            jwt_max_ttl=_duration(jwt_max_ttl) if jwt_max_ttl else None,
            trusted_proxies=trusted_proxy or None,
            audit_devices=audit_device or None,
            body_limit=body_limit,
            auto_lock=False if no_auto_lock else None,
            auto_lock_timeout=_duration(auto_lock_timeout),
            token_ttl=_duration(token_ttl),
            ui=False if no_ui else None,
            cpu_affinity=False if no_cpu_affinity else None,
            argon2_time_cost=argon2_time_cost,
            argon2_memory_kib=argon2_memory_kib,
            argon2_parallelism=argon2_parallelism,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
            auto_unlock=auto_unlock or None,
            cleanup_interval=_interval(cleanup),
            graceful_timeout=_seconds(_duration(shutdown)),
        )
        settings = _complete(settings, dev)
        server_context(settings)  # unreadable or mismatched certificate: one line, exit 2
        check_listen(settings.host, settings.port)  # in use: one line, exit 2, no banner
        if initialise_if_new(settings):
            announce_initialised(f"Storage: {redact_dsn(settings.db_dsn)}")
    except errors.StrongroomError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    _announce(settings)
    try:
        status = serve(settings)
    except errors.StrongroomError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(status)


def _seconds(ttl: timedelta | None) -> float | None:
    return ttl.total_seconds() if ttl is not None else None


def _complete(settings: Settings, dev: bool) -> Settings:
    """The master key read (from its file when that is how it was given), and under `--dev`
    whatever is missing generated.

    Raises:
        InvalidInput: no JWT secret, or an unreadable key file.
    """
    key = settings.resolved_master_key()
    jwt_key = settings.jwt_secret.reveal() if settings.jwt_secret else None
    dsn = None
    if dev:
        key = key or secrets.token_urlsafe(32)
        jwt_key = jwt_key or secrets.token_urlsafe(48)
        if settings.db_dsn == DEFAULT_DSN:
            folder = tempfile.mkdtemp(prefix="strongroom-dev-")
            remove_on_exit(folder)  # a throw-away vault: removed however the server stops
            dsn = f"sqlite:///{folder}/vault.db"
    if not jwt_key and not settings.has_jwt_keys:
        raise errors.InvalidInput(
            "VAULT_JWT_SECRET (or --jwt-secret-file, --jwt-public-key, --jwt-jwks) is required"
        )
    done = settings.with_overrides(
        master_key=_secret(key), jwt_secret=_secret(jwt_key), db_dsn=dsn, dev=dev or None
    )
    done.jwt_auth()  # an unreadable or malformed key: one line, exit 2
    return done


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _announce(settings: Settings) -> None:
    url = f"{'https' if settings.is_tls else 'http'}://{settings.listen}"
    if not settings.is_tls and not _is_loopback(settings.host):
        click.echo(
            f"Warning: plain HTTP on {settings.listen}, which is not a loopback address: "
            "tokens and secrets cross the network unencrypted; use --tls-cert/--tls-key or "
            "a TLS-terminating proxy",
            err=True,
        )
    state = "unlocked at start" if settings.master_key else "locked (POST /api/vault/unlock)"
    plural = "s" if settings.workers > 1 else ""
    click.echo(f"Strongroom server on {url} ({settings.workers} worker{plural}, vault {state})")
    click.echo(f"Database: {redact_dsn(settings.db_dsn)}")
    if settings.ui:
        click.echo(f"Web console: {url}/ui/")
    if settings.dev and settings.master_key and settings.jwt_secret:
        token, _ = JWTAuth(settings.jwt_secret.reveal()).issue(
            1, "SuperAdmin", ttl=timedelta(hours=24)
        )
        click.echo("Development mode: nothing here is for production.")
        click.echo(f"Master key: {settings.master_key.reveal()}")
        click.echo(f"Admin token (SuperAdmin, 24h): {token}")
        click.echo(f'Try: curl {url}/api/vault/status -H "Authorization: Bearer $TOKEN"')
    else:
        click.echo(
            "Tokens: POST /api/auth/login for built-in users (vaultctl user create), or "
            "any HS256 JWT signed with VAULT_JWT_SECRET (claims sub, role, exp)."
        )
    sys.stdout.flush()


COMMANDS: list[click.Command] = [server]


if __name__ == "__main__":
    server()
