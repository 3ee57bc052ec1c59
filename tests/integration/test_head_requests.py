"""HEAD never runs a handler's write branch. On `/v1` it is 405 with `Allow` everywhere but
`sys/health`, as in Vault/OpenBao; on `/api/vault` it is answered as GET without a body (it was
a 500 on routes serving several methods)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.server_proc import ServerProcess, token

V1_WRITES = [
    "/v1/secret/data/head/a",
    "/v1/secret/metadata/head/a",
    "/v1/secret/subkeys/head/a",
    "/v1/secret/config",
    "/v1/auth/approle/role/headrole",
    "/v1/auth/approle/role/headrole/secret-id",
    "/v1/sys/policies/acl/headpolicy",
    "/v1/sys/policy/headpolicy",
    "/v1/sys/mounts/headmount",
    "/v1/kv/data/a",
]


def test_head_is_refused_on_v1_and_read_only_on_the_api(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        with server.client() as api:
            vault = {"X-Vault-Token": token()}
            for path in V1_WRITES:
                head = api.head(path, headers=vault)
                assert head.status_code == 405, (path, head.status_code)
                assert "HEAD" not in head.headers["allow"] and head.headers["allow"], path
            assert api.head("/v1/sys/health").status_code == 200
            # Nothing was created by those HEADs.
            assert api.get("/v1/auth/approle/role/headrole", headers=vault).status_code == 404
            assert api.get("/v1/sys/policies/acl/headpolicy", headers=vault).status_code == 404
            assert api.get("/v1/sys/mounts/headmount", headers=vault).status_code in (400, 404)
            for path in ("/api/vault/users", "/api/vault/policies", "/api/vault/health"):
                head = api.head(path)
                assert head.status_code == 200 and head.content == b"", (path, head.status_code)
    finally:
        assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output()
