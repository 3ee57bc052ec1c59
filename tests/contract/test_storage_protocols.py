"""Each core service's storage protocol, exercised on SQLite and PostgreSQL.

The typed assignments in `test_query_groups_satisfy_the_service_protocols` are the static
conformance check (mypy --strict fails if a query group stops implementing a protocol); the
other tests run every protocol method the core calls against both backends, including the KV,
rotation, user and policy queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from strongroom import errors
from strongroom.core.access import PolicyStore, UserDeleteStore, UserStore, UserTokenStore
from strongroom.core.approle import AppRoleStore, AppSecretDelete
from strongroom.core.audit_log import AuditStore
from strongroom.core.kv_rows import KVStore
from strongroom.core.mounts import MountStore
from strongroom.core.rotation import RotationStore
from strongroom.core.terms import KeyStore
from strongroom.core.token_records import EpochStore, TokenStore
from strongroom.core.totp import TOTPStore
from strongroom.core.versions import MountConfigStore, SecretStore, VersionStore
from strongroom.core.writer import AuditSink
from strongroom.storage import (
    AppRoleRow,
    AppSecretRow,
    KeysRow,
    KVConfigRow,
    MountRow,
    Storage,
    TermRow,
    TokenRow,
    VersionRow,
    open_storage,
)

NOW = datetime(2025, 11, 3, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    s = open_storage(dsn)
    yield s
    s.dispose()


def test_query_groups_satisfy_the_service_protocols(storage: Storage) -> None:
    with storage.read() as tx:
        keys: KeyStore = tx.keys
        secrets: SecretStore = tx.secrets
        versions: VersionStore = tx.secrets
        mount: MountConfigStore = tx.kv
        kv: KVStore = tx.kv
        mounts: MountStore = tx.mounts
        audit: AuditStore = tx.audit
        sink: AuditSink = tx.audit
        rotation: RotationStore = tx.rotation
        users: UserStore = tx.users
        policies: PolicyStore = tx.policies
        tokens: TokenStore = tx.tokens
        epoch: EpochStore = tx.tokens
        user_tokens: UserTokenStore = tx.tokens
        user_delete: UserDeleteStore = tx.users
        totp: TOTPStore = tx.users
        approles: AppRoleStore = tx.approles
        assert all(
            g is not None
            for g in (
                keys, secrets, versions, mount, kv, mounts, audit, sink, rotation, users,
                policies, tokens, epoch, user_tokens, user_delete, totp, approles,
            )
        )  # fmt: skip


def test_kv_store(storage: Storage) -> None:
    with storage.write() as tx:
        kv: KVStore = tx.kv
        assert kv.kv_config() == KVConfigRow()
        kv.put_kv_config(KVConfigRow(5, True, 60), NOW)
        assert kv.kv_config() == KVConfigRow(5, True, 60)  # re-read after a write
        for path, expires in (("app/a", None), ("app/b/c", NOW), ("other", None)):
            tx.secrets.insert_secret(path, None, 1, NOW, expires)
    with storage.read() as tx:
        kv = tx.kv
        assert kv.kv_config() == KVConfigRow(5, True, 60)
        assert kv.kv_paths("app/", NOW - timedelta(seconds=1)) == ["app/a", "app/b/c"]
        assert kv.kv_paths("app/", NOW) == ["app/a"]  # expired at NOW: left out
        assert kv.kv_paths("", NOW) == ["app/a", "other"]


def test_mount_store(storage: Storage) -> None:
    """Insert, conflicts, update, per-mount KV settings and listing, and delete with every
    secret and version of the mount (and nothing else)."""
    new = MountRow(0, "team/", "kv", 2, "d", {"max_lease_ttl": 60}, "u-1", "kv_1")
    with storage.write() as tx:
        mounts: MountStore = tx.mounts
        assert [m.path for m in mounts.list_mounts()] == ["secret/"]
        team = mounts.insert_mount(new, NOW)
        assert team > 1
        with pytest.raises(errors.MountExists):
            mounts.insert_mount(new, NOW)
        other = mounts.insert_mount(MountRow(0, "b/", "kv", 1, "", {}, "u-2", "kv_2"), NOW)
        with pytest.raises(errors.MountExists):
            mounts.update_mount(other, NOW, path="team/")
        mounts.update_mount(team, NOW, description="e", config={"max_lease_ttl": 5})
        tx.kv.put_kv_config(KVConfigRow(3, True, 0), NOW, team)
        a = tx.secrets.insert_secret(f"{team}:k", None, 1, NOW, None, mount_id=team)
        tx.secrets.insert_version(VersionRow(a, 1, "env", 1, 1, NOW))
        tx.secrets.insert_secret("k", None, 1, NOW, None)
        tx.secrets.insert_secret(f"{other}:k", None, 1, NOW, None, mount_id=other)
    with storage.read() as tx:
        row = tx.mounts.mount_by_path("team/")
        assert row is not None and (row.description, row.config) == ("e", {"max_lease_ttl": 5})
        assert row.kv == KVConfigRow(3, True, 0) == tx.kv.kv_config(team)
        assert tx.kv.kv_config() == KVConfigRow()
        assert tx.kv.kv_paths("", NOW, team) == [f"{team}:k"]
        assert tx.kv.kv_paths("", NOW) == ["k"]
        assert [r.path for r in tx.secrets.list_secrets("")] == ["k"]
    with storage.write() as tx:
        assert tx.mounts.delete_mount(team) == 1
    with storage.read() as tx:
        assert tx.mounts.mount_by_path("team/") is None
        assert tx.secrets.secret_by_path(f"{team}:k") is None
        assert tx.secrets.get_version(a, 1) is None
        assert tx.secrets.secret_by_path(f"{other}:k") is not None
        assert tx.secrets.secret_by_path("k") is not None


def test_version_store_prunes_and_updates(storage: Storage) -> None:
    with storage.write() as tx:
        store: VersionStore = tx.secrets
        sid = tx.secrets.insert_secret("p", None, 1, NOW, None, version=0)
        for n in range(1, 5):
            store.insert_version(VersionRow(sid, n, f"env{n}", 1, 1, NOW))
        store.set_current_version(sid, 4, NOW)
        store.prune_versions(sid, 3)
        store.update_version(sid, 3, deleted_at=NOW)
    with storage.read() as tx:
        store = tx.secrets
        assert [v.version for v in store.versions(sid)] == [4, 3]
        third = store.get_version(sid, 3)
        assert third is not None and third.deleted_at == NOW
        assert store.get_version(sid, 1) is None
        row = tx.secrets.secret_by_path("p")
        assert row is not None and row.version == 4


def test_secret_store_expiry_queries(storage: Storage) -> None:
    with storage.write() as tx:
        store: SecretStore = tx.secrets
        store.insert_secret("soon", None, 1, NOW, NOW + timedelta(days=1))
        store.insert_secret("gone", None, 1, NOW, NOW - timedelta(days=1))
        store.insert_secret("never", None, 1, NOW, None)
    with storage.read() as tx:
        store = tx.secrets
        assert store.count_expiring(NOW, NOW + timedelta(days=2)) == 1
        assert [r.path for r in store.expired_secrets(NOW)] == ["gone"]
        assert [r.path for r in store.list_secrets("")] == ["gone", "never", "soon"]


def test_secret_store_paths_and_rows_at_paths(storage: Storage) -> None:
    with storage.write() as tx:
        store: SecretStore = tx.secrets
        for path in ("a_b/x", "a%/w", "ab/y", "b/z"):
            store.insert_secret(path, None, 1, NOW, None)
        for i in range(1200):  # more than one IN (...) batch
            store.insert_secret(f"many/{i:04d}", None, 1, NOW, None)
    with storage.read() as tx:
        store = tx.secrets
        assert store.list_paths("a_") == ["a_b/x"]  # literal prefix, no LIKE wildcards
        assert store.list_paths("a%") == ["a%/w"]
        assert store.list_paths("")[:4] == ["a%/w", "a_b/x", "ab/y", "b/z"]
        assert store.list_paths("many/") == [f"many/{i:04d}" for i in range(1200)]
        assert store.list_paths("many/119") == [f"many/119{i}" for i in range(10)]
        assert [r.path for r in store.list_secrets("many/1199")] == ["many/1199"]
        assert store.list_paths("a") == ["a%/w", "a_b/x", "ab/y"]
        assert store.list_paths("b/z") == ["b/z"]
        assert store.list_paths("b/z/") == store.list_paths("c") == store.list_paths("é") == []
        rows = store.secrets_at(["b/z", "missing", "a_b/x", "b/z"])
        assert [r.path for r in rows] == ["a_b/x", "b/z"]
        wanted = [f"many/{i:04d}" for i in range(0, 1200, 2)] + [f"many/{i:04d}" for i in (1, 3)]
        assert [r.path for r in store.secrets_at(wanted)] == sorted(wanted)
        assert store.secrets_at([]) == []


def test_rotation_store(storage: Storage) -> None:
    with storage.write() as tx:
        tx.keys.put_keys(KeysRow("vid", b"salt", {}, "wrapped"), NOW)
        for term in (1, 2, 3):
            tx.keys.add_term(TermRow(term, f"k{term}", NOW))
        a = tx.secrets.insert_secret("a", None, 1, NOW, None)
        b = tx.secrets.insert_secret("b", None, 1, NOW, None)
        tx.secrets.insert_version(VersionRow(a, 1, "a1", 1, 1, NOW))
        tx.secrets.insert_version(VersionRow(a, 2, "a2", 3, 1, NOW))
        tx.secrets.insert_version(VersionRow(b, 1, "b1", 2, 1, NOW))
        tx.secrets.insert_version(VersionRow(b, 2, None, None, 1, NOW, None, True))  # destroyed
    with storage.write() as tx:
        rot: RotationStore = tx.rotation
        assert rot.count_versions_below_term(3) == 2
        assert rot.count_secrets_below_term(3) == 2
        assert rot.terms_in_use() == {1, 2, 3}
        first = rot.versions_below_term_after(3, 0, 1)
        assert [(v.secret_id, v.version, path) for _, v, path in first] == [(a, 1, "a")]
        rest = rot.versions_below_term_after(3, first[0][0], 10)
        assert [(v.secret_id, v.version, path) for _, v, path in rest] == [(b, 1, "b")]
        rot.rewrite_versions([(first[0][0], "a1-new", 3), (rest[0][0], "b1-new", 3)])
        rot.rewrite_versions([])
        rot.set_rotation({"target_term": 3}, NOW)
        keystore: KeyStore = tx.keys
        keystore.delete_term(1)
    with storage.read() as tx:
        assert tx.rotation.count_versions_below_term(3) == 0
        assert tx.rotation.terms_in_use() == {3}
        keys = tx.keys.get_keys()
        assert keys is not None and keys.rotation == {"target_term": 3}
        assert keys.wrapped_root == "wrapped"  # the marker leaves the keys alone
        assert [t.term for t in tx.keys.terms()] == [2, 3]
        stored = tx.secrets.get_version(a, 1)
        assert stored is not None and (stored.value, stored.key_term) == ("a1-new", 3)
    with storage.write() as tx:
        tx.rotation.set_rotation(None, NOW)
    with storage.read() as tx:
        keys = tx.keys.get_keys()
        assert keys is not None and keys.rotation is None


def test_user_store(storage: Storage) -> None:
    with storage.write() as tx:
        users: UserStore = tx.users
        alice = users.insert_user("alice", "$argon2id$hash", "Admin", ["p1"], NOW)
        bob = users.insert_user("bob", "$argon2id$other", "App", [], NOW)
        with pytest.raises(errors.Conflict), tx.savepoint():
            users.insert_user("alice", "$argon2id$again", "Admin", [], NOW)
        users.update_user(bob, disabled=True, policies=["p2", "p3"])
    with storage.read() as tx:
        users = tx.users
        row = users.user_by_name("alice")
        assert row is not None and row.id == alice and row.policies == ["p1"]
        assert row.password_hash == "$argon2id$hash" and not row.disabled
        other = users.user_by_id(bob)
        assert other is not None and other.disabled and other.policies == ["p2", "p3"]
        assert users.user_by_name("carol") is None and users.user_by_id(10**6) is None
        assert [u.username for u in users.list_users()] == ["alice", "bob"]


def test_totp_store(storage: Storage) -> None:
    with storage.write() as tx:
        users: TOTPStore = tx.users
        uid = tx.users.insert_user("tina", "$argon2id$hash", "App", [], NOW)
        users.update_user(uid, totp_seed="t1.sealed", totp_last_step=None)
    with storage.write() as tx:
        users = tx.users
        row = users.user_by_name("tina")
        assert row is not None and row.totp_seed == "t1.sealed"
        assert users.claim_totp_step(uid, 100)
        assert not users.claim_totp_step(uid, 100)  # the same step twice: a replay
        assert not users.claim_totp_step(uid, 99)
        assert users.claim_totp_step(uid, 101)
        assert not users.claim_totp_step(10**6, 5)  # no such user
        users.update_user(uid, totp_seed=None, totp_last_step=None)
        assert users.claim_totp_step(uid, 1)  # re-enrolment starts over


def test_policy_store(storage: Storage) -> None:
    with storage.write() as tx:
        policies: PolicyStore = tx.policies
        policies.put_policy("read-app", '[{"path": "app/*", "capabilities": ["read"]}]', NOW)
        policies.put_policy("b", "[]", NOW)
        policies.put_policy("read-app", '[{"path": "app/x", "capabilities": ["list"]}]', NOW)
    with storage.write() as tx:
        policies = tx.policies
        found = policies.get_policies(["read-app", "unknown"])
        assert [(p.name, p.rules) for p in found] == [
            ("read-app", '[{"path": "app/x", "capabilities": ["list"]}]')
        ]
        assert [p.name for p in policies.list_policies()] == ["b", "read-app"]
        assert policies.delete_policy("b") is True
        assert policies.delete_policy("b") is False
    with storage.read() as tx:
        assert [p.name for p in tx.policies.list_policies()] == ["read-app"]


def _token(accessor: str, user_id: int, expires: datetime) -> TokenRow:
    return TokenRow(
        accessor, "h-" + accessor, user_id, "App", ["b", "a"], "token", 1, NOW, expires,
        expires + timedelta(hours=1), 3600,
    )  # fmt: skip


def test_token_store(storage: Storage) -> None:
    later = NOW + timedelta(hours=1)
    with storage.write() as tx:
        store: TokenStore = tx.tokens
        epoch: EpochStore = tx.tokens
        assert epoch.token_epoch() == 0
        for accessor, user, expires in (("a1", 7, later), ("a2", 7, later), ("a3", 8, NOW)):
            store.insert_token(_token(accessor, user, expires))
        assert epoch.bump_token_epoch() == 1
        assert epoch.bump_token_epoch() == 2
    with storage.read() as tx:
        store = tx.tokens
        assert tx.tokens.token_epoch() == 2
        assert store.token_by_hash("h-a1") == _token("a1", 7, later)
        assert store.token_by_hash("nope") is None
        got = store.token_by_accessor("a3")
        assert got is not None and (got.user_id, got.expires_at, got.policies) == (
            8,
            NOW,
            ["b", "a"],
        )
        assert [r.accessor for r in store.list_tokens()] == ["a1", "a2", "a3"]
        assert [r.accessor for r in store.list_tokens(8)] == ["a3"]
    with pytest.raises(errors.Conflict), storage.write() as tx:  # the same hash twice
        tx.tokens.insert_token(replace(_token("a9", 1, later), token_hash="h-a1"))
    with storage.write() as tx:
        store = tx.tokens
        store.set_expiry("a1", later + timedelta(minutes=5))
        store.touch_tokens(["a1", "a2"], NOW + timedelta(minutes=1))
        assert store.delete_tokens(expired_at=NOW) == ["a3"]
        assert store.delete_tokens(accessor="a2") == ["a2"]
        assert store.delete_tokens(accessor="a2") == []
    with storage.read() as tx:
        row = tx.tokens.token_by_accessor("a1")
        assert row is not None
        assert row.expires_at == later + timedelta(minutes=5)
        assert row.last_used_at == NOW + timedelta(minutes=1)
    with storage.write() as tx:
        assert tx.tokens.delete_tokens(user_id=7) == ["a1"]
        assert tx.tokens.list_tokens() == []


def test_approle_store(storage: Storage) -> None:
    role = AppRoleRow(0, "deploy", "rid-1", ["p"], 60, 120, 600, 2, ["10.0.0.0/8"], NOW)
    with storage.write() as tx:
        store: AppRoleStore = tx.approles
        store.put_role(role)
        store.put_role(replace(role, role_id="ignored", token_ttl=90))  # an update keeps role_id
        store.insert_secret(AppSecretRow("acc1", "deploy", "h1", NOW, None, 2, []))
        store.insert_secret(AppSecretRow("acc2", "deploy", "h2", NOW, NOW, 0, ["1.2.3.4/32"]))
    with storage.read() as tx:
        store = tx.approles
        got = store.role(name="deploy")
        assert got is not None and (got.role_id, got.token_ttl, got.bound_cidrs) == (
            "rid-1", 90, ["10.0.0.0/8"],
        )  # fmt: skip
        assert store.role(role_id="rid-1") == got and store.role(name="nope") is None
        assert store.list_roles() == ["deploy"]
        second = store.secret("h2")
        assert second is not None and second.bound_cidrs == ["1.2.3.4/32"]
        assert [s.accessor for s in store.list_secrets("deploy")] == ["acc1", "acc2"]
    with storage.write() as tx:
        store = tx.approles
        store.use_secret("acc1", 1)
        store.use_secret("acc2", None)
        deleter: AppSecretDelete = tx.approles
        assert deleter.delete_secret("deploy", "acc1") and not deleter.delete_secret("x", "acc1")
    with storage.write() as tx:
        assert tx.approles.list_secrets("deploy") == []
        assert tx.approles.delete_role("deploy") and not tx.approles.delete_role("deploy")


def test_deleting_tokens_deletes_their_descendants(storage: Storage) -> None:
    later = NOW + timedelta(hours=1)
    tree = {"root": None, "kid": "root", "grandkid": "kid", "other": None, "other-kid": "other"}
    with storage.write() as tx:
        for accessor, parent in tree.items():
            user = 7 if accessor in ("root", "other") else 9
            tx.tokens.insert_token(replace(_token(accessor, user, later), parent=parent))
    with storage.read() as tx:
        found = tx.tokens.token_by_accessor("grandkid")
        assert found is not None and found.parent == "kid"
    with storage.write() as tx:
        assert sorted(tx.tokens.delete_tokens(accessor="root")) == ["grandkid", "kid", "root"]
        assert sorted(tx.tokens.delete_tokens(user_id=7)) == ["other", "other-kid"]
    with storage.read() as tx:
        assert tx.tokens.list_tokens() == []
