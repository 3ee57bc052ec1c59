"""Vault HCL policies for the KV v2 mount, mapped to Strongroom's path rules (`core.policy`).

Parsing is python-hcl2's; this module only maps what it parsed. Supported: `path "<mount>/data/P"`
and the `metadata/`, `delete/`, `undelete/`, `destroy/` and `subkeys/` forms on the `secret/`
mount, with `capabilities`. They map to one Strongroom rule on `P`:

    data/      create, read, update, delete, list, patch (patch = update)
    metadata/  read, list, delete (delete = every version), create/update (settings)
    delete/ destroy/  update = delete;   undelete/  update = update;   subkeys/  read

Vault applies the most specific path's block alone, and `deny` wins within it; Strongroom's
rules add up and have no deny. So a policy is accepted only where both read it the same way:
a block with `deny` grants nothing (a warning; default deny does the rest), but a `deny` or a
narrower block that grants less on paths a broader block covers is refused with both named
(Strongroom would grant there what Vault refuses). `sudo` is ignored with a warning. Vault's
soft delete (`data/` delete, `delete/`) maps to Strongroom's `delete`, which also destroys: a
warning says so. Vault's self-service `auth/token/*` paths are ignored with a warning (every
token may already look up, renew and revoke itself). Anything else - another mount or path,
parameter constraints, wrapping TTLs, an unknown capability - is refused with `InvalidInput`
naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hcl2

from strongroom import errors
from strongroom.core.policy import Rule

__all__ = ["MOUNT", "hcl_to_rules", "rules_to_hcl"]

MOUNT = "secret/"
_FORMS: dict[str, dict[str, str]] = {
    "data": {
        "create": "create",
        "read": "read",
        "update": "update",
        "patch": "update",
        "delete": "delete",
        "list": "list",
    },
    "metadata": {
        "read": "read",
        "list": "list",
        "delete": "delete",
        "create": "update",
        "update": "update",
        "patch": "update",
    },
    "delete": {"update": "delete", "create": "delete"},
    "destroy": {"update": "delete", "create": "delete"},
    "undelete": {"update": "update", "create": "update"},
    "subkeys": {"read": "read"},
}
_IGNORED = frozenset({"deny", "sudo"})
_VAULT_CAPS = frozenset({"create", "read", "update", "patch", "delete", "list"})


def _text(value: object) -> str:
    """A string from python-hcl2's output (which keeps the quotes of string literals)."""
    if not isinstance(value, str):
        raise errors.InvalidInput("policy: expected a string")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _meta(key: str) -> bool:
    """python-hcl2's own keys (`__is_block__`, `__comments__`...), not HCL constructs."""
    return key.startswith("__") and key.endswith("__")


def _parse(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        raise errors.InvalidInput("policy: empty HCL")
    try:
        parsed = hcl2.loads(text)
    except Exception as exc:  # lark's many parse errors; nothing else is raised here
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise errors.InvalidInput(f"policy: malformed HCL: {first}") from exc
    if not isinstance(parsed, dict):
        raise errors.InvalidInput("policy: malformed HCL")
    return parsed


def _blocks(parsed: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for key, value in parsed.items():
        if _meta(key):
            continue
        if key != "path":
            raise errors.InvalidInput(f"policy: unsupported construct {key!r} (only path blocks)")
        for block in value if isinstance(value, list) else [value]:
            if not isinstance(block, dict):
                raise errors.InvalidInput("policy: malformed path block")
            for name, body in block.items():
                if _meta(name):
                    continue
                if not isinstance(body, dict):
                    raise errors.InvalidInput("policy: malformed path block")
                yield _text(name), body


def _capabilities(path: str, body: dict[str, Any], warnings: list[str]) -> list[str]:
    caps: list[str] = []
    for key, value in body.items():
        if _meta(key):
            continue
        if key != "capabilities":
            raise errors.InvalidInput(f"policy: unsupported construct {key!r} in path {path!r}")
        if not isinstance(value, list):
            raise errors.InvalidInput(f"policy: capabilities of {path!r} must be a list")
        for raw in value:
            cap = _text(raw)
            if cap in _IGNORED:
                warnings.append(f"capability {cap!r} on path {path!r} is ignored")
            elif cap in _VAULT_CAPS:
                caps.append(cap)
            else:
                raise errors.InvalidInput(f"policy: unknown capability {cap!r} on path {path!r}")
    return caps


def _denies(body: dict[str, Any]) -> bool:
    caps = body.get("capabilities")
    return isinstance(caps, list) and any(_text(c) == "deny" for c in caps if isinstance(c, str))


def _head(path: str) -> str:
    """What every path a Vault glob matches starts with (up to its first `*` or `+`)."""
    cut = [i for i in (path.find("*"), path.find("+")) if i >= 0]
    return path[: min(cut)] if cut else path


def _covers(broad: str, narrow: str) -> bool:
    """True when the Vault glob `broad` matches paths that the distinct glob `narrow` matches
    and Vault would give them to `narrow` (the more specific block): `broad` is a prefix glob
    whose literal head starts `narrow`'s head."""
    return broad != narrow and broad.endswith("*") and _head(narrow).startswith(_head(broad))


def _check_precedence(
    flags: list[tuple[str, bool]], blocks: list[tuple[str, dict[str, Any]]], warnings: list[str]
) -> None:
    """Refuse what Vault's most-specific-block rule and Strongroom's union would read apart.

    Raises:
        InvalidInput: a `deny` block, or a narrower block granting less, under a broader
            block that grants (both paths named).
    """
    granted: dict[str, set[str]] = {}
    for (path, denies), (_, body) in zip(flags, blocks, strict=True):
        if not denies:
            granted[path] = set(_capabilities(path, body, []))
    for path, denies in flags:
        for broad, caps in granted.items():
            if not caps or not _covers(broad, path):
                continue
            lost = sorted(caps - granted.get(path, set())) if not denies else sorted(caps)
            if lost:
                what = "denies" if denies else f"grants less ({', '.join(lost)} missing)"
                raise errors.InvalidInput(
                    f"policy: {path!r} {what} under {broad!r}; Vault applies the narrower "
                    "block alone, Strongroom would add both up: give the narrower path "
                    "the same capabilities, or narrow the broader one"
                )
        if denies:
            warnings.append(f"path {path!r} denies: nothing is granted there (default deny)")
    for path, caps in granted.items():
        form = path.removeprefix(MOUNT).split("/", 1)[0]
        if (form == "data" and "delete" in caps) or (form == "delete" and caps):
            warnings.append(
                f"soft delete on {path!r} maps to Strongroom's delete, which also destroys "
                "versions and deletes metadata"
            )


def hcl_to_rules(text: str) -> tuple[list[Rule], list[str]]:
    """Strongroom rules for a Vault HCL policy, and warnings for what was ignored.

    Raises:
        InvalidInput: malformed HCL, an unsupported construct or path (named), an unknown
            capability, or no rule at all.
    """
    warnings: list[str] = []
    merged: dict[str, set[str]] = {}
    blocks = list(_blocks(_parse(text)))
    _check_precedence([(path, _denies(body)) for path, body in blocks], blocks, warnings)
    for path, body in blocks:
        caps = [] if _denies(body) else _capabilities(path, body, warnings)
        if path.startswith("auth/token/"):
            warnings.append(f"path {path!r} is ignored: every token may use its own")
            continue
        form, _, pattern = path.removeprefix(MOUNT).partition("/")
        if not path.startswith(MOUNT) or form not in _FORMS:
            raise errors.InvalidInput(
                f"policy: unsupported path {path!r}: only {MOUNT}data/, metadata/, delete/, "
                "undelete/, destroy/ and subkeys/ are supported"
            )
        if not pattern:
            warnings.append(f"path {path!r} is ignored: name a pattern below the mount")
            continue
        mapped = {_FORMS[form][c] for c in caps if c in _FORMS[form]}
        dropped = sorted(set(caps) - set(_FORMS[form]))
        if dropped:
            warnings.append(f"capabilities {dropped} mean nothing on {path!r}: ignored")
        if mapped:
            merged.setdefault(pattern, set()).update(mapped)
    rules = [Rule(p, frozenset(c)) for p, c in merged.items()]
    if not rules:
        raise errors.InvalidInput("policy: no rule grants anything on the secret/ mount")
    return rules, warnings


def rules_to_hcl(rules: Iterable[Rule]) -> str:
    """Vault HCL granting what `rules` grant (data/ and metadata/ paths of `secret/`)."""
    data_caps = {"create", "read", "update", "delete"}
    out: list[str] = []
    for rule in rules:
        caps = sorted(rule.capabilities & data_caps)
        if caps:
            out.append(_block(f"{MOUNT}data/{rule.pattern}", caps))
        meta = sorted(rule.capabilities & {"list", "delete"})
        if meta:
            out.append(_block(f"{MOUNT}metadata/{rule.pattern}", meta))
    return "\n".join(out)


def _block(path: str, caps: list[str]) -> str:
    listed = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{listed}]\n}}\n'
