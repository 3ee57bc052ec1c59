"""Errors, models, clock and the public surface (issue #2)."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

import strongroom
from strongroom import errors
from strongroom.clock import ManualClock, parse_duration
from strongroom.models import validate_path, validate_prefix

SRC = Path(strongroom.__file__).parent


def _classes() -> list[type[errors.StrongroomError]]:
    found, todo = [], [errors.StrongroomError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_error_tree_codes_unique_and_listed() -> None:
    classes = _classes()
    assert len({c.code for c in classes}) == len(classes)
    assert {c.__name__ for c in classes} <= set(errors.__all__)
    for cls in classes:
        assert 400 <= cls.http_status < 600 and cls.exit_code in (1, 2)
        assert errors.error_for_code(cls.code) is cls
    assert issubclass(errors.SecretExpired, errors.SecretNotFound)
    assert issubclass(errors.InvalidInput, ValueError)
    assert errors.error_for_code("nope") is errors.StrongroomError
    assert str(errors.VaultLocked()) == "vault is locked"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("90d", timedelta(days=90)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "10", "1w", "-5d", "1.5h", "0s", "h1", "1d 2h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match="30s, 15m, 24h"):
        parse_duration(text)


def test_paths() -> None:
    assert validate_path("service/component/key-name_1.0") == "service/component/key-name_1.0"
    assert validate_prefix("database/") == "database/"
    with pytest.raises(errors.InvalidInput):
        validate_prefix("a\nb")


def test_manual_clock() -> None:
    clock = ManualClock()
    start = clock.now()
    clock.advance(timedelta(seconds=5))
    assert clock.now() - start == timedelta(seconds=5) and start.tzinfo is not None


def test_public_all_is_exact() -> None:
    """As httpx does: every public name of the package is in `__all__`, and nothing else.

    A submodule becomes an attribute of the package once anything imports it, so modules count
    only when `__all__` names them (`errors`).
    """
    assert strongroom.__all__ == sorted(strongroom.__all__)
    for name in strongroom.__all__:
        assert hasattr(strongroom, name)
    public = {
        name
        for name, value in vars(strongroom).items()
        if not name.startswith("_")
        and (not isinstance(value, ModuleType) or name in strongroom.__all__)
    }
    assert public == set(strongroom.__all__)
    assert strongroom.Actor(3, "10.0.0.1") == strongroom.Actor(user_id=3, ip="10.0.0.1")


def test_storage_and_crypto_never_import_each_other() -> None:
    """sqlite3 is stdlib (outside import-linter's graph): check the rules on the AST."""

    def imports(folder: str) -> set[str]:
        names: set[str] = set()
        for file in (SRC / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names.add(node.module)
        return names

    crypto, storage = imports("crypto"), imports("storage")
    assert not any(n.startswith(("strongroom.storage", "sqlite3", "sqlalchemy")) for n in crypto)
    assert not any(n.startswith(("strongroom.crypto", "cryptography", "argon2")) for n in storage)
    outside = set()
    for folder in ("core", "http", "cli"):
        if (SRC / folder).exists():
            outside |= imports(folder)
    assert "sqlite3" not in outside
