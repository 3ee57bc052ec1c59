"""Reads are routed by each server's copy of the mount table (`Mounts.find_cached`, at most 1 s
old): two servers on one PostgreSQL database, the mount table changed through one, requests
through the other. A stale copy must never answer differently from the table itself: not a
new mount missed, not another mount's key read under the old mount's policy path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_proc import ServerProcess, token

pytestmark = pytest.mark.postgres

ADMIN = {"X-Vault-Token": token("SuperAdmin")}
#: A user who may read the KV v1 key `kv1/foo` and nothing else.
USER = {"X-Vault-Token": token("App", user_id=7, policies=["only-kv1-foo"])}


@pytest.fixture
def servers(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(tmp_path, dsn=pg_dsn).start()
    try:
        second = ServerProcess(tmp_path, dsn=pg_dsn).start()
        try:
            yield first, second
        finally:
            assert second.stop() == 0, second.output()
    finally:
        assert first.stop() == 0, first.output()


def call(
    server: ServerProcess, method: str, path: str, headers: dict[str, str], **kw: object
) -> httpx.Response:
    return httpx.request(method, f"{server.url}/v1/{path}", headers=headers, timeout=10, **kw)  # type: ignore[arg-type]


def test_a_stale_routing_copy_answers_as_the_table(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    admin_side, user_side = servers
    for path, body in (
        ("sys/mounts/kv1", {"type": "kv"}),
        ("sys/mounts/kv2", {"type": "kv", "options": {"version": "2"}}),
    ):
        assert call(admin_side, "POST", path, ADMIN, json=body).status_code == 204
    policy = {"policy": 'path "kv1/foo" { capabilities = ["read"] }'}
    answer = call(admin_side, "PUT", "sys/policies/acl/only-kv1-foo", ADMIN, json=policy)
    assert answer.status_code in (200, 204), answer.text
    assert call(admin_side, "POST", "kv1/foo", ADMIN, json={"who": "kv1"}).status_code == 204
    secret = {"data": {"who": "kv2, not for the user"}}
    assert call(admin_side, "POST", "kv2/data/foo", ADMIN, json=secret).status_code == 200

    # The user's server reads (and so keeps its copy of the table) ...
    read = call(user_side, "GET", "kv1/foo", USER)
    assert read.status_code == 200 and read.json()["data"] == {"who": "kv1"}, read.text
    assert call(user_side, "GET", "kv2/data/foo", USER).status_code == 403
    # ... then the admin swaps the mounts through the other server: `kv1/` is now the v2
    # mount, and `kv1/foo` no KV v2 route at all.
    for source, target in (("kv1", "kv1-old"), ("kv2", "kv1")):
        moved = call(admin_side, "POST", "sys/remount", ADMIN, json={"from": source, "to": target})
        assert moved.status_code == 200, moved.text
    for server in (user_side, admin_side):  # the copy (well within its second) and the table
        stale = call(server, "GET", "kv1/foo", USER)
        assert stale.status_code == 404, stale.text
        assert "not for the user" not in stale.text
    assert call(user_side, "GET", "kv1/data/foo", USER).status_code == 403
    admin_read = call(user_side, "GET", "kv1/data/foo", ADMIN)
    assert admin_read.json()["data"]["data"] == secret["data"], admin_read.text

    # An upgrade in place (same mount id) through the other server: the copy's v1 route is
    # refused by the read, and the request routed again as the table says.
    assert call(admin_side, "POST", "sys/mounts/kv3", ADMIN, json={"type": "kv"}).status_code == 204
    assert (
        call(admin_side, "POST", "kv3/data", ADMIN, json={"who": "v1 key data"}).status_code == 204
    )
    assert call(user_side, "GET", "kv3/data", ADMIN).json()["data"] == {"who": "v1 key data"}
    tune = {"options": {"version": "2"}}
    assert call(admin_side, "POST", "sys/mounts/kv3/tune", ADMIN, json=tune).status_code in (
        200,
        204,
    )
    upgraded = call(user_side, "GET", "kv3/data", ADMIN)  # v2: `data` without a key
    assert upgraded.status_code == 404, upgraded.text

    # A mount enabled through the other server is there at once, for reads and writes.
    assert (
        call(admin_side, "POST", "sys/mounts/fresh", ADMIN, json={"type": "kv"}).status_code == 204
    )
    assert call(user_side, "POST", "fresh/k", ADMIN, json={"v": "1"}).status_code == 204
    assert call(user_side, "GET", "fresh/k", ADMIN).json()["data"] == {"v": "1"}
