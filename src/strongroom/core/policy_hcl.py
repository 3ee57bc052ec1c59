"""Vault HCL policies for KV mounts, mapped to Strongroom's path rules (`core.policy`).

Parsing is python-hcl2's; this module only maps what it parsed. Supported: `path` blocks with
`capabilities` on the KV mounts that exist when the policy is written.

At `secret/` (`path "secret/data/P"` and the `metadata/`, `delete/`, `undelete/`, `destroy/`
and `subkeys/` forms) each block maps to one Strongroom rule on `P`, as before mounts:

    data/      create, read, update, delete, list, patch (patch = update)
    metadata/  read, list, delete (delete = every version), create/update (settings)
    delete/ destroy/  update = delete;   undelete/  update = update;   subkeys/  read

At another KV v2 mount a block keeps Vault's path (`team/data/P`, `team/metadata/P`, ...: what
`core.mount_paths.policy_path` names) with the capabilities the `/v1` handlers check there:
`patch` = `update`, `update` on `delete/` and `destroy/` = `delete`; `list` means something on
`metadata/` only. At a KV v1 mount (`legacy/P`) the path and capabilities are kept as they are.

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

import re
from collections.abc import Iterable, Mapping
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
#: At a KV v2 mount other than `secret/`: what a Vault capability on `<mount>/<form>/P` becomes
#: on that same path (the capability the `/v1` handler checks there).
_MOUNT_FORMS: dict[str, dict[str, str]] = {
    "data": {"create": "create", "read": "read", "update": "update", "patch": "update",
             "delete": "delete"},
    "metadata": {"create": "create", "read": "read", "update": "update", "patch": "update",
                 "delete": "delete", "list": "list"},
    "delete": {"update": "delete"},
    "destroy": {"update": "delete"},
    "undelete": {"update": "update"},
    "subkeys": {"read": "read"},
}  # fmt: skip
_V1_CAPS = {c: c for c in ("create", "read", "update", "delete", "list")}
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
        soft = re.search(r"(^|/)data/", path) and "delete" in caps
        if soft or (re.search(r"(^|/)delete/", path) and caps):
            warnings.append(
                f"soft delete on {path!r} maps to Strongroom's delete, which also destroys "
                "versions and deletes metadata"
            )


def _mount_of(path: str, mounts: Mapping[str, int]) -> str | None:
    """The longest mount path `path` lies under (mounts never nest, so at most one)."""
    found = [m for m in mounts if path.startswith(m)]
    return max(found, key=len) if found else None


def _map(path: str, mounts: Mapping[str, int]) -> tuple[str, dict[str, str]] | None:
    """The rule pattern a Vault path maps to and its capability map; None when the path names
    nothing below its mount.

    Raises:
        InvalidInput: no KV mount serves the path, or a form KV v2 does not have.
    """
    mount = MOUNT if path.startswith(MOUNT) else _mount_of(path, mounts)
    if mount is None:
        raise errors.InvalidInput(
            f"policy: unsupported path {path!r}: no KV secrets engine is mounted there"
        )
    rest = path[len(mount) :]
    if mount != MOUNT and mounts[mount] == 1:
        return (path, _V1_CAPS) if rest else None
    form, _, pattern = rest.partition("/")
    if form not in _FORMS:
        raise errors.InvalidInput(
            f"policy: unsupported path {path!r}: only {mount}data/, metadata/, delete/, "
            "undelete/, destroy/ and subkeys/ are supported"
        )
    if not pattern:
        return None
    if mount == MOUNT:
        return pattern, _FORMS[form]
    return path, _MOUNT_FORMS[form]


def hcl_to_rules(
    text: str, mounts: Mapping[str, int] | None = None
) -> tuple[list[Rule], list[str]]:
    """Strongroom rules for a Vault HCL policy, and warnings for what was ignored.

    `mounts` gives the KV version of every mount other than `secret/` (path -> 1 or 2).

    Raises:
        InvalidInput: malformed HCL, an unsupported construct or path (named), an unknown
            capability, or no rule at all.
    """
    known = dict(mounts or {})
    known.pop(MOUNT, None)
    warnings: list[str] = []
    merged: dict[str, set[str]] = {}
    blocks = list(_blocks(_parse(text)))
    _check_precedence([(path, _denies(body)) for path, body in blocks], blocks, warnings)
    for path, body in blocks:
        caps = [] if _denies(body) else _capabilities(path, body, warnings)
        if path.startswith("auth/token/"):
            warnings.append(f"path {path!r} is ignored: every token may use its own")
            continue
        mapped_path = _map(path, known)
        if mapped_path is None:
            warnings.append(f"path {path!r} is ignored: name a pattern below the mount")
            continue
        pattern, form = mapped_path
        mapped = {form[c] for c in caps if c in form}
        dropped = sorted(set(caps) - set(form))
        if dropped:
            warnings.append(f"capabilities {dropped} mean nothing on {path!r}: ignored")
        if mapped:
            merged.setdefault(pattern, set()).update(mapped)
    rules = [Rule(p, frozenset(c)) for p, c in merged.items()]
    if not rules:
        raise errors.InvalidInput("policy: no rule grants anything on a KV mount")
    return rules, warnings


def rules_to_hcl(rules: Iterable[Rule], mounts: Mapping[str, int] | None = None) -> str:
    """Vault HCL granting what `rules` grant: rules naming a mount of `mounts` (path -> KV
    version) as Vault paths of that mount, every other rule as `secret/`'s data/ and metadata/."""
    known = {m: v for m, v in (mounts or {}).items() if m != MOUNT}
    data_caps = {"create", "read", "update", "delete"}
    out: list[str] = []
    for rule in rules:
        mount = _mount_of(rule.pattern, known)
        if mount is not None:
            out.append(_block(rule.pattern, _vault_caps(rule, mount, known[mount])))
            continue
        caps = sorted(rule.capabilities & data_caps)
        if caps:
            out.append(_block(f"{MOUNT}data/{rule.pattern}", caps))
        meta = sorted(rule.capabilities & {"list", "delete"})
        if meta:
            out.append(_block(f"{MOUNT}metadata/{rule.pattern}", meta))
    return "\n".join(out)


def _vault_caps(rule: Rule, mount: str, version: int) -> list[str]:
    """The Vault capabilities a rule on a mount's own path stands for."""
    form = rule.pattern[len(mount) :].partition("/")[0]
    if version == 2 and form in ("delete", "destroy"):
        return ["update"] if "delete" in rule.capabilities else []
    return sorted(rule.capabilities & set(_VAULT_CAPS))


def _block(path: str, caps: list[str]) -> str:
    listed = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{listed}]\n}}\n'
