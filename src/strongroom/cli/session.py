"""One `vaultctl` invocation: global options, settings, the master key, local vs remote dispatch.

Global options are accepted before or after the command name (`vaultctl --master-key K get ...`
and `vaultctl get ... --master-key K`); either way they land in the invocation's `Session`.
Commands are written once against `api.VaultAPI`: `Session.api()` returns the core `Vault`
(local mode, on `--db-dsn`) or `strongroom.client.Client` (remote mode, with `--addr`/`--token`).
Each process is its own vault instance: commands other than unlock/lock/status unlock it with the
master key for the duration of the command only. Nothing here prints or logs a key or a value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from strongroom import errors
from strongroom.api import VaultAPI
from strongroom.cli import startup, vaultcheck
from strongroom.cli.addr import server_url
from strongroom.config import DEFAULT_DSN, Secret, Settings, read_key_file
from strongroom.models import DEFAULT_ACTOR, Actor

if TYPE_CHECKING:
    from strongroom.client import Client
    from strongroom.core import Vault

__all__ = ["Session", "global_options", "read_key_file", "session_of"]

F = TypeVar("F", bound=Callable[..., Any])

KEY_ON_COMMAND_LINE = (
    "Warning: a master key on the command line is visible in the process list "
    "and shell history; prefer VAULT_MASTER_KEY or --master-key-file"
)


@dataclass
class _Global:
    decls: tuple[str, ...]
    help: str
    kwargs: dict[str, Any]


_GLOBALS = [
    _Global(
        ("--db-dsn",),
        f"Database DSN [env: DATABASE_URL; default: {DEFAULT_DSN} in the current directory].",
        {"metavar": "DSN"},
    ),
    _Global(
        ("--master-key",),
        "Vault master key [env: VAULT_MASTER_KEY]. Visible in the process "
        "list: prefer the variable or --master-key-file.",
        {"metavar": "KEY"},
    ),
    _Global(
        ("--master-key-file",),
        "Read the master key from FILE (one trailing newline is "
        "stripped) [env: VAULT_MASTER_KEY_FILE].",
        {"metavar": "FILE"},
    ),
    _Global(
        ("--addr",),
        "Remote mode: URL of a `vaultctl server`; a bare HOST:PORT means http:// on "
        "loopback [env: VAULT_ADDR].",
        {"metavar": "URL"},
    ),
    _Global(("--token",), "Remote mode: bearer token [env: VAULT_TOKEN].", {"metavar": "TOKEN"}),
    _Global(
        ("--ca-cert",),
        "Remote mode: PEM CA bundle that verifies an https:// server [env: VAULT_CACERT].",
        {"metavar": "FILE"},
    ),
    _Global(
        ("--user-id",),
        "User ID recorded in the audit log (default: 1).",
        {"type": click.IntRange(min=0), "metavar": "N"},
    ),
    _Global(
        ("--quiet", "-q"),
        "Print no confirmations; `get` prints the bare value.",
        {"is_flag": True, "default": None},
    ),
    _Global(("--debug",), "Show a traceback on errors.", {"is_flag": True, "default": None}),
]

#: `--format` before the command name; the commands' own `--format` (after it) wins over it.
GROUP_FORMAT = _Global(
    ("--format", "group_format"),
    "Output format: text (default) or json (stable keys, ISO-8601 UTC times); commands that "
    "print data take it after their name too.",
    {"type": click.Choice(["text", "json"]), "metavar": "[text|json]"},
)


class Session:
    """The state of one invocation: flags, settings, and the vault (opened lazily)."""

    def __init__(self) -> None:
        self.flags: dict[str, Any] = {}
        self._settings: Settings | None = None
        self._api: VaultAPI | None = None
        self._local: Vault | None = None
        self._actor: Actor | None = None
        self._warned = False
        #: This invocation initialised a new vault (set by `unlock_local`).
        self.initialised_now = False

    # -- flags and settings -----------------------------------------------------------------
    @property
    def debug(self) -> bool:
        """`--debug` was given."""
        return bool(self.flags.get("debug"))

    @property
    def quiet(self) -> bool:
        """`--quiet` was given."""
        return bool(self.flags.get("quiet"))

    @property
    def user_id(self) -> int:
        """The acting user id for the audit log."""
        return int(self.flags.get("user_id") or DEFAULT_ACTOR.user_id)

    @property
    def actor(self) -> Actor:
        """Who this invocation acts as (`--user-id`, from the command line), built once."""
        if self._actor is None:
            self._actor = Actor(self.user_id, "cli")
        return self._actor

    @property
    def settings(self) -> Settings:
        """Settings from the environment, overridden by flags.

        Raises:
            InvalidInput: a malformed environment variable or an unreadable key file.
        """
        if self._settings is None:
            f = self.flags
            key = f.get("master_key")
            if key is None and f.get("master_key_file"):
                key = read_key_file(f["master_key_file"])
            self._settings = Settings.from_env(
                db_dsn=f.get("db_dsn"),
                addr=f.get("addr"),
                master_key=Secret(key) if key else None,
                token=Secret(f["token"]) if f.get("token") else None,
                ca_cert=f.get("ca_cert"),
            )
        return self._settings

    def where(self) -> str:
        """A line naming the vault this invocation uses (no password)."""
        if self.settings.is_remote:
            return f"Server: {self.settings.addr}"
        return f"Storage: {self.local().storage_label}"

    # -- the vault --------------------------------------------------------------------------
    def api(self) -> VaultAPI:
        """The vault, local (core `Vault`) or remote (`Client`), opened once per invocation.

        Raises:
            UsageError: remote mode without a token.
            NoVault: local mode and no vault at the DSN (nothing is created).
            InvalidInput / StorageUnavailable: bad DSN or unreachable database.
        """
        if self._api is None:
            if self.settings.is_remote:
                self._api = open_client(self.settings)
            else:
                self._api = cast("VaultAPI", self.local())
        return self._api

    def remote(self) -> Client:
        """The HTTP client of remote mode (for the administration endpoints).

        Raises:
            UsageError: not in remote mode, or no token.
        """
        from strongroom.client import Client  # type: ignore[import-not-found, unused-ignore]

        api = self.api()
        if not isinstance(api, Client):
            raise click.UsageError("this needs remote mode (--addr)")
        return api

    def local(self, *, create: bool = False, need_keys: bool = True) -> Vault:
        """The core vault on `--db-dsn` (local mode only).

        Without `create` a database without a vault (without our tables, if not `need_keys`)
        is refused before anything is opened, so no file or table is created (cli.vaultcheck).

        Raises:
            NoVault: no vault there and not `create`.
            InvalidInput / StorageUnavailable: bad DSN or unreachable database.
        """
        if self._local is None:
            from strongroom.core import open_vault

            if not create:
                vaultcheck.require_vault(self.settings.db_dsn, need_keys=need_keys)
            self._local = open_vault(self.settings.db_dsn, self.settings.vault_config())
            startup.collector_on()  # (opened: its imports are done, cli.startup)
        return self._local

    def unlock_local(self, *, initialise: bool = False) -> Vault:
        """The local vault, unlocked with the master key; with `initialise`, a database without
        a vault gets one (the key must pass `core.keyrules`, checked before anything is created)
        and one `Initialized a new vault` line goes to stderr.

        Raises:
            NoVault: no vault there and not `initialise`.
            InvalidMasterKey: the key does not open the vault.
            InvalidInput: no key available, or a new vault's key is too weak.
        """
        fresh = initialise and not vaultcheck.is_initialised(self.settings.db_dsn)
        vault = None if fresh else self.local()  # a missing vault fails before the key prompt
        key = self.master_key(initialising=fresh)
        assert key is not None  # noqa: S101 - prompt=True never returns None
        if vault is None:
            vaultcheck.check_new_master_key(key)
            vault = self.local(create=True)
            fresh = not vault.status().initialized  # another process may have been first
        vault.unlock(key, actor=self.actor)
        self.initialised_now = fresh
        if fresh:
            vaultcheck.announce_initialised(self.where())
        return vault

    def master_key(self, *, prompt: bool = True, initialising: bool = False) -> str | None:
        """The master key from flag, key file, environment or (on a TTY) a hidden prompt.

        Returns None only when `prompt` is False and no key is configured.

        Raises:
            InvalidInput: no key available (exit 2), or an unreadable key file.
        """
        configured = self.settings.resolved_master_key()
        if configured is not None:
            return configured
        if not prompt:
            return None
        if sys.stdin is not None and sys.stdin.isatty():
            key: str = click.prompt(
                "Master key", hide_input=True, confirmation_prompt=initialising, err=True
            )
            return key
        raise errors.InvalidInput(
            "no master key: set VAULT_MASTER_KEY, or pass "
            "--master-key-file FILE (or --master-key KEY)"
        )

    def unlocked(self, *, initialise: bool = False) -> VaultAPI:
        """The vault, unlocked for this command (remote: the server's own lock state).

        Only `initialise` (unlock, create) may create a vault locally (see `unlock_local`).

        Raises:
            NoVault: local mode, no vault and not `initialise`.
            InvalidMasterKey: the key does not open the vault.
            InvalidInput: no key available.
        """
        if self.settings.is_remote:
            return self.api()
        return cast("VaultAPI", self.unlock_local(initialise=initialise))

    def at_mount(self, mount: str, *, initialise: bool = False) -> VaultAPI:
        """The secret commands' API at the KV mount `mount`: `unlocked()` itself for `secret`
        (the design document's API, unchanged), else `cli.mounted.MountedSecrets` over the
        library's `vault.kv` (local) or the server's `/v1/<mount>/` KV API (remote).

        Raises:
            MountNotFound: nothing (or no KV engine) is mounted at `mount`.
            As `unlocked()`.
        """
        if mount.strip("/") == "secret":
            return self.unlocked(initialise=initialise)
        from strongroom.cli import mounted

        api = self.unlocked()
        kv: mounted.KVBackend
        if self.settings.is_remote:
            kv = mounted.RemoteKV(cast("Client", api), mount)
        else:
            kv = mounted.LocalKV(cast("Vault", api), mount, self.actor)
        return cast("VaultAPI", mounted.MountedSecrets(kv))

    def require_local(self, what: str) -> None:
        """Refuse a command that works on the database directly in remote mode.

        Raises:
            UsageError: remote mode is configured.
        """
        if self.settings.is_remote:
            raise click.UsageError(
                f"{what} works on the database directly: run it without "
                "--addr/VAULT_ADDR, with --db-dsn reaching the database"
            )

    def close(self) -> None:
        """Finish queued writes, drop keys, close connections."""
        api, local, self._api, self._local = self._api, self._local, None, None
        if api is not None:
            api.close()
        if local is not None:
            local.close()

    def warn_key_on_command_line(self) -> None:
        """Print the process-list warning once per invocation."""
        if not self._warned:
            self._warned = True
            click.echo(KEY_ON_COMMAND_LINE, err=True)


def open_client(settings: Settings) -> VaultAPI:
    """An HTTP client for a `vaultctl server`; it implements `VaultAPI` as the core Vault does.

    Raises:
        UsageError: remote mode without a token, or an --addr that is not a server URL.
    """
    if not settings.addr or not settings.token:
        raise click.UsageError("remote mode needs a token: pass --token or set VAULT_TOKEN")
    from strongroom.client import Client  # type: ignore[import-not-found, unused-ignore]

    startup.collector_on()  # (the imports are done: cli.startup)
    if settings.ca_cert and not Path(settings.ca_cert).is_file():
        raise click.UsageError(f"--ca-cert {settings.ca_cert!r}: no such file")
    client: VaultAPI = Client(
        server_url(settings.addr), settings.token.reveal(), ca_cert=settings.ca_cert
    )
    return client


def session_of(ctx: click.Context) -> Session:
    """The invocation's Session (created on first use, shared by group and command)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session()
    return cast(Session, root.obj)


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is None or value is False or param.name is None:
        return
    session = session_of(ctx)
    session.flags[param.name] = value
    if param.name == "master_key":
        session.warn_key_on_command_line()


def global_options(show: Iterable[str] = (), *, on_group: bool = False) -> Callable[[F], F]:
    """Add the global options to a group or command.

    On commands they are hidden from `--help` (the group's help lists them) except those named in
    `show` (the design document lists `--master-key` on unlock and `--user-id` on writes).
    """
    visible = set(show)
    # Commands have their own --format (cli.inputs.format_option), which reads this one.
    options = [*_GLOBALS, GROUP_FORMAT] if on_group else _GLOBALS

    def decorate(f: F) -> F:
        for g in reversed(options):
            name = g.decls[0].lstrip("-").replace("-", "_")
            f = click.option(
                *g.decls,
                help=g.help,
                expose_value=False,
                callback=_store,
                is_eager=True,
                hidden=not on_group and name not in visible,
                **g.kwargs,
            )(f)
        return f

    return decorate
