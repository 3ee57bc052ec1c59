"""A stand-in `vaultctl` holding only `import-vault`, for branches without the full CLI.

It gives the command what `vaultctl`'s Session gives it: the local vault on `--db-dsn` and the
master key from VAULT_MASTER_KEY (cheap Argon2 settings from the test configuration).
Usage: python -m tests.integration.import_shim --db-dsn DSN import-vault --addr ... --token ...
"""

from __future__ import annotations

import os

import click

from strongroom import Vault, open_vault
from strongroom.cli.import_vault import import_vault
from tests.conftest import fast_config


class _Session:
    user_id = 1

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._vault: Vault | None = None

    def local(self) -> Vault:
        if self._vault is None:
            self._vault = open_vault(self._dsn, fast_config(auto_lock=False))
        return self._vault

    def master_key(self, *, prompt: bool = True, initialising: bool = False) -> str | None:
        return os.environ["VAULT_MASTER_KEY"]

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()


@click.group()
@click.option("--db-dsn", required=True)
@click.pass_context
def main(ctx: click.Context, db_dsn: str) -> None:
    session = _Session(db_dsn)
    ctx.obj = session
    ctx.call_on_close(session.close)


main.add_command(import_vault)

if __name__ == "__main__":
    main()
