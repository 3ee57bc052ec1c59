"""Built-in role names as users type them: `admin` means `Admin`, `superadmin` `SuperAdmin`.

Applied where a role is GIVEN (a token is issued, a built-in user is created), so what is stored
or signed always carries the canonical spelling. A token from elsewhere (the hosting panel) is
still matched exactly when it is verified: accepting `admin` there would widen what an external
issuer's tokens grant without its knowledge.
"""

from __future__ import annotations

from strongroom.core.policy import ADMIN_ROLES

__all__ = ["canonical_role"]

_BY_FOLDED = {name.casefold(): name for name in ADMIN_ROLES}


def canonical_role(role: str) -> str:
    """The built-in spelling of `role` if it names a built-in role in any letter case, else `role`.

    >>> canonical_role("admin"), canonical_role("SUPERADMIN"), canonical_role("billing")
    ('Admin', 'SuperAdmin', 'billing')
    """
    return _BY_FOLDED.get(role.casefold(), role)
