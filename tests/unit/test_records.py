"""`records.constructor`: the same frozen objects as the class builds, or a refusal."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from strongroom.core.kv_types import KVSecret, KVVersionMeta, new_kv_secret, new_version_meta
from strongroom.crypto.envelope import Envelope
from strongroom.models import Actor, new_actor
from strongroom.records import constructor
from strongroom.storage import (
    NewAudit,
    SecretRow,
    VersionRow,
    new_audit_entry,
    new_secret_row,
    new_version_row,
)


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 2
    tags: list[str] = field(default_factory=list)


HOT = [
    (SecretRow, new_secret_row),
    (VersionRow, new_version_row),
    (NewAudit, new_audit_entry),
    (Actor, new_actor),
    (KVSecret, new_kv_secret),
    (KVVersionMeta, new_version_meta),
    (Envelope, constructor(Envelope)),
    (Point, constructor(Point)),
]


@pytest.mark.parametrize(("cls", "new"), HOT, ids=[cls.__name__ for cls, _ in HOT])
def test_same_object_as_the_class(cls: type, new: object) -> None:
    values = [f"v{i}" for i in range(len(dataclasses.fields(cls)))]
    made = new(*values)  # type: ignore[operator]
    expected = cls(*values)
    assert type(made) is cls and made == expected and hash(made) == hash(expected)
    assert repr(made) == repr(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(dataclasses.fields(cls)[0].name, "changed")
    assert pickle.loads(pickle.dumps(made)) == made  # noqa: S301 - our own bytes
    assert copy.deepcopy(made) == made
    first = dataclasses.fields(cls)[0].name
    changed = dataclasses.replace(made, **{first: "other"})  # type: ignore[type-var]
    assert changed == cls("other", *values[1:])
    # by keyword too, as the class takes them
    names = [f.name for f in dataclasses.fields(cls)]
    assert new(**dict(zip(names, values, strict=True))) == made  # type: ignore[operator]


def test_defaults_and_factories() -> None:
    new_point = constructor(Point)
    assert new_point(1) == Point(1) == Point(1, 2, [])
    first, second = new_point(1), new_point(1)
    assert first.tags == [] and first.tags is not second.tags  # a fresh list each time
    assert new_point(1, tags=["a"]).tags == ["a"]
    with pytest.raises(TypeError):
        new_point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        new_point(1, 2, [], 4)  # type: ignore[call-arg]


@dataclass(slots=True)
class Mutable:
    x: int


@dataclass(frozen=True)
class NoSlots:
    x: int


@dataclass(frozen=True, slots=True)
class Checked:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class KeywordOnly:
    x: int = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class Base:
    x: int


@dataclass(frozen=True, slots=True)
class Derived(Base):
    y: int


@pytest.mark.parametrize("cls", [Mutable, NoSlots, Checked, KeywordOnly, Derived, int])
def test_refuses_what_it_cannot_build_the_same(cls: type) -> None:
    with pytest.raises(TypeError):
        constructor(cls)


class PlainBase:
    """Its instances have a `__dict__`: a subclass's objects are laid out differently."""


@dataclass(frozen=True, slots=True)
class OnAPlainBase(PlainBase):
    x: int


def test_a_layout_it_cannot_share_gets_the_class_itself() -> None:
    new = constructor(OnAPlainBase)
    assert new is OnAPlainBase
    assert new(1) == OnAPlainBase(1)
