from strongroom import Vault


def test_create_then_get(vault: Vault) -> None:
    vault.create_secret("a/b", "value-1")
    assert vault.get_secret("a/b") == "value-1"
