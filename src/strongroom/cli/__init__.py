"""The `vaultctl` command line: a thin Click adapter over `api.VaultAPI` (local Vault or Client)."""
