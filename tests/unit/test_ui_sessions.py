"""The console's server-side sessions: bound to the token's expiry, ended on sign-out, and each
with its own CSRF token; plus the folder grouping of the secrets browser."""

from __future__ import annotations

import time

from strongroom.http.ui.pages import folder_entries
from strongroom.http.ui.sessions import SessionStore


def test_a_session_lives_until_its_token_expires() -> None:
    store = SessionStore()
    sid, session = store.create("tok", time.time() + 60)
    assert store.get(sid) is session
    gone, _ = store.create("old", time.time() - 1)
    assert store.get(gone) is None
    assert store.get("unknown") is None and store.get(None) is None


def test_sign_out_ends_the_session() -> None:
    store = SessionStore()
    sid, _ = store.create("tok", time.time() + 60)
    store.end(sid)
    assert store.get(sid) is None


def test_each_session_has_its_own_csrf_token() -> None:
    store = SessionStore()
    _, one = store.create("a", time.time() + 60)
    _, two = store.create("b", time.time() + 60)
    assert one.csrf != two.csrf
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(two.csrf) and not one.csrf_ok("") and not one.csrf_ok(None)
    assert not one.csrf_ok("é" * 43)  # non-ASCII is a refusal, not a TypeError (a 500)


def test_folder_entries_group_by_slash() -> None:
    found = ("app/a", "app/billing/x", "app/billing/y", "app/z/q/r", "app/b")
    entries = folder_entries("app/", found)
    assert [(e.name, e.folder, e.count) for e in entries] == [
        ("billing", True, 2),
        ("z", True, 1),
        ("a", False, 0),
        ("b", False, 0),
    ]
