"""Pure KV v2 rules: Go durations, custom metadata coercion, merge patch, folder listing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom import errors
from strongroom.core.kv_types import (
    coerce_custom_metadata,
    folder_keys,
    format_go_duration,
    merge_patch,
    parse_go_duration,
)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("0s", 0),
        ("0", 0),
        (0, 0),
        (90, 90),
        ("90", 90),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("768h", 768 * 3600),
        ("1m30s", 90),
        ("1500ms", 1),
        (timedelta(minutes=2), 120),
    ],
)
def test_parse_go_duration(raw: object, seconds: int) -> None:
    assert parse_go_duration(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["-1s", -5, "soon", "1x", "", True, None, 1.5, "h"])
def test_parse_go_duration_rejects(raw: object) -> None:
    with pytest.raises(errors.InvalidInput):
        parse_go_duration(raw)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (5400, "1h30m0s"),
        (768 * 3600, "768h0m0s"),
    ],
)
def test_format_go_duration(seconds: int, text: str) -> None:
    assert format_go_duration(timedelta(seconds=seconds)) == text


def test_custom_metadata_is_coerced_like_vault() -> None:
    assert coerce_custom_metadata({"n": 1, "b": True, "f": 1.5, "g": 2.0, "s": "x"}) == {
        "n": "1",
        "b": "1",
        "f": "1.5",
        "g": "2",
        "s": "x",
    }


def test_merge_patch_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_folder_keys() -> None:
    paths = ["a/b", "a/c/d", "a/c/e", "ab", "a"]
    assert folder_keys(paths, "") == ["a", "a/", "ab"]
    assert folder_keys(paths, "a/") == ["b", "c/"]


@given(
    st.lists(st.text(alphabet="ab/\n", min_size=1, max_size=6), unique=True),
    st.sampled_from(["", "a/", "a/b/", "b/", "\n", "a\n"]),
)
def test_folder_keys_matches_its_definition(paths: list[str], folder: str) -> None:
    """Each entry is a path's remainder after `folder` up to and including its first `/`
    (newlines too, which no stored path holds: they cannot fool the cut in C)."""
    expected = set()
    for path in paths:
        if path.startswith(folder) and len(path) > len(folder):
            rest = path[len(folder) :]
            expected.add(rest.split("/", 1)[0] + ("/" if "/" in rest else ""))
    assert folder_keys(sorted(paths), folder) == sorted(expected)
    assert folder_keys(paths, folder) == sorted(expected)  # any order in, sorted out
