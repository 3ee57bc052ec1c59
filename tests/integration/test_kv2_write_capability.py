"""A KV v2 write needs `create` for a new key and `update` for an existing one, as in Vault.

The server skips the look at whether the key exists when the caller may do both
(`api_kv2._require_write`); these tests hold the distinction for callers that may do only one.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from strongroom import open_vault
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.kv2_support import strongroom_server


def test_create_and_update_are_told_apart(tmp_path: Path) -> None:
    with strongroom_server(tmp_path, MASTER_KEY) as ours:
        admin = {"X-Vault-Token": ours.token()}
        seeded = httpx.post(
            f"{ours.url}/v1/secret/data/cap/existing", headers=admin, json={"data": {"v": "1"}}
        )
        assert seeded.status_code == 200
        local = open_vault(ours.dsn, fast_config(auto_lock=False))
        try:
            local.access.write_policy("only-create", "cap/*: create")
            local.access.write_policy("only-update", "cap/*: update")
            local.access.write_policy("create-update", "cap/*: create, update")
        finally:
            local.close()
        creator = {"X-Vault-Token": ours.token("app", 40, ("only-create",))}
        updater = {"X-Vault-Token": ours.token("app", 41, ("only-update",))}
        both = {"X-Vault-Token": ours.token("app", 42, ("create-update",))}

        def write(headers: dict[str, str], path: str) -> int:
            url = f"{ours.url}/v1/secret/data/{path}"
            return httpx.post(url, headers=headers, json={"data": {"v": "2"}}).status_code

        def write_metadata(headers: dict[str, str], path: str) -> int:
            url = f"{ours.url}/v1/secret/metadata/{path}"
            return httpx.post(url, headers=headers, json={"max_versions": 3}).status_code

        assert write(creator, "cap/new1") == 200
        assert write(creator, "cap/existing") == 403
        assert write(updater, "cap/new2") == 403
        assert write(updater, "cap/existing") == 200
        assert write(both, "cap/new3") == 200
        assert write(both, "cap/existing") == 200
        assert write_metadata(creator, "cap/existing") == 403
        assert write_metadata(updater, "cap/new4") == 403
        assert write_metadata(creator, "cap/new5") == 204
        assert write_metadata(updater, "cap/existing") == 204
        assert write_metadata(both, "cap/new6") == 204
        # Refused writes stored nothing: versions 2 and 3 are the two allowed updates.
        current = httpx.get(f"{ours.url}/v1/secret/data/cap/existing", headers=admin).json()
        assert current["data"]["metadata"]["version"] == 3
        assert httpx.get(f"{ours.url}/v1/secret/data/cap/new2", headers=admin).status_code == 404
