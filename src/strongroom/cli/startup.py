"""`vaultctl`'s entry point: the cyclic garbage collector off while a command imports.

Importing what a command needs (Click, SQLAlchemy, the core: some 300,000 objects) made the
collector run ~125 times, each pass walking more of a heap in which nothing is garbage: ~70 ms
of each local command on the test machine (docs/decisions.md, "Speed, round twelve"). So the
console script turns it off before it imports anything (`main`), and `collector_on` turns it
on again, with everything built so far frozen out of its sight (`gc.freeze`), as soon as a
command has what it needs: when it opens a vault or a client (`cli.session`), when a
restore starts (`cli.admin`, which opens its database itself) and when the server starts
(`cli.server`). A command that does none of these is short (`--help`, `--version`, an error
before the vault opens); its cyclic garbage, if any, waits for the process to exit. The few
hundred objects the imports left as garbage are frozen with the rest: a `gc.collect()` first
would cost a full pass, most of what this saves. Nothing here runs in the library or in a
process that imports `strongroom.cli` without this entry point (tests, `cog`).
"""

from __future__ import annotations

import gc

__all__ = ["collector_on", "main"]


def main() -> None:
    """Console-script entry point (`vaultctl`, `python -m strongroom`)."""
    gc.disable()  # (until `collector_on`: see the module)
    from strongroom.cli.main import main as run

    run()


def collector_on() -> None:
    """Turn the garbage collector back on if `main` turned it off, with every object that
    exists now frozen (modules, classes, the command's set-up: they live until exit)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
