"""Key rotation: master-key rotation, resume, single-secret rotation, online behaviour across
instances and processes, and automatic data-key terms. Every test runs on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_sql

NEW_KEY = "brand-new-master-key-42"
CHILD = Path(__file__).with_name("rotation_child.py")


def fill(vault: Vault, secrets: int = 12, versions: int = 3) -> dict[tuple[str, int], str]:
    expected = {}
    for i in range(secrets):
        path = f"r/{i}"
        vault.create_secret(path, f"{path}@1")
        expected[(path, 1)] = f"{path}@1"
        for n in range(2, versions + 1):
            vault.update_secret(path, f"{path}@{n}")
            expected[(path, n)] = f"{path}@{n}"
    return expected


def check_all(vault: Vault, expected: dict[tuple[str, int], str]) -> None:
    for (path, version), value in expected.items():
        assert vault.get_secret_version(path, version) == value


def row_terms(dsn: str) -> set[int]:
    return {r[0] for r in raw_sql(dsn, "SELECT DISTINCT key_term FROM vault_secret_versions")}


def stored_terms(dsn: str) -> set[int]:
    return {r[0] for r in raw_sql(dsn, "SELECT term FROM vault_key_terms")}


def marker(dsn: str) -> dict[str, object] | None:
    text = raw_sql(dsn, "SELECT rotation FROM vault_keys")[0][0]
    return json.loads(text) if text else None


@pytest.fixture
def reopen(dsn: str, clock: ManualClock) -> Iterator[Callable[..., Vault]]:
    """Open extra vault instances on the test database; closed at the end."""
    opened: list[Vault] = []

    def make(key: str | None = None, **config: object) -> Vault:
        v = open_vault(dsn, fast_config(clock=clock, **config))
        opened.append(v)
        if key is not None:
            v.unlock(key)
        return v

    yield make
    for v in opened:
        v.close()


# -- master-key rotation ----------------------------------------------------------------------
def test_rotate_all_rewraps_and_reencrypts_every_version(dsn: str, vault: Vault, reopen) -> None:
    expected = fill(vault)
    vault.create_secret("lone", "only")
    expected[("lone", 1)] = "only"
    assert row_terms(dsn) == {1}
    salt = raw_sql(dsn, "SELECT salt FROM vault_keys")[0][0]

    result = vault.rotate_all(NEW_KEY, user_id=3, request_id="rot-1")

    assert (result.term, result.reencrypted, result.secrets) == (2, 37, 13)
    assert raw_sql(dsn, "SELECT salt FROM vault_keys")[0][0] != salt  # fresh salt
    assert row_terms(dsn) == stored_terms(dsn) == {2}
    assert marker(dsn) is None
    check_all(vault, expected)  # the rotating instance keeps serving
    with pytest.raises(errors.InvalidMasterKey):
        reopen(MASTER_KEY)
    fresh = reopen(NEW_KEY)
    check_all(fresh, expected)
    assert fresh.get_secret("lone") == "only"
    entries = [e for e in fresh.audit_logs(action="rotate_all")]
    assert [(e.user_id, e.success, e.request_id) for e in entries] == [(3, True, "rot-1")] * 2
    assert fresh.verify_audit().ok


def test_rotate_twice(dsn: str, vault: Vault, reopen) -> None:
    expected = fill(vault, 4, 2)
    vault.rotate_all(NEW_KEY)
    vault.update_secret("r/0", "r/0@3")
    expected[("r/0", 3)] = "r/0@3"
    result = vault.rotate_all("third-master-key-9876")
    assert result.term == 3 and result.reencrypted == 9
    assert row_terms(dsn) == stored_terms(dsn) == {3}
    for key in (MASTER_KEY, NEW_KEY):
        with pytest.raises(errors.InvalidMasterKey):
            reopen(key)
    check_all(reopen("third-master-key-9876"), expected)


@pytest.mark.parametrize(
    "key, message",
    [
        ("short-key", "at least 16 characters"),
        ("", "at least 16 characters"),
        (MASTER_KEY, "must differ from the current master key"),
    ],
)
def test_refuses_bad_new_keys(dsn: str, vault: Vault, reopen, key: str, message: str) -> None:
    fill(vault, 2, 1)
    with pytest.raises(errors.InvalidInput, match=message):
        vault.rotate_all(key)
    assert row_terms(dsn) == stored_terms(dsn) == {1}
    reopen(MASTER_KEY)  # unchanged
    last = vault.audit_logs(action="rotate_all", limit=1)[0]
    assert (last.success, last.error) == (False, "InvalidInput")


def test_refuses_non_string_key(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.rotate_all(None)  # type: ignore[arg-type]


def test_rotate_all_needs_unlocked_vault(dsn: str, vault: Vault) -> None:
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.rotate_all(NEW_KEY)
    with pytest.raises(errors.VaultLocked):
        vault.rotation.resume()
    assert len(raw_sql(dsn, "SELECT id FROM vault_audit_logs WHERE action = 'rotate_all'")) == 2


def test_progress_is_reported(vault: Vault, reopen) -> None:
    fill(vault, 10, 2)
    seen: list[tuple[int, int]] = []
    small = reopen(MASTER_KEY, rotation_batch=3)  # 20 versions: several batches
    small.rotate_all(NEW_KEY, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 20) and seen[-1] == (20, 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= 8


def test_concurrent_rotation_by_another_process_is_not_overwritten(
    dsn: str, vault: Vault, reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = fill(vault, 3, 1)
    other = reopen(MASTER_KEY)
    rewrap = vault.state.barrier.rewrap

    def meanwhile(*args: object, **kwargs: object) -> object:
        other.rotate_all("third-master-key-9876")  # lands between the check and the switch
        return rewrap(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(vault.state.barrier, "rewrap", meanwhile)
    with pytest.raises(errors.Conflict, match="changed meanwhile"):
        vault.rotate_all(NEW_KEY)
    with pytest.raises(errors.InvalidMasterKey):
        reopen(NEW_KEY)
    check_all(reopen("third-master-key-9876"), expected)
    last = vault.audit_logs(action="rotate_all", limit=1)[0]
    assert (last.success, last.error) == (False, "Conflict")


# -- interruption and resume ------------------------------------------------------------------
class Stop(Exception):
    pass


def interrupted(dsn: str, clock: ManualClock, key: str, new_key: str, after: int) -> None:
    """Run a rotation in a fresh instance and abandon it after `after` progress reports."""
    calls = 0

    def progress(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls > after:
            raise Stop()

    v = open_vault(dsn, fast_config(clock=clock, rotation_batch=4))
    try:
        v.unlock(key)
        with pytest.raises(Stop):
            v.rotate_all(new_key, progress=progress)
    finally:
        v.close()


def test_interrupted_rotation_resumes(dsn: str, vault: Vault, clock: ManualClock, reopen) -> None:
    expected = fill(vault)
    interrupted(dsn, clock, MASTER_KEY, NEW_KEY, after=3)
    assert marker(dsn) == {"target_term": 2, "started_at": "2025-11-03T10:00:00Z", "user_id": 1}
    assert row_terms(dsn) == {1, 2} and stored_terms(dsn) == {1, 2}
    # The atomic step committed: the new key is the key now; the old instance keeps serving.
    check_all(vault, expected)
    with pytest.raises(errors.InvalidMasterKey):
        reopen(MASTER_KEY)
    other = reopen(NEW_KEY)
    check_all(other, expected)

    result = other.rotation.resume()
    assert result.term == 2 and 0 < result.reencrypted < 36 and result.secrets > 0
    assert marker(dsn) is None and row_terms(dsn) == stored_terms(dsn) == {2}
    assert other.rotation.resume().reencrypted == 0  # nothing left: a no-op
    check_all(vault, expected)


def test_rerunning_rotate_all_with_the_new_key_resumes(
    dsn: str, vault: Vault, clock: ManualClock, reopen
) -> None:
    expected = fill(vault)
    interrupted(dsn, clock, MASTER_KEY, NEW_KEY, after=2)
    other = reopen(NEW_KEY)
    result = other.rotate_all(NEW_KEY)
    assert result.term == 2 and marker(dsn) is None and row_terms(dsn) == {2}
    check_all(other, expected)
    with pytest.raises(errors.InvalidInput, match="must differ"):
        other.rotate_all(NEW_KEY)  # finished: now the same key is refused


def test_new_rotation_supersedes_an_unfinished_one(
    dsn: str, vault: Vault, clock: ManualClock, reopen
) -> None:
    expected = fill(vault)
    interrupted(dsn, clock, MASTER_KEY, NEW_KEY, after=2)
    other = reopen(NEW_KEY)
    result = other.rotate_all("third-master-key-9876")
    assert result.term == 3 and result.reencrypted == 36
    assert marker(dsn) is None and row_terms(dsn) == stored_terms(dsn) == {3}
    check_all(reopen("third-master-key-9876"), expected)


def test_tampered_version_keeps_its_term_and_rotation_unfinished(
    dsn: str, vault: Vault, reopen
) -> None:
    expected = fill(vault, 4, 2)
    sid = raw_sql(dsn, "SELECT id FROM vault_secrets WHERE path = 'r/2'")[0][0]
    good = raw_sql(
        dsn, "SELECT value FROM vault_secret_versions WHERE secret_id = ? AND version = 1", (sid,)
    )[0][0]
    other = raw_sql(
        dsn, "SELECT value FROM vault_secret_versions WHERE secret_id = ? AND version = 2", (sid,)
    )[0][0]
    raw_sql(
        dsn,
        "UPDATE vault_secret_versions SET value = ? WHERE secret_id = ? AND version = 1",
        (other, sid),
    )  # version 2's envelope copied onto version 1

    with pytest.raises(errors.IntegrityError, match="1 versions failed"):
        vault.rotate_all(NEW_KEY)
    assert marker(dsn) is not None and row_terms(dsn) == stored_terms(dsn) == {1, 2}
    bad = vault.audit_logs(action="rotate_all", path="r/2")
    assert [(e.success, e.error) for e in bad] == [(False, "IntegrityError")]

    raw_sql(
        dsn,
        "UPDATE vault_secret_versions SET value = ? WHERE secret_id = ? AND version = 1",
        (good, sid),
    )  # restored from a backup
    assert vault.rotation.resume().reencrypted == 1
    assert marker(dsn) is None and row_terms(dsn) == stored_terms(dsn) == {2}
    check_all(reopen(NEW_KEY), expected)


def test_a_version_left_behind_the_cursor_gets_another_pass(dsn: str, vault: Vault, reopen) -> None:
    expected = fill(vault, 6, 2)
    first = raw_sql(dsn, "SELECT id, value, key_term FROM vault_secret_versions ORDER BY id")[0]
    restored: list[int] = []

    def progress(done: int, total: int) -> None:
        if done and not restored:  # the first row was re-encrypted: put its old envelope back
            raw_sql(
                dsn,
                "UPDATE vault_secret_versions SET value = ?, key_term = ? WHERE id = ?",
                (first[1], first[2], first[0]),
            )
            restored.append(done)

    rotator = reopen(MASTER_KEY, rotation_batch=4)
    result = rotator.rotate_all(NEW_KEY, progress=progress)
    assert restored and result.reencrypted == 13
    assert marker(dsn) is None and row_terms(dsn) == stored_terms(dsn) == {2}
    check_all(rotator, expected)


# -- single-secret rotation -------------------------------------------------------------------
def test_rotate_secret_moves_its_versions_to_the_newest_term(
    dsn: str, clock: ManualClock, reopen
) -> None:
    vault = reopen(MASTER_KEY, term_max_age=timedelta(days=30), auto_lock=False)
    fill(vault, 2, 3)
    clock.advance(timedelta(days=31))
    vault.create_secret("later", "x")  # this write's transaction stores term 2
    assert row_terms(dsn) == {1} and stored_terms(dsn) == {1, 2}

    result = vault.rotate_secret("r/1", user_id=4, request_id="one")
    assert (result.term, result.reencrypted, result.secrets) == (2, 3, 1)
    terms = raw_sql(
        dsn,
        "SELECT v.key_term FROM vault_secret_versions v JOIN vault_secrets s "
        "ON s.id = v.secret_id WHERE s.path = ?",
        ("r/1",),
    )
    assert [t for (t,) in terms] == [2, 2, 2]
    untouched = raw_sql(
        dsn,
        "SELECT v.key_term FROM vault_secret_versions v JOIN vault_secrets "
        "s ON s.id = v.secret_id WHERE s.path = ?",
        ("r/0",),
    )
    assert [t for (t,) in untouched] == [1, 1, 1]
    assert [vault.get_secret_version("r/1", n) for n in (1, 2, 3)] == ["r/1@1", "r/1@2", "r/1@3"]
    entry = vault.audit_logs(action="rotate", limit=1)[0]
    assert (entry.path, entry.user_id, entry.request_id, entry.success) == ("r/1", 4, "one", True)


def test_rotate_secret_refuses_a_new_master_key(vault: Vault, reopen) -> None:
    vault.create_secret("a", "1")
    with pytest.raises(
        errors.InvalidInput, match="master-key rotation is vault-wide; use rotate --all"
    ):
        vault.rotate_secret("a", new_master_key=NEW_KEY)
    reopen(MASTER_KEY)
    entry = vault.audit_logs(action="rotate", limit=1)[0]
    assert (entry.path, entry.success, entry.error) == ("a", False, "InvalidInput")


def test_rotate_secret_errors(vault: Vault) -> None:
    with pytest.raises(errors.SecretNotFound):
        vault.rotate_secret("missing")
    with pytest.raises(errors.InvalidInput):
        vault.rotate_secret("../bad")
    vault.lock()
    with pytest.raises(errors.VaultLocked):
        vault.rotate_secret("missing")


# -- online: other instances and processes keep serving --------------------------------------
def test_rotation_is_online_for_another_instance(dsn: str, vault: Vault, reopen) -> None:
    expected = fill(vault, 20, 2)
    other = reopen(MASTER_KEY)  # unlocked with the old key before the rotation
    rotator = reopen(MASTER_KEY, rotation_batch=2)
    stop = threading.Event()
    failures: list[BaseException] = []
    written: list[str] = []

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            try:
                for client in (vault, other, rotator):  # rotator: the same instance, too
                    assert client.get_secret("r/3") == "r/3@2"
                    assert client.get_secret_version("r/7", 1) == "r/7@1"
                    client.create_secret(f"w/{n}", f"w{n}")
                    written.append(f"w/{n}")
                    n += 1
            except BaseException as exc:
                failures.append(exc)
                return

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        rotator.rotate_all(NEW_KEY)
    finally:
        stop.set()
        worker.join()
    assert not failures
    assert written
    assert marker(dsn) is None and row_terms(dsn) == stored_terms(dsn) == {2}
    assert {int(w.split("/")[1]) % 3 for w in written} == {0, 1, 2}
    for client in (vault, other, rotator):
        check_all(client, expected)
        assert client.get_secret(written[-1]) == written[-1].replace("w/", "w")
        assert client.status().current_term == 2
    other.lock()
    with pytest.raises(errors.InvalidMasterKey):
        other.unlock(MASTER_KEY)
    other.unlock(NEW_KEY)
    assert other.verify_audit().ok


def test_a_process_that_did_not_rotate_keeps_serving(dsn: str) -> None:
    # Real clocks on both sides (a manual clock here would make the child's terms look old).
    vault = open_vault(dsn, fast_config())
    try:
        vault.unlock(MASTER_KEY)
        for i in range(30):
            vault.create_secret(f"on/{i}", f"val-{i}")
        with subprocess.Popen(
            [sys.executable, str(CHILD), "serve", dsn, "10"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(json.dumps({"key": MASTER_KEY, "count": 30}) + "\n")
                child.stdin.flush()
                assert child.stdout.readline().strip() == "ready"
                vault.rotate_all(NEW_KEY)  # the child holds only term 1, now deleted
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.stdout.readline().strip() == "ok 2"
                assert child.wait(timeout=30) == 0
            finally:
                if child.poll() is None:
                    child.kill()
        assert vault.get_secret("on/child") == "from-child"
    finally:
        vault.close()
    assert row_terms(dsn) == {2}


# -- data-key limits --------------------------------------------------------------------------
def test_term_counter_is_shared_and_survives_reopen(dsn: str, reopen) -> None:
    # Each instance reserves 4096 encryptions at a time from the shared counter.
    limit = {"term_max_encryptions": 10_000, "auto_lock": False}
    a, b = reopen(MASTER_KEY, **limit), reopen(MASTER_KEY, **limit)
    a.create_secret("a", "1")
    b.create_secret("b", "1")
    assert raw_sql(dsn, "SELECT encryptions FROM vault_key_terms WHERE term = 1")[0][0] == 8192
    a.close()
    b.close()
    c = reopen(MASTER_KEY, **limit)
    c.create_secret("c", "1")  # 12288 >= 10000: the next write starts a new term
    assert raw_sql(dsn, "SELECT encryptions FROM vault_key_terms WHERE term = 1")[0][0] == 12288
    assert stored_terms(dsn) == {1}
    c.create_secret("d", "1")  # its transaction stores term 2, used once committed
    c.create_secret("e", "1")
    assert stored_terms(dsn) == {1, 2}
    assert dict(
        raw_sql(dsn, "SELECT v.key_term, COUNT(*) FROM vault_secret_versions v GROUP BY v.key_term")
    ) == {1: 4, 2: 1}
    d = reopen(MASTER_KEY, **limit)
    d.create_secret("f", "1")  # another instance picks up term 2 rather than counting on 1
    assert row_terms(dsn) == {1, 2} and stored_terms(dsn) == {1, 2}
    assert raw_sql(dsn, "SELECT encryptions FROM vault_key_terms WHERE term = 2")[0][0] == 8192
    assert [d.get_secret(p) for p in "abcdef"] == ["1"] * 6


def test_tiny_limit_starts_terms_automatically(dsn: str, reopen) -> None:
    v = reopen(MASTER_KEY, term_max_encryptions=2, auto_lock=False)
    for i in range(6):
        v.create_secret(f"t/{i}", str(i))
    # Every reservation crosses the limit; the next transaction stores a new term.
    assert stored_terms(dsn) == {1, 2, 3, 4}
    assert row_terms(dsn) == {1, 2, 3}
    values = [str(i) for i in range(6)]
    assert [v.get_secret(f"t/{i}") for i in range(6)] == values
    v.rotate_all(NEW_KEY)
    assert [v.get_secret(f"t/{i}") for i in range(6)] == values
    # Re-encryption counts too, so terms keep rolling over; the old ones are gone.
    assert row_terms(dsn) <= stored_terms(dsn) and min(stored_terms(dsn)) >= 5


def test_term_max_age_starts_a_new_term(dsn: str, clock: ManualClock, reopen) -> None:
    age = {"term_max_age": timedelta(days=90), "auto_lock": False}
    a, b = reopen(MASTER_KEY, **age), reopen(MASTER_KEY, **age)
    a.create_secret("a", "1")
    clock.advance(timedelta(days=89))
    b.create_secret("b", "1")
    assert stored_terms(dsn) == {1}
    clock.advance(timedelta(days=1))
    # Term 1 is 90 days old: b's transaction stores term 2, used once it has committed.
    b.create_secret("c", "1")
    a.create_secret("d", "1")  # a notices term 2 instead of starting its own
    b.create_secret("e", "1")
    assert stored_terms(dsn) == {1, 2}
    assert dict(
        raw_sql(
            dsn,
            "SELECT p.path, v.key_term FROM vault_secret_versions v JOIN "
            "vault_secrets p ON p.id = v.secret_id",
        )
    ) == {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}
    assert [a.get_secret(p) for p in "abcde"] == ["1"] * 5
