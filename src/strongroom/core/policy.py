"""Roles and path policies: who may do what to which secret path (DESIGN §6).

`SuperAdmin` and `Admin` may do everything except that master-key rotation (`rotate-all`) needs
`SuperAdmin`. Any other role may only use secret operations a path policy grants. A policy is a
list of rules, one per line in its text form::

    # comment
    app/billing/*: read, list
    app/+/config: read

A pattern matches a whole path: `*` at the end matches any rest (any depth), `*` elsewhere any
characters within one segment, a `+` segment exactly one segment; everything else is literal.
Default deny: nothing is allowed that no rule grants. This module decides; it never logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strongroom import errors

__all__ = [
    "ADMIN_ROLES",
    "CAPABILITIES",
    "SUPERADMIN",
    "Policy",
    "Rule",
    "check_policy_name",
    "parse_rules",
    "rules_from_json",
    "rules_to_json",
]

SUPERADMIN = "SuperAdmin"
ADMIN_ROLES = frozenset({SUPERADMIN, "Admin"})
#: Capabilities a rule may grant. `update` also covers rollback and single-secret rotation.
CAPABILITIES = ("read", "list", "create", "update", "delete", "audit")
MAX_RULES = 256
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PATTERN = re.compile(r"[A-Za-z0-9._*+/-]{1,500}")
_WILDCARD = re.compile(r"\*|(?:^|/)\+(?:/|$)")


def check_policy_name(name: object) -> str:
    """Return `name` if it is a valid policy name (1-128 of `[A-Za-z0-9._-]`).

    Raises:
        InvalidInput: anything else.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise errors.InvalidInput("invalid policy name: use 1-128 letters, digits, '.', '_' or '-'")
    return name


def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "+":
            parts.append("[^/]+")
            continue
        out = ""
        for j, ch in enumerate(segment):
            if ch == "*":
                out += ".*" if last and j == len(segment) - 1 else "[^/]*"
            else:
                out += re.escape(ch)
        parts.append(out)
    return re.compile("/".join(parts))


@dataclass(frozen=True)
class Rule:
    """One pattern and the capabilities it grants."""

    pattern: str
    capabilities: frozenset[str]

    def __post_init__(self) -> None:
        if not _PATTERN.fullmatch(self.pattern) or "//" in self.pattern:
            raise errors.InvalidInput(f"invalid policy pattern {self.pattern!r}")
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown or not self.capabilities:
            shown = sorted(unknown) or "(none)"
            raise errors.InvalidInput(
                f"invalid capabilities {shown}: use {', '.join(CAPABILITIES)}"
            )
        object.__setattr__(self, "_regex", _compile(self.pattern))

    @property
    def literal_prefix(self) -> str:
        """What every path the pattern matches starts with: the pattern up to its first
        wildcard (a `*`, or a segment that is `+`)."""
        found = _WILDCARD.search(self.pattern)
        if found is None:
            return self.pattern
        return self.pattern[: found.start() + found.group().startswith("/")]

    def matches(self, path: str) -> bool:
        """True when the pattern matches the whole of `path`."""
        regex: re.Pattern[str] = object.__getattribute__(self, "_regex")
        return regex.fullmatch(path) is not None


@dataclass(frozen=True)
class Policy:
    """A named set of rules."""

    name: str
    rules: tuple[Rule, ...]

    def allows(
        self, capability: str, path: str, scope: Callable[[str], bool] | None = None
    ) -> bool:
        """True when some rule grants `capability` on `path` (only rules whose pattern
        `scope` accepts, when given)."""
        return any(
            capability in r.capabilities and (scope is None or scope(r.pattern)) and r.matches(path)
            for r in self.rules
        )

    def reaches(self, mount: str) -> bool:
        """True when some rule applies to the mount at path `mount` (not `secret/`): its
        pattern starts with that path, the test `Authorizer` scopes rules by. Used to show a
        caller only the mounts it may use; `allows` still decides each path."""
        return any(rule.pattern.startswith(mount) for rule in self.rules)

    def grants_anywhere(self, capability: str) -> bool:
        """True when some rule grants `capability` on some path."""
        return any(capability in r.capabilities for r in self.rules)


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Parse the line form (`pattern: cap, cap`), or a JSON list of {path, capabilities}.

    Raises:
        InvalidInput: a malformed line, pattern or capability, or no rule at all.
    """
    if not isinstance(text, str):
        raise errors.InvalidInput("policy rules must be text")
    if text.lstrip().startswith("["):
        return rules_from_json(text)
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, sep, caps = line.partition(":")
        if not sep:
            raise errors.InvalidInput(f"policy line {number}: expected 'pattern: capability, ...'")
        names = frozenset(c.strip() for c in caps.replace(",", " ").split() if c.strip())
        rules.append(Rule(pattern.strip().strip("\"'"), names))
    return _checked(rules)


def _checked(rules: list[Rule]) -> tuple[Rule, ...]:
    if not rules:
        raise errors.InvalidInput("a policy needs at least one rule")
    if len(rules) > MAX_RULES:
        raise errors.InvalidInput(f"a policy may have at most {MAX_RULES} rules")
    return tuple(rules)


def rules_to_json(rules: Iterable[Rule]) -> str:
    """The stored form of a policy's rules."""
    return json.dumps(
        [{"path": r.pattern, "capabilities": sorted(r.capabilities)} for r in rules],
        separators=(",", ":"),
    )


def rules_from_json(text: str) -> tuple[Rule, ...]:
    """Rules from their JSON form.

    Raises:
        InvalidInput: not a JSON list of {"path": str, "capabilities": [str, ...]}.
    """
    try:
        data = json.loads(text)
        rules = [Rule(item["path"], frozenset(item["capabilities"])) for item in data]
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, errors.InvalidInput):
            raise
        raise errors.InvalidInput(
            'policy JSON must be a list of {"path": ..., "capabilities": [...]}'
        ) from exc
    return _checked(rules)
