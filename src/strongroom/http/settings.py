"""ServerSettings: the typed, frozen options of `vaultctl server`, built from explicit arguments.

Nothing here reads the environment: the CLI (or `config.py`) gathers flags and variables and
passes them in. Secret settings (master key, JWT secret) are wrapped in `Masked`, whose repr never
shows the value, so a logged or printed settings object leaks nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta

from strongroom import errors
from strongroom.config import Secret as Masked
from strongroom.core import VaultConfig
from strongroom.core.tokens import check_jwt_secret

__all__ = ["DEFAULT_BODY_LIMIT", "Masked", "ServerSettings", "parse_listen"]

DEFAULT_BODY_LIMIT = 1024 * 1024
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@dataclass(frozen=True)
class ServerSettings:
    """Everything the HTTP server needs, validated at construction.

    Attributes:
        listen: `HOST:PORT` to bind.
        db_dsn: the database (`sqlite:///...`, `postgresql://...`).
        workers: worker processes; they share one lock state (docs/decisions.md, "The HTTP
            server").
        master_key: unlock at start with it; None starts locked.
        jwt_secret: the HS256 key (>= 32 bytes) shared with whoever issues tokens.
        trusted_proxies: peers (IPs or CIDRs) whose `X-Forwarded-For` is believed.
        body_limit: largest request body in bytes (413 above it).
        dev: development mode (generated keys printed at start).
        auto_lock / auto_lock_timeout: lock after this long without a secret operation.
        argon2_*: Argon2id parameters for a new vault (tests use cheap ones).
        token_ttl: lifetime of tokens issued by `/api/auth/login`.
        expiry_warning: the window of the "secrets nearing expiry" gauge.
        graceful_timeout: seconds in-flight requests get to finish on SIGTERM.
        threads: size of the thread pool that runs the synchronous core.
    """

    jwt_secret: Masked
    listen: str = "127.0.0.1:8080"
    db_dsn: str = "sqlite:///vault.db"
    workers: int = 1
    master_key: Masked | None = None
    trusted_proxies: tuple[str, ...] = ()
    body_limit: int = DEFAULT_BODY_LIMIT
    dev: bool = False
    auto_lock: bool = True
    auto_lock_timeout: timedelta = timedelta(minutes=15)
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 4
    token_ttl: timedelta = timedelta(hours=1)
    expiry_warning: timedelta = timedelta(days=7)
    graceful_timeout: float = 30.0
    threads: int = 64
    proxy_networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        check_jwt_secret(self.jwt_secret.reveal())
        if not 1 <= self.workers <= 64:
            raise errors.InvalidInput("--workers must be from 1 to 64")
        if self.body_limit < 1024:
            raise errors.InvalidInput("body limit must be at least 1024 bytes")
        if self.master_key is not None and not self.master_key.reveal():
            raise errors.InvalidInput("the master key is empty")
        if not 1 <= self.threads <= 1024:
            raise errors.InvalidInput("threads must be from 1 to 1024")
        object.__setattr__(self, "proxy_networks", _networks(self.trusted_proxies))
        self.vault_config()  # validates the vault options too

    @property
    def host(self) -> str:
        """The address to bind."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port to bind."""
        return parse_listen(self.listen)[1]

    def vault_config(self, *, auto_lock: bool | None = None) -> VaultConfig:
        """The core options (`auto_lock` overridden for workers whose supervisor owns it).

        Raises:
            InvalidInput: out-of-range options.
        """
        return VaultConfig(
            auto_lock=self.auto_lock if auto_lock is None else auto_lock,
            auto_lock_timeout=self.auto_lock_timeout,
            argon2_time_cost=self.argon2_time_cost,
            argon2_memory_kib=self.argon2_memory_kib,
            argon2_parallelism=self.argon2_parallelism,
        )
