"""The one-line error message `vaultctl` prints for a core or client error, with the fix where
there is an obvious one (a locked vault: the command that unlocks it)."""

from __future__ import annotations

from strongroom import errors

__all__ = ["LOCKED_HINT", "message_for"]

LOCKED_HINT = "run 'vaultctl unlock' (with the same --addr/VAULT_ADDR for a server) to unlock it"


def message_for(exc: errors.StrongroomError) -> str:
    """`exc`'s message, plus how to recover when the CLI can say it in a few words."""
    if isinstance(exc, errors.VaultLocked):
        return f"{exc.message}: {LOCKED_HINT}"
    return exc.message
