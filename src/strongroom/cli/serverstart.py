"""What `vaultctl server` does before it serves: check the port, create a new vault (announced),
and own `--dev`'s throw-away folder.

Kept apart from the option parsing in `cli.server` so each step is a call there: the listen
address is bound once as a check before the banner (an address in use is one line, exit 2); a
new database with a master key is initialised here, so the `Initialized a new vault` line appears
exactly when it happens; the `--dev` folder is removed when the server stops, however it stops.
"""

from __future__ import annotations

import atexit
import errno
import shutil
import signal
import socket

from strongroom import errors
from strongroom.cli import vaultcheck
from strongroom.config import Settings
from strongroom.core import open_vault
from strongroom.http.deps import SERVER_ACTOR

__all__ = ["check_listen", "initialise_if_new", "remove_on_exit"]


def check_listen(host: str, port: int) -> None:
    """Bind `host:port` once (as uvicorn will) to fail early and in one line.

    Raises:
        InvalidInput: the address is in use or cannot be bound (exit 2).
    """
    if port == 0:
        return
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise errors.InvalidInput(f"{shown} is in use") from None
        reason = exc.strerror or type(exc).__name__
        raise errors.InvalidInput(f"cannot listen on {shown}: {reason}") from None


def initialise_if_new(settings: Settings) -> bool:
    """With a master key and no vault at the DSN yet, create the vault now; say whether it did.

    Raises:
        InvalidInput: the key is too weak for a new vault (`core.keyrules`); nothing is created.
        StorageUnavailable: the database cannot be reached.
    """
    if settings.master_key is None or vaultcheck.is_initialised(settings.db_dsn):
        return False
    key = vaultcheck.check_new_master_key(settings.master_key.reveal())
    vault = open_vault(settings.db_dsn, settings.vault_config(auto_lock=False))
    try:
        fresh = not vault.status().initialized  # another instance may have been first
        vault.unlock(key, actor=SERVER_ACTOR)
        return fresh
    finally:
        vault.close()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def remove_on_exit(folder: str) -> None:
    """Remove `--dev`'s throw-away `folder` when this process exits, however it stops.

    SIGTERM is turned into an orderly exit (SystemExit) until the server installs its own
    handlers, which end in SystemExit too, and Ctrl-C unwinds as KeyboardInterrupt: either way
    the interpreter's exit hooks run and remove the folder. Only SIGKILL leaves it behind.
    """
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
