"""Fast constructors of frozen dataclasses, for the objects every request builds.

A frozen dataclass's `__init__` sets each field with `object.__setattr__` (its own
`__setattr__` refuses): ~130 ns a field, where an ordinary attribute store costs ~15. A
`SecretRow` of 13 fields took 1.7 us to build, and one KV read builds eight such objects
(docs/decisions.md, "Speed, round eleven").

`constructor(cls)` returns a function with the signature of `cls(...)` that builds the very same
object about four times faster: it fills an instance of a plain class with the same slots
(ordinary stores), then gives it `cls` as its class. What comes out is a `cls`, frozen, equal to
what `cls(...)` builds from the same arguments (checked once, when the constructor is made; a
class whose instances the plain class cannot stand in for, say one with a `__dict__` from a
base, gets `cls` itself back).
The class itself is left as it is: `cls(...)`, `dataclasses.replace`, copies and pickles behave
as before. Only a frozen dataclass with slots, a field per slot, no `__post_init__` and no
`__init__` or `__new__` of its own qualifies.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["constructor"]

P = ParamSpec("P")
T = TypeVar("T")

#: A field without a value (defaults that are factories are called when it is left out).
_MISSING = object()


def constructor(cls: Callable[P, T]) -> Callable[P, T]:
    """A function building `cls(...)` from the same arguments, faster (module docstring).

    Raises:
        TypeError: `cls` is not a frozen dataclass with slots holding exactly its fields, or
            has a `__post_init__`, `InitVar`s or fields outside positional `__init__`.
    """
    original = cls
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise TypeError("constructor() takes a dataclass")
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    if params is None or not params.frozen or tuple(getattr(cls, "__slots__", ())) != tuple(names):
        raise TypeError(f"{cls.__name__}: not a frozen dataclass whose slots are its fields")
    if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__}: a __post_init__, or a field outside positional init")
    if any(keyword.iskeyword(n) or n.startswith("_sr_") for n in names):
        raise TypeError(f"{cls.__name__}: a field name this module cannot use")
    if len(dataclasses.fields(cls)) != len(getattr(cls, "__dataclass_fields__", {})):
        raise TypeError(f"{cls.__name__}: InitVar or ClassVar pseudo-fields")
    fill = type(f"{cls.__name__}Fill", (), {"__slots__": tuple(names)})
    scope: dict[str, Any] = {"_sr_new": object.__new__, "_sr_fill": fill, "_sr_cls": cls}
    signature, factories = [], []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            scope[f"_sr_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_sr_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_sr_factory_{f.name}"] = f.default_factory
            scope["_sr_missing"] = _MISSING
            signature.append(f"{f.name}=_sr_missing")
            factories.append(
                f"    if {f.name} is _sr_missing:\n        {f.name} = _sr_factory_{f.name}()\n"
            )
        else:
            signature.append(f.name)
    body = "".join(factories) + "".join(f"    _sr_obj.{n} = {n}\n" for n in names)
    source = (
        f"def build({', '.join(signature)}):\n"
        "    _sr_obj = _sr_new(_sr_fill)\n"
        f"{body}"
        "    _sr_obj.__class__ = _sr_cls\n"
        "    return _sr_obj\n"
    )
    exec(compile(source, f"<constructor of {cls.__qualname__}>", "exec"), scope)  # noqa: S102
    build: Callable[..., Any] = scope["build"]
    build.__name__ = build.__qualname__ = f"new_{cls.__name__}"
    build.__doc__ = f"`{cls.__name__}(...)`, built faster (`strongroom.records`)."
    values = [object() for _ in names]
    try:
        made = build(*values)
    except TypeError:  # `__class__` refused: the plain class's layout is not the dataclass's
        return original
    _check(cls, made, values, names)
    return build


def _check(cls: type, made: object, values: list[object], names: list[str]) -> None:
    """`made` (built from `values`) is what `cls` makes from them, field for field."""
    expected = cls(*values)
    if type(made) is not cls or any(getattr(made, n) is not getattr(expected, n) for n in names):
        raise TypeError(f"{cls.__name__}: constructor() built something else")
