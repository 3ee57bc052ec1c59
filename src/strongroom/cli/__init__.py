"""The `vaultctl` command-line adapter (Click)."""
