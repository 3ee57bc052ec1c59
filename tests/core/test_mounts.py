"""Secrets engine mounts in the core (`vault.mounts`, `mount=` on `vault.kv`), both backends:
management, isolation between mounts (storage, listing, AAD), disable, move, tune, rotation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.backup import restore
from strongroom.core.mount_paths import SECRET
from strongroom.core.mounts import Mounts
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_sql


def test_secret_mount_is_seeded(vault: Vault) -> None:
    (mount,) = vault.mounts.list()
    assert (mount.path, mount.type, mount.version, mount.id) == ("secret/", "kv", 2, 1)
    assert vault.mounts.read("secret").uuid == mount.uuid


def test_enable_list_read_tune_move_disable(vault: Vault) -> None:
    made = vault.mounts.enable(
        "team", "kv", options={"version": "2"}, description="team a", config={"max_lease_ttl": "1h"}
    )
    assert (made.path, made.version, made.description) == ("team/", 2, "team a")
    assert made.config["max_lease_ttl"] == 3600
    v1 = vault.mounts.enable("/legacy/kv/")
    assert (v1.path, v1.version) == ("legacy/kv/", -1)  # no version given: v1, options null
    assert [m.path for m in vault.mounts.list()] == ["legacy/kv/", "secret/", "team/"]
    tuned = vault.mounts.tune("team", description="renamed", config={"default_lease_ttl": 60})
    assert (
        tuned.description,
        tuned.config["default_lease_ttl"],
        tuned.config["max_lease_ttl"],
    ) == (
        "renamed",
        60,
        3600,
    )
    vault.kv.write("app/db", {"x": "1"}, mount="team")
    moved = vault.mounts.move("team", "team-b")
    assert moved.uuid == made.uuid and moved.path == "team-b/"
    assert vault.kv.read("app/db", mount="team-b").data == {"x": "1"}
    with pytest.raises(errors.MountNotFound):
        vault.kv.read("app/db", mount="team")
    assert vault.mounts.disable("team-b") == 1
    assert [m.path for m in vault.mounts.list()] == ["legacy/kv/", "secret/"]


def test_find_routes_a_request_path_to_the_mount_it_starts_with(vault: Vault) -> None:
    """`mounts.find` (the `/v1/<mount>/...` router): the mount whose path the request's path
    starts with, by whole path segments, compared literally (`_` is no
    wildcard), the rest of the path after it; None when no mount serves the path."""
    vault.mounts.enable("team/a_b", "kv", options={"version": "2"})
    vault.mounts.enable("Up-Case", "kv")
    vault.mounts.enable("team2", "kv", options={"version": "2"})

    def found(path: str) -> tuple[str, str] | None:
        hit = vault.mounts.find(path)
        return None if hit is None else (hit[0].path, hit[1])

    assert found("team/a_b/data/app/db") == ("team/a_b/", "data/app/db")
    assert found("team/a_b") == ("team/a_b/", "")
    assert found("team2/data/x") == ("team2/", "data/x")
    assert found("Up-Case/k") == ("Up-Case/", "k")
    assert found("secret/data/x") == ("secret/", "data/x")
    for unserved in ("team/axb/data/x", "team/a_bc/x", "team/a", "team", "up-case/k", "nothing/x"):
        assert found(unserved) is None, unserved


def test_find_cached_routes_reads_by_a_copy_at_most_a_second_old(vault: Vault) -> None:
    """`find_cached` answers from the table `find` last read, for 1 s, never "no mount"; a
    change made by another process shows within that second, where the operation the copy
    routes to checks its mount again; a change made through the same service at once."""
    now = [0.0]
    mounts = Mounts(vault.state, monotonic=lambda: now[0])  # (`vault.mounts`: another process)
    vault.mounts.enable("team", "kv", options={"version": "2"})
    assert mounts.find_cached("team/data/x") is None  # nothing read yet
    found = mounts.find("team/data/x")
    assert found is not None and found[0].path == "team/" and found[1] == "data/x"
    assert mounts.find_cached("team/data/x") == found
    secret = mounts.find_cached("secret/data/y")
    assert secret is not None and (secret[0].id, secret[1]) == (SECRET.id, "data/y")
    assert mounts.find_cached("nothing/x") is None  # asks the table: a new mount is never missed
    vault.kv.write("x", {"a": "1"}, mount="team")

    vault.mounts.disable("team")  # elsewhere
    now[0] = 0.9
    stale = mounts.find_cached("team/data/x")
    assert stale is not None and stale[0] == found[0]  # within the bound...
    with pytest.raises(errors.MountNotFound):  # ...but the read it routes to finds no mount
        vault.kv.read("x", mount=stale[0].path)
    now[0] = 1.1
    assert mounts.find_cached("team/data/x") is None
    assert mounts.find("team/data/x") is None

    mounts.find("secret/data/x")
    assert mounts.find_cached("secret/data/x") is not None
    mounts.enable("team", "kv")  # here: the copy is forgotten at once
    assert mounts.find_cached("secret/data/x") is None
    again = mounts.find("team/x")
    assert again is not None and (again[0].version, again[1]) == (1, "x")
    mounts.tune("team", options={"version": "2"})
    assert mounts.find_cached("team/x") is None
    tuned = mounts.find("team/x")
    assert tuned is not None and tuned[0].version == 2


def test_a_read_routed_by_a_stale_mount_refuses_another_mount(vault: Vault) -> None:
    """`kv.read(mount=ref)` (a request routed by `find_cached`) looks the key up under the
    ref's id only while that id is still mounted at the ref's path in the ref's KV version;
    else MountChanged (the request is routed again, and its policy checked again), or
    MountNotFound: never the key of whichever mount holds the path or the id meanwhile."""
    vault.mounts.enable("team", "kv", options={"version": "2"})
    vault.kv.write("x", {"who": "team"}, mount="team")
    routed = vault.mounts.find("team/data/x")
    assert routed is not None
    ref = routed[0]
    assert vault.kv.read("x", mount=ref).data == {"who": "team"}
    with pytest.raises(errors.SecretNotFound) as missing:
        vault.kv.read("nothing", mount=ref)  # the mount is the routed one: the key is missing
    assert not isinstance(missing.value, errors.MountChanged)
    # a ref built by hand is canonicalised as a mount name is (`team` is `team/`)
    assert vault.kv.read("x", mount=dataclasses.replace(ref, path="team")).data == {"who": "team"}
    vault.mounts.move("team", "dev")  # the id now serves dev/ ...
    vault.mounts.enable("team", "kv", options={"version": "2"})  # ... and team/ is another
    vault.kv.write("x", {"who": "new team"}, mount="team")
    with pytest.raises(errors.MountChanged):
        vault.kv.read("x", mount=ref)  # neither dev's key (the ref's id) nor the new team's
    assert vault.kv.read("x", mount="dev").data == {"who": "team"}
    vault.mounts.disable("team")
    with pytest.raises(errors.MountNotFound):
        vault.kv.read("x", mount=ref)

    vault.mounts.enable("legacy", "kv")  # KV v1, then upgraded in place: the same id
    vault.kv.write("k", {"v": "1"}, mount="legacy")
    v1 = vault.mounts.find("legacy/k")
    assert v1 is not None and v1[0].version == 1
    assert vault.kv.read("k", mount=v1[0]).data == {"v": "1"}
    vault.mounts.tune("legacy", options={"version": "2"})
    with pytest.raises(errors.MountChanged):
        vault.kv.read("k", mount=v1[0])


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("sys", errors.InvalidInput),
        ("auth/x", errors.InvalidInput),
        ("identity", errors.InvalidInput),
        ("cubbyhole", errors.InvalidInput),
        ("bad path", errors.InvalidInput),
        ("a//b", errors.InvalidInput),
        ("a.b", errors.InvalidInput),
        ("", errors.InvalidInput),
        ("secret", errors.MountExists),
        ("secret/inner", errors.MountExists),
    ],
)
def test_enable_refuses_bad_paths(vault: Vault, path: str, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        vault.mounts.enable(path, "kv")
    assert [m.path for m in vault.mounts.list()] == ["secret/"]


def test_refusals_change_nothing(vault: Vault) -> None:
    vault.mounts.enable("a", "kv", options={"version": 2})
    vault.mounts.enable("b", "kv")
    before = vault.mounts.list()
    with pytest.raises(errors.InvalidInput, match='only "kv"'):
        vault.mounts.enable("c", "database")
    with pytest.raises(errors.InvalidInput):
        vault.mounts.enable("c", "kv", options={"version": "3"})
    with pytest.raises(errors.InvalidInput):
        vault.mounts.enable("c", "kv", config={"listing_visibility": "sometimes"})
    with pytest.raises(errors.MountExists):
        vault.mounts.enable("a", "kv")
    with pytest.raises(errors.MountExists):
        vault.mounts.enable("a/inner", "kv")
    with pytest.raises(errors.InvalidInput):
        vault.mounts.disable("secret")
    with pytest.raises(errors.InvalidInput):
        vault.mounts.move("secret", "other")
    with pytest.raises(errors.MountExists):
        vault.mounts.move("a", "b")
    with pytest.raises(errors.MountExists):
        vault.mounts.move("a", "secret")
    with pytest.raises(errors.InvalidInput):
        vault.mounts.move("a", "sys/x")
    assert vault.mounts.disable("nothing") == 0
    with pytest.raises(errors.MountNotFound):
        vault.mounts.tune("nothing", description="x")
    with pytest.raises(errors.InvalidInput, match="downgrade"):
        vault.mounts.tune("a", options={"version": "1"})
    assert vault.mounts.list() == before


def test_same_key_in_two_mounts_is_two_secrets(vault: Vault) -> None:
    vault.mounts.enable("kv", "kv", options={"version": "2"})
    vault.kv.write("app/db", {"where": "secret"})
    vault.kv.write("app/db", {"where": "kv"}, mount="kv")
    vault.kv.write("app/db", {"where": "kv", "n": "2"}, mount="kv")
    assert vault.kv.read("app/db").data == {"where": "secret"}
    assert vault.kv.read("app/db", mount="kv").data == {"where": "kv", "n": "2"}
    assert vault.kv.metadata.read("app/db").current_version == 1
    assert vault.kv.metadata.read("app/db", mount="kv").current_version == 2
    vault.kv.write("only-in-kv/x", {"a": "b"}, mount="kv")
    assert vault.kv.metadata.list("", mount="kv") == ["app/", "only-in-kv/"]
    assert vault.kv.metadata.list("") == ["app/"]
    assert [s.path for s in vault.list_secrets("")] == ["app/db"]
    # The console's paged folder listing reads paths only: it too stays in secret/.
    paths, rows = vault.secrets.list_paths("", lambda found: found)
    assert paths == ["app/db"] and [r.path for r in rows] == ["app/db"]
    with pytest.raises(errors.SecretNotFound):
        vault.kv.read("only-in-kv/x")


def test_per_mount_config(vault: Vault) -> None:
    vault.mounts.enable("kv", "kv-v2")
    vault.kv.metadata.write_config(max_versions=2, cas_required=True, mount="kv")
    assert vault.kv.metadata.read_config().max_versions == 0
    assert vault.kv.metadata.read_config(mount="kv").cas_required
    vault.kv.write("k", {"a": "1"})  # secret/ needs no cas
    with pytest.raises(errors.InvalidInput, match="check-and-set"):
        vault.kv.write("k", {"a": "1"}, mount="kv")
    for n in range(3):
        vault.kv.write("k", {"a": str(n)}, cas=n, mount="kv")
    assert sorted(vault.kv.metadata.read("k", mount="kv").versions) == [2, 3]


def test_row_moved_between_mounts_fails_to_decrypt(vault: Vault, dsn: str) -> None:
    """The AAD binds the mount: a secret re-pointed at another mount by SQL does not open."""
    a = vault.mounts.enable("a", "kv-v2")
    b = vault.mounts.enable("b", "kv-v2")
    vault.kv.write("x", {"v": "from-a"}, mount="a")
    vault.kv.write("x", {"v": "in-secret"})
    raw_sql(dsn, "DELETE FROM vault_secrets WHERE path = ?", ("x",))
    raw_sql(
        dsn,
        "UPDATE vault_secrets SET path = ?, mount_id = ? WHERE path = ?",
        (f"{b.id}:x", b.id, f"{a.id}:x"),
    )
    with pytest.raises(errors.IntegrityError):
        vault.kv.read("x", mount="b")
    raw_sql(
        dsn, "UPDATE vault_secrets SET path = ?, mount_id = 1 WHERE path = ?", ("x", f"{b.id}:x")
    )
    with pytest.raises(errors.IntegrityError):
        vault.kv.read("x")


def test_disable_deletes_every_row_and_keeps_audit(vault: Vault, dsn: str) -> None:
    vault.mounts.enable("gone", "kv-v2")
    for i in range(5):
        vault.kv.write(f"k{i}", {"i": str(i)}, mount="gone")
        vault.kv.write(f"k{i}", {"i": str(i)}, mount="gone")
    vault.kv.write("k0", {"i": "stay"})
    audit_before = raw_sql(dsn, "SELECT count(*) FROM vault_audit_logs")[0][0]
    assert vault.mounts.disable("gone") == 5
    assert raw_sql(dsn, "SELECT count(*) FROM vault_secrets WHERE mount_id <> 1")[0][0] == 0
    assert raw_sql(dsn, "SELECT count(*) FROM vault_secret_versions")[0][0] == 1
    assert raw_sql(dsn, "SELECT count(*) FROM vault_audit_logs")[0][0] == audit_before + 1
    assert (
        raw_sql(dsn, "SELECT count(*) FROM vault_audit_logs WHERE path = ?", ("gone:k0",))[0][0]
        == 2
    )
    vault.mounts.enable("gone", "kv-v2")
    with pytest.raises(errors.SecretNotFound):
        vault.kv.metadata.list("", mount="gone")
    assert vault.kv.read("k0").data == {"i": "stay"}
    assert vault.verify_audit().ok


def test_v1_upgrade_to_v2_keeps_data(vault: Vault) -> None:
    vault.mounts.enable("old", "kv")
    vault.kv.write("app", {"x": "1"}, mount="old")
    vault.kv.write("app", {"x": "2"}, mount="old")
    assert vault.mounts.tune("old", options={"version": "2"}).version == 2
    assert vault.kv.read("app", mount="old").data == {"x": "2"}
    assert vault.kv.metadata.read("app", mount="old").current_version == 2


def test_rotation_reencrypts_every_mount(vault: Vault, dsn: str) -> None:
    vault.mounts.enable("kv", "kv-v2")
    vault.mounts.enable("v1", "kv")
    vault.kv.write("a", {"m": "secret"})
    vault.kv.write("a", {"m": "kv"}, mount="kv")
    vault.kv.write("a", {"m": "v1"}, mount="v1")
    vault.rotate_all(new_master_key=MASTER_KEY + "-new")
    terms = {r[0] for r in raw_sql(dsn, "SELECT key_term FROM vault_secret_versions")}
    assert len(terms) == 1
    assert vault.kv.read("a", mount="kv").data == {"m": "kv"}
    assert vault.kv.read("a", mount="v1").data == {"m": "v1"}
    assert vault.kv.read("a").data == {"m": "secret"}


def test_backup_and_restore_keep_every_mount(
    vault: Vault, tmp_path: Path, clock: ManualClock
) -> None:
    """A backup holds the mount table; restored (into SQLite), every mount serves its keys."""
    vault.mounts.enable("team", "kv-v2", description="team a")
    vault.mounts.enable("old", "kv")
    vault.kv.metadata.write_config(max_versions=3, mount="team")
    vault.kv.write("k", {"m": "secret"})
    vault.kv.write("k", {"m": "team"}, mount="team")
    vault.kv.write("k", {"m": "old"}, mount="old")
    out = tmp_path / "vault.backup"
    with out.open("w") as f:
        vault.backup.write(f)
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restore(target, out, MASTER_KEY, fast_config(clock=clock, auto_lock=False))
    restored = open_vault(target, fast_config(clock=clock, auto_lock=False))
    try:
        restored.unlock(MASTER_KEY)
        assert [(m.path, m.description) for m in restored.mounts.list()] == [
            ("old/", ""),
            ("secret/", "key/value secret storage"),
            ("team/", "team a"),
        ]
        assert restored.kv.read("k", mount="team").data == {"m": "team"}
        assert restored.kv.read("k", mount="old").data == {"m": "old"}
        assert restored.kv.read("k").data == {"m": "secret"}
        assert restored.kv.metadata.read_config(mount="team").max_versions == 3
        restored.mounts.enable("new", "kv-v2")  # ids go on after the restored ones
        restored.kv.write("k", {"m": "new"}, mount="new")
        assert restored.kv.read("k", mount="team").data == {"m": "team"}
        assert restored.verify_audit().ok
    finally:
        restored.close()
