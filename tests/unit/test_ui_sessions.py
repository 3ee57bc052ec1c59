"""The console's sessions: the CSRF token derived from the session token under the shared
key (the same in every worker, different per session and per key); plus the folder grouping of
the secrets browser."""

from __future__ import annotations

from strongroom.http.ui.pages import folder_entries
from strongroom.http.ui.sessions import Session, csrf_key


def test_the_csrf_token_is_the_same_in_every_worker_and_differs_per_session() -> None:
    key = csrf_key("a-shared-secret-of-at-least-32-bytes!")
    one, same = Session("sr.aaa", key), Session("sr.aaa", csrf_key(
        "a-shared-secret-of-at-least-32-bytes!"))  # fmt: skip
    two = Session("sr.bbb", key)
    assert one.csrf == same.csrf  # another worker computes the same token
    assert one.csrf != two.csrf
    assert Session("sr.aaa", csrf_key("another-secret-of-at-least-32-bytes!!")).csrf != one.csrf
    assert Session("sr.aaa", csrf_key(None)).csrf != one.csrf
    assert one.csrf_ok(one.csrf)
    assert "sr.aaa" not in one.csrf
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
