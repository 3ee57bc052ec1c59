"""The web console's sessions: the session is the token itself, in an HttpOnly cookie.

Signing in with a password issues a recorded token of kind `ui` (through `/api/auth/login`'s
code); a pasted token is kept as given. Every request verifies the cookie's token like an API
request (`ServerState.caller`), so a session works on every worker and instance, ends when its
record expires or is revoked, and survives a restart. Sign-out revokes a `ui` token (a pasted one
is only forgotten: it may be in use elsewhere).

The CSRF token is derived, not stored: HMAC-SHA256 of the session token under a key every worker
shares (derived from `VAULT_JWT_SECRET`; without one, a fixed label, which still needs the
HttpOnly token to compute). Must never: log the token or the CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["COOKIE", "PRE_COOKIE", "UI_KIND", "Session", "csrf_key"]

#: The session cookie's name; `PRE_COOKIE` carries the sign-in form's CSRF token.
COOKIE = "strongroom_ui"
PRE_COOKIE = "strongroom_ui_pre"
#: The kind of the recorded tokens a console sign-in issues (revoked on sign-out).
UI_KIND = "ui"
_LABEL = b"strongroom console csrf v1"


def csrf_key(secret: str | None) -> bytes:
    """The CSRF key from the server's shared secret (the same in every worker and instance)."""
    if not secret:
        return _LABEL
    return hmac.new(secret.encode("utf-8", "surrogatepass"), _LABEL, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in browser: its token (from the cookie) and the CSRF key."""

    token: str
    key: bytes

    @property
    def csrf(self) -> str:
        """This session's CSRF token (synchronizer value, the same on every worker)."""
        mac = hmac.new(self.key, self.token.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def csrf_ok(self, given: str | None) -> bool:
        """Whether `given` is this session's CSRF token (constant-time)."""
        if not given:
            return False
        return hmac.compare_digest(self.csrf.encode(), given.encode("utf-8", "surrogatepass"))
