"""The web console's server-side sessions: a random id in an HttpOnly cookie, the token kept here.

A session ends when its token expires, on sign-out, or when the process restarts. The cookie
holds only the random session id (never the token); each session has its own CSRF token
(synchronizer pattern). Must never: log a session id, token or CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = ["COOKIE", "PRE_COOKIE", "Session", "SessionStore"]

#: The session cookie's name; `PRE_COOKIE` carries the sign-in form's CSRF token.
COOKIE = "strongroom_ui"
PRE_COOKIE = "strongroom_ui_pre"
_MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    """One signed-in browser: its token, that token's expiry (epoch seconds) and CSRF token."""

    token: str
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def csrf_ok(self, given: str | None) -> bool:
        """Whether `given` is this session's CSRF token (constant-time)."""
        return bool(given) and hmac.compare_digest(self.csrf.encode(), (given or "").encode())


class SessionStore:
    """Sessions by id, each bound to its token's expiry. Thread-safe."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: str, expires_at: float) -> tuple[str, Session]:
        """A new session for `token`; returns its id (for the cookie) and the session."""
        sid = secrets.token_urlsafe(32)
        session = Session(token, expires_at)
        with self._lock:
            if len(self._sessions) >= _MAX_SESSIONS:
                self._purge()
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session of `sid` (None: unknown, or its token has expired)."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires_at <= time.time():
                del self._sessions[sid]
                return None
        return session

    def end(self, sid: str | None) -> None:
        """Forget a session (sign-out)."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def _purge(self) -> None:
        now = time.time()
        for sid in [k for k, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
        while len(self._sessions) >= _MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
