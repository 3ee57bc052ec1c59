"""Lock state: `unlock`, `lock` and `status` (local: verify the key; remote: the server's state).

Locally nothing holds keys between commands: every `vaultctl` process unlocks for its own run.
"""

from __future__ import annotations

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import global_options, session_of

__all__ = ["COMMANDS"]


@click.command()
@global_options(show=("master_key",))
@format_option
@click.pass_context
def unlock(ctx: click.Context, fmt: str) -> None:
    """Unlock the vault with the master key (first use initialises an empty database).

    Locally this verifies the key: each vaultctl command unlocks the vault for its own
    run, with the key from VAULT_MASTER_KEY, --master-key-file or --master-key. Against a
    server (--addr) it unlocks the server.

    \b
    Example:
      vaultctl unlock --master-key "your-master-key"
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        api = s.api()
        key = s.master_key()
        assert key is not None  # noqa: S101 - prompt=True never returns None
        api.unlock(key, actor=s.actor)
    else:
        s.unlock_local(initialise=True)  # prints "Initialized a new vault" when it did
    message = "Vault unlocked successfully"
    render.emit(
        fmt,
        message,
        {"message": message, "locked": False, "initialized_now": s.initialised_now},
        quiet=s.quiet,
    )


@click.command()
@global_options()
@format_option
@click.pass_context
def lock(ctx: click.Context, fmt: str) -> None:
    """Lock the vault: drop every key from memory.

    Against a server (--addr) this locks the server. Locally no key outlives a command
    (each vaultctl process unlocks, works and drops its keys), so the vault is always
    locked at rest; when a master key is configured, lock verifies it and records the
    lock in the audit log.

    \b
    Example:
      vaultctl lock
    """
    s = session_of(ctx)
    api = s.api()
    if s.settings.is_remote:
        api.lock(actor=s.actor)
        message = "Vault locked successfully"
    else:
        key = s.master_key(prompt=False)
        if key is not None and api.status().initialized:
            api.unlock(key, actor=s.actor)
            api.lock(actor=s.actor)
        message = (
            "Vault locked successfully (local mode keeps no keys between commands; "
            "each command unlocks with the master key for its own run)"
        )
    render.emit(fmt, message, {"message": message, "locked": True}, quiet=s.quiet)


@click.command()
@global_options()
@format_option
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Show whether the vault is locked and initialised (needs no master key).

    \b
    Example:
      vaultctl status
      vaultctl status --format json
    """
    s = session_of(ctx)
    st = s.api().status()
    data = {
        "locked": st.locked,
        "initialized": st.initialized,
        "vault_id": st.vault_id,
        "terms": st.terms,
        "current_term": st.current_term,
        "mode": "remote" if s.settings.is_remote else "local",
    }
    render.emit(fmt, render.render_status(st, s.where()), data)


COMMANDS: list[click.Command] = [unlock, lock, status]
