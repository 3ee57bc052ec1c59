"""Settings: the ONE configuration object, built by every entry point; sole reader of os.environ.

The library builds `Settings()` (or just `VaultConfig()`), `vaultctl` builds
`Settings.from_env()` overridden by its global flags, and `vaultctl server` the same with its own
flags; `Settings.vault_config()` derives the core's options, so every default is written once
(the core's in `core.options`, Argon2's in `crypto.kdf`, the rest here). Environment variables
(every one optional; flags given on the command line win):

=================================  ==========================================================
`DATABASE_URL`                     database DSN; default `sqlite:///vault.db`, a file in the
                                   current working directory
`VAULT_MASTER_KEY`                 the master key (prefer it, or a key file, to a flag)
`VAULT_MASTER_KEY_FILE`            a file whose content (one trailing newline stripped) is the key
`VAULT_ADDR` / `VAULT_TOKEN`       remote mode: a `vaultctl server` URL and a bearer token
`VAULT_JWT_SECRET`                 HS256 secret of the server's JWT auth (>= 32 bytes)
`STRONGROOM_ARGON2_TIME_COST`,     Argon2id parameters for new vaults and master-key rotation
`STRONGROOM_ARGON2_MEMORY_KIB`,    (tests make unlock cheap with them)
`STRONGROOM_ARGON2_PARALLELISM`
`STRONGROOM_AUTO_LOCK`             `true`/`false` (default true)
`STRONGROOM_AUTO_LOCK_TIMEOUT`     a duration such as `15m` (default 15m)
`STRONGROOM_CPU_AFFINITY`          `true`/`false` (default true): with a server worker per CPU,
                                  each bound to a CPU of its own (`--no-cpu-affinity`)
`STRONGROOM_TLS_CERT`,             the server's certificate chain and private key (PEM): serve
`STRONGROOM_TLS_KEY`               HTTPS
`STRONGROOM_TLS_CLIENT_CA`         CA bundle (PEM) for client certificates: mutual TLS
`VAULT_CACERT`                     remote mode: CA bundle (PEM) that verifies the server
`STRONGROOM_AUDIT_DEVICES`         audit devices, `;`-separated (`file:PATH;syslog`); flags
                                   (`--audit-device`) replace them
`STRONGROOM_WEBHOOK_INTERVAL`      seconds between webhook sender passes (default 1)
`STRONGROOM_WEBHOOK_IN_FLIGHT`     deliveries sent at once, at most (default 8)
`STRONGROOM_WEBHOOK_RETRY_BASE`    seconds before the first retry, doubled each time (10)
`STRONGROOM_WEBHOOK_MAX_AGE`       give a delivery up after this long (default 24h)
`STRONGROOM_WEBHOOK_TIMEOUT`       seconds a receiver gets to answer (default 10)
`STRONGROOM_OUTBOX_RETENTION`      keep failed webhook deliveries this long after their event
                                   (default 7d); delivered ones are pruned at once
`STRONGROOM_REMINDER_INTERVAL`     seconds between expiry-reminder passes (default 300)
`STRONGROOM_REMINDER_LEAD_DAYS`    expiry reminder lead times in days (default `30,7,1`)
`STRONGROOM_AUDIT_DEVICES_FILE`    a file of audit devices, one per line (`#` comments), added
                                   to those above
=================================  ==========================================================

Settings are validated when built (`InvalidInput` names the bad value). Secret settings are
wrapped in `Secret`, whose repr is masked, so a logged Settings leaks nothing. Nothing reads
configuration at import time.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.core import VaultConfig
from strongroom.core.options import DEFAULT_DSN, DEFAULT_LEAD_DAYS

if TYPE_CHECKING:
    from strongroom.core.tokens import JWTAuth
    from strongroom.core.webhook_sender import SendOptions

__all__ = [
    "DEFAULT_BODY_LIMIT",
    "DEFAULT_DSN",
    "MAX_WORKERS",
    "IPNetwork",
    "Secret",
    "Settings",
    "child_environment",
    "default_workers",
    "parse_listen",
    "read_key_file",
]

DEFAULT_BODY_LIMIT = 1024 * 1024
#: The most server workers `--workers` accepts (and the default's cap).
MAX_WORKERS = 64
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Variables never handed to a child process started by `vaultctl run`.
_PRIVATE_VARIABLES = ("VAULT_MASTER_KEY",)


class Secret:
    """A string that does not show itself in repr/str (Starlette's `Secret`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The wrapped value; call only where it is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        import hmac

        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode("utf-8"), other._value.encode("utf-8")
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    # Pickled only to hand settings to the server's worker processes (never to disk).
    def __getstate__(self) -> str:
        return self._value

    def __setstate__(self, state: str) -> None:
        self._value = state


def _int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidInput(f"{name} must be an integer") from None


def _bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise errors.InvalidInput(f"{name} must be true or false")


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise errors.InvalidInput(f"{flag}: cannot read {path!r}") from exc


def _duration(environ: Mapping[str, str], name: str) -> timedelta | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse_duration(raw)
    except errors.InvalidInput as exc:
        raise errors.InvalidInput(f"{name}: {exc.message}") from None


def _secret(environ: Mapping[str, str], name: str) -> Secret | None:
    value = environ.get(name, "")
    return Secret(value) if value else None


def _seconds(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise errors.InvalidInput(f"{name} must be a number of seconds from 0 to 86400")
    return value


def _lead_days(environ: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = environ.get("STRONGROOM_REMINDER_LEAD_DAYS", "").strip()
    if not raw:
        return None
    try:
        days = tuple(sorted({int(d) for d in raw.split(",") if d.strip()}, reverse=True))
    except ValueError:
        days = ()
    if not days or min(days) < 1 or max(days) > 3650:
        raise errors.InvalidInput(
            "STRONGROOM_REMINDER_LEAD_DAYS must be days from 1 to 3650, comma-separated (30,7,1)"
        )
    return days


def _devices(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    """`STRONGROOM_AUDIT_DEVICES` (`;`-separated) plus `STRONGROOM_AUDIT_DEVICES_FILE` (one a
    line, `#` comments), or None when neither is set."""
    found = [d.strip() for d in environ.get("STRONGROOM_AUDIT_DEVICES", "").split(";")]
    name = environ.get("STRONGROOM_AUDIT_DEVICES_FILE", "").strip()
    if name:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.InvalidInput(
                f"cannot read STRONGROOM_AUDIT_DEVICES_FILE {name!r} ({type(exc).__name__})"
            ) from None
        found += [line.split("#", 1)[0].strip() for line in text.splitlines()]
    devices = tuple(d for d in found if d)
    return devices or None


def default_workers() -> int:
    """The default number of server workers: one per CPU this process may run on, from 1 to
    `MAX_WORKERS`.

    The CPUs are the process's affinity, which `taskset` and cgroup cpusets (`docker run
    --cpuset-cpus`) narrow, else every CPU. A CPU quota (Kubernetes `limits.cpu`, `docker run
    --cpus`) does not narrow it: there `--workers` is set to match the quota (docs/deploy.md).
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call (macOS, Windows), or it failed
        count = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, count))


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 as `[::1]:8080`).

    Raises:
        InvalidInput: malformed address or port outside 0..65535.
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise errors.InvalidInput(f"invalid --listen {listen!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies)
    except ValueError as exc:
        raise errors.InvalidInput(f"invalid --trusted-proxy: {exc}") from exc


def read_key_file(path: str) -> str:
    """The content of a key file, one trailing newline stripped.

    Raises:
        InvalidInput: unreadable, not UTF-8, or empty.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.InvalidInput(
            f"cannot read key file {path!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise errors.InvalidInput(f"key file {path!r} is not UTF-8 text") from None
    key = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not key:
        raise errors.InvalidInput(f"key file {path!r} is empty")
    return key


@dataclass(frozen=True)
class Settings:
    """Everything the library, `vaultctl` and `vaultctl server` are configured with.

    Attributes:
        db_dsn: database DSN (`sqlite:///vault.db` in the current directory by default).
        master_key: the master key, if given by environment or flag (server: unlock at start).
        master_key_file: a file holding the master key (used when `master_key` is not set).
        addr / token: remote mode (a `vaultctl server` URL and its bearer token).
        jwt_secret: HS256 secret of the server's JWT auth (>= 32 bytes).
        jwt_public_key: a PEM public key file verifying the panel's RS256/ES256/EdDSA tokens.
        jwt_jwks: a local JWKS file of verification keys chosen by `kid` (key rotation).
        jwt_max_ttl: refuse a JWT whose `exp - iat` exceeds this (None: no limit).
        argon2_time_cost / argon2_memory_kib / argon2_parallelism: Argon2id parameters for a
            new vault and for master-key rotation (tests use cheap ones).
        auto_lock / auto_lock_timeout: lock after this much inactivity.
        listen: the server's `HOST:PORT`.
        workers: server worker processes (default: one per CPU, `default_workers`); they share
            one lock state, but each counts failed logins and unlocks on its own
            (docs/decisions.md).
        cpu_affinity: with a worker per CPU (or a multiple), bind each to a CPU of its own, in
            turn (`http.serve.worker_cpu`).
        trusted_proxies: peers (IPs or CIDRs) whose `X-Forwarded-For` the server believes.
        body_limit: largest request body in bytes (413 above it).
        dev: the server's development mode (generated keys printed at start).
        token_ttl: lifetime of tokens issued by `/api/auth/login`.
        expiry_warning: the window of the "secrets nearing expiry" gauge.
        graceful_timeout: seconds in-flight requests get to finish on SIGTERM.
        threads: size of the server's thread pool that runs the synchronous core (16: with
            64, on PostgreSQL, the threads' round trips queued for the GIL and throughput fell
            by half; see docs/decisions.md, "Soak results").
        tls_cert / tls_key: the server's certificate chain and key (PEM files): HTTPS.
        tls_client_ca: CA bundle for client certificates (mutual TLS; needs `tls_cert`).
        ca_cert: remote mode: CA bundle that verifies the server's certificate.
        auto_unlock: unlock again from the key source after an auto-lock (needs a key).
        cleanup_interval: period of the server's TTL cleanup job (zero: off).
        ui: serve the web console at `/ui/` (`--no-ui` turns it off).
        webhook_interval / webhook_in_flight / webhook_retry_base / webhook_max_age /
            webhook_timeout: the webhook sender's period and delivery options (`SendOptions`).
        outbox_retention: how long failed deliveries stay in the outbox (delivered ones are
            pruned by the next `outbox-prune` pass).
        reminder_interval / reminder_lead_days: the expiry-reminder job's period and lead times.
        audit_devices: audit device specs (`core.audit_devices`): every committed audit entry
            is streamed to each.
        totp_key_file: the TOTP key file (32+ bytes, the same on every server sharing the
            database) sealing users' TOTP seeds (`VAULT_TOTP_KEY_FILE`).
    """

    db_dsn: str = DEFAULT_DSN
    master_key: Secret | None = None
    master_key_file: str | None = None
    addr: str | None = None
    token: Secret | None = None
    jwt_secret: Secret | None = None
    jwt_public_key: str | None = None
    jwt_jwks: str | None = None
    jwt_max_ttl: timedelta | None = None
    argon2_time_cost: int = VaultConfig.argon2_time_cost
    argon2_memory_kib: int = VaultConfig.argon2_memory_kib
    argon2_parallelism: int = VaultConfig.argon2_parallelism
    auto_lock: bool = VaultConfig.auto_lock
    auto_lock_timeout: timedelta = VaultConfig.auto_lock_timeout
    listen: str = "127.0.0.1:8080"
    workers: int = field(default_factory=default_workers)
    cpu_affinity: bool = True
    trusted_proxies: tuple[str, ...] = ()
    body_limit: int = DEFAULT_BODY_LIMIT
    dev: bool = False
    token_ttl: timedelta = timedelta(hours=1)
    expiry_warning: timedelta = timedelta(days=7)
    graceful_timeout: float = 30.0
    threads: int = 16
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    ca_cert: str | None = None
    auto_unlock: bool = False
    cleanup_interval: timedelta = timedelta(hours=1)
    ui: bool = True
    audit_devices: tuple[str, ...] = ()
    webhook_interval: float = 1.0
    webhook_in_flight: int = 8
    webhook_retry_base: float = 10.0
    webhook_max_age: timedelta = timedelta(hours=24)
    webhook_timeout: float = 10.0
    outbox_retention: timedelta = timedelta(days=7)
    reminder_interval: float = 300.0
    reminder_lead_days: tuple[int, ...] = DEFAULT_LEAD_DAYS
    totp_key_file: str | None = None
    proxy_networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        if self.jwt_secret is not None:
            from strongroom.core.tokens import check_jwt_secret  # PyJWT: only when used

            check_jwt_secret(self.jwt_secret.reveal())
        if not 1 <= self.workers <= MAX_WORKERS:
            raise errors.InvalidInput(f"--workers must be from 1 to {MAX_WORKERS}")
        if self.body_limit < 1024:
            raise errors.InvalidInput("body limit must be at least 1024 bytes")
        if self.master_key is not None and not self.master_key.reveal():
            raise errors.InvalidInput("the master key is empty")
        if not 1 <= self.threads <= 1024:
            raise errors.InvalidInput("threads must be from 1 to 1024")
        self._check_server_options()
        object.__setattr__(self, "proxy_networks", _networks(self.trusted_proxies))
        self.vault_config()  # validates the vault options too

    def _check_server_options(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise errors.InvalidInput("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise errors.InvalidInput("--tls-client-ca needs --tls-cert and --tls-key")
        if self.auto_unlock and not (self.master_key or self.master_key_file):
            raise errors.InvalidInput(
                "--auto-unlock needs a key source: --master-key-file or VAULT_MASTER_KEY"
            )
        if self.cleanup_interval < timedelta(0):
            raise errors.InvalidInput("--cleanup-interval must not be negative")
        if not 1 <= self.webhook_in_flight <= 256:
            raise errors.InvalidInput("STRONGROOM_WEBHOOK_IN_FLIGHT must be from 1 to 256")
        if self.outbox_retention < timedelta(0):
            raise errors.InvalidInput("STRONGROOM_OUTBOX_RETENTION must not be negative")
        if not 0 < self.graceful_timeout <= 3600:
            raise errors.InvalidInput("--shutdown-timeout must be from 1s to 1h")

    @property
    def is_tls(self) -> bool:
        """True when the server serves HTTPS (`tls_cert` and `tls_key` given)."""
        return bool(self.tls_cert and self.tls_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Build settings from `environ` (the process environment when None), then `flags`
        (the command line's; None values are ignored: flag not given).

        Raises:
            InvalidInput: a variable or flag is malformed or out of range.
        """
        env = os.environ if environ is None else environ
        found: dict[str, Any] = {
            "db_dsn": env.get("DATABASE_URL", "").strip() or None,
            "master_key": _secret(env, "VAULT_MASTER_KEY"),
            "master_key_file": env.get("VAULT_MASTER_KEY_FILE", "").strip() or None,
            "addr": env.get("VAULT_ADDR", "").strip() or None,
            "token": _secret(env, "VAULT_TOKEN"),
            "jwt_secret": _secret(env, "VAULT_JWT_SECRET"),
            "jwt_public_key": env.get("VAULT_JWT_PUBLIC_KEY_FILE", "").strip() or None,
            "jwt_jwks": env.get("VAULT_JWT_JWKS_FILE", "").strip() or None,
            "jwt_max_ttl": _duration(env, "VAULT_JWT_MAX_TTL"),
            "argon2_time_cost": _int(env, "STRONGROOM_ARGON2_TIME_COST"),
            "argon2_memory_kib": _int(env, "STRONGROOM_ARGON2_MEMORY_KIB"),
            "argon2_parallelism": _int(env, "STRONGROOM_ARGON2_PARALLELISM"),
            "auto_lock": _bool(env, "STRONGROOM_AUTO_LOCK"),
            "auto_lock_timeout": _duration(env, "STRONGROOM_AUTO_LOCK_TIMEOUT"),
            "cpu_affinity": _bool(env, "STRONGROOM_CPU_AFFINITY"),
            "tls_cert": env.get("STRONGROOM_TLS_CERT", "").strip() or None,
            "tls_key": env.get("STRONGROOM_TLS_KEY", "").strip() or None,
            "tls_client_ca": env.get("STRONGROOM_TLS_CLIENT_CA", "").strip() or None,
            "ca_cert": env.get("VAULT_CACERT", "").strip() or None,
            "audit_devices": _devices(env),
            "webhook_interval": _seconds(env, "STRONGROOM_WEBHOOK_INTERVAL"),
            "webhook_in_flight": _int(env, "STRONGROOM_WEBHOOK_IN_FLIGHT"),
            "webhook_retry_base": _seconds(env, "STRONGROOM_WEBHOOK_RETRY_BASE"),
            "webhook_max_age": _duration(env, "STRONGROOM_WEBHOOK_MAX_AGE"),
            "webhook_timeout": _seconds(env, "STRONGROOM_WEBHOOK_TIMEOUT"),
            "outbox_retention": _duration(env, "STRONGROOM_OUTBOX_RETENTION"),
            "reminder_interval": _seconds(env, "STRONGROOM_REMINDER_INTERVAL"),
            "reminder_lead_days": _lead_days(env),
            "totp_key_file": env.get("VAULT_TOTP_KEY_FILE", "").strip() or None,
        }
        merged = {**found, **{k: v for k, v in flags.items() if v is not None}}
        return cls(**{k: v for k, v in merged.items() if v is not None})

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced (None values are ignored: flag not given).

        Raises:
            InvalidInput: an out-of-range value.
        """
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def is_remote(self) -> bool:
        """True when commands go to a server (`VAULT_ADDR` / `--addr`)."""
        return bool(self.addr)

    @property
    def host(self) -> str:
        """The address the server binds."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port the server binds."""
        return parse_listen(self.listen)[1]

    @property
    def has_jwt_keys(self) -> bool:
        """True when some JWT verification key is configured (secret, public key or JWKS)."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks)

    def jwt_auth(self) -> JWTAuth:
        """The server's JWT verifier: the HS256 secret, the public key and the JWKS keys.

        Raises:
            InvalidInput: no key at all, an unreadable key file, or a malformed key.
        """
        # PyJWT and cryptography load here, not with the settings (`vaultctl` starts light).
        from strongroom.core.jwt_keys import VerifyKey, key_from_pem, keys_from_jwks
        from strongroom.core.tokens import JWTAuth

        keys: list[VerifyKey] = []
        if self.jwt_public_key:
            keys.append(key_from_pem(_read(self.jwt_public_key, "--jwt-public-key")))
        if self.jwt_jwks:
            keys.extend(
                keys_from_jwks(_read(self.jwt_jwks, "--jwt-jwks").decode("utf-8", "replace"))
            )
        secret = self.jwt_secret.reveal() if self.jwt_secret else None
        return JWTAuth(secret, default_ttl=self.token_ttl, keys=keys, max_ttl=self.jwt_max_ttl)

    def resolved_master_key(self) -> str | None:
        """The master key: `master_key`, else the content of `master_key_file`, else None.

        Raises:
            InvalidInput: the key file is unreadable or empty.
        """
        if self.master_key:
            return self.master_key.reveal()
        if self.master_key_file:
            return read_key_file(self.master_key_file)
        return None

    def send_options(self) -> SendOptions:
        """The webhook sender's options these settings describe."""
        from strongroom.core.webhook_sender import SendOptions  # the server's, not the CLI's

        return SendOptions(
            in_flight=self.webhook_in_flight,
            retry_base=timedelta(seconds=self.webhook_retry_base),
            max_age=self.webhook_max_age,
            timeout=self.webhook_timeout,
        )

    def vault_config(self, *, auto_lock: bool | None = None) -> VaultConfig:
        """The core options these settings describe (`auto_lock` overridden for server workers
        whose supervisor owns auto-lock).

        Raises:
            InvalidInput: an out-of-range option.
        """
        return VaultConfig(
            auto_lock=self.auto_lock if auto_lock is None else auto_lock,
            auto_lock_timeout=self.auto_lock_timeout,
            argon2_time_cost=self.argon2_time_cost,
            argon2_memory_kib=self.argon2_memory_kib,
            argon2_parallelism=self.argon2_parallelism,
            audit_devices=self.audit_devices,
            totp_key=read_key_file(self.totp_key_file) if self.totp_key_file else None,
        )


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, minus the master key, for a child process."""
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_VARIABLES}
    env.update(extra)
    return env
