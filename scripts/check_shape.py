"""Fail when a class in `src/strongroom` is too wide or a mixin (issue 9, `make check`).

Rules: no class with more than 25 public methods, counting what it inherits from our own
classes (third-party bases such as `Exception` or a framework's are not counted), and no class
named `*Mixin`. A public method is a public name whose value is a function, property, cached
property, class method or static method. Run: `python scripts/check_shape.py`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from functools import cached_property

import strongroom

MAX_PUBLIC_METHODS = 25
#: Modules that act on import (Alembic's environment, the console entry point).
SKIP = ("strongroom.storage.migrations", "strongroom.__main__")


def _is_method(value: object) -> bool:
    return isinstance(
        value, staticmethod | classmethod | property | cached_property
    ) or inspect.isfunction(value)


def public_methods(cls: type) -> set[str]:
    """Public method names of `cls`, including those inherited from first-party classes."""
    names: set[str] = set()
    for base in cls.__mro__:
        if not base.__module__.startswith("strongroom"):
            continue
        for name, value in vars(base).items():
            if not name.startswith("_") and _is_method(value):
                names.add(name)
    return names


def classes() -> list[type]:
    """Every class defined in a `strongroom` module."""
    found: list[type] = []
    for info in pkgutil.walk_packages(strongroom.__path__, "strongroom."):
        if info.name.startswith(SKIP):
            continue
        module = importlib.import_module(info.name)
        for _, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == info.name:
                found.append(value)
    return found


def main() -> int:
    """Print every violation; exit 1 if there is one."""
    problems: list[str] = []
    widest: tuple[int, str] = (0, "")
    for cls in classes():
        name = f"{cls.__module__}.{cls.__qualname__}"
        count = len(public_methods(cls))
        widest = max(widest, (count, name))
        if count > MAX_PUBLIC_METHODS:
            problems.append(f"{name}: {count} public methods (at most {MAX_PUBLIC_METHODS})")
        if cls.__name__.endswith("Mixin"):
            problems.append(f"{name}: a mixin; compose a service instead (CONVENTIONS.md)")
    for line in problems:
        print(line, file=sys.stderr)
    print(f"check_shape: widest class {widest[1]} ({widest[0]} public methods)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
