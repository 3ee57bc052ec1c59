"""The vaultctl command-line interface."""
