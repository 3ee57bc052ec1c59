"""`validate_path` accepts a valid path in one match (`models._VALID_PATH`) and explains the
rest segment by segment: both ways must agree on every string."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom import errors
from strongroom.models import MAX_PATH_LENGTH, validate_path

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def _by_the_rules(path: str) -> bool:
    """The documented rules, one at a time."""
    if not path or len(path) > MAX_PATH_LENGTH:
        return False
    return all(
        segment and segment not in (".", "..") and _SEGMENT.fullmatch(segment)
        for segment in path.split("/")
    )


def _accepted(path: str) -> bool:
    try:
        assert validate_path(path) == path
    except errors.InvalidInput:
        return False
    return True


# Mostly the characters that matter: dots, slashes, a few valid ones and a few invalid ones.
_TEXT = st.text(alphabet=st.sampled_from("./a-_Z9 \n\u00e9\\:"), max_size=14)


@settings(max_examples=3000, deadline=None)
@given(_TEXT)
def test_one_match_agrees_with_the_rules(path: str) -> None:
    assert _accepted(path) == _by_the_rules(path)


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("a", True),
        ("a/b.c/..d/d..", True),
        (".a/a./...", True),
        ("a/./b", False),
        ("a/../b", False),
        ("..", False),
        ("a/.", False),
        ("a/", False),
        ("/a", False),
        ("a//b", False),
        ("a\n", False),
        ("a/b\n", False),
        ("x" * MAX_PATH_LENGTH, True),
        ("x" * (MAX_PATH_LENGTH + 1), False),
    ],
)
def test_edges(path: str, ok: bool) -> None:
    assert _accepted(path) is ok


def test_refusals_still_say_why() -> None:
    with pytest.raises(errors.InvalidInput, match=r"'\.' and '\.\.'"):
        validate_path("a/../b")
    with pytest.raises(errors.InvalidInput, match="empty segment"):
        validate_path("a//b")
    with pytest.raises(errors.InvalidInput, match="only letters"):
        validate_path("a b")
    with pytest.raises(errors.InvalidInput, match="longer than"):
        validate_path("x" * (MAX_PATH_LENGTH + 1))
