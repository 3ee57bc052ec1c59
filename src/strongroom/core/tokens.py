"""JWT bearer tokens: issue and verify them, and the `Principal` a verified token names.

Verification keys (`core.jwt_keys.VerifyKey`): the HS256 secret, and optionally PEM public keys
or JWKS keys (RS256, ES256, EdDSA) chosen by the token's `kid`. A token's algorithm must be the
one its key verifies (never taken from the token alone: an RSA public key is never an HMAC
secret), an unknown `kid` is refused, `sub`, `role` and `exp` are required, `nbf` is honoured,
an optional server-wide maximum lifetime (`exp - iat`) is enforced, and every PyJWT failure
becomes one `AuthenticationFailed` with a generic message. Without the HS256 secret the server
can verify but not mint tokens. Verified tokens are cached until they expire, so a repeated
token costs a dict look-up instead of a signature check and a JSON parse. PyJWT loads on first
use (`core.jwt_keys`). This module never logs or echoes a token or a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from strongroom import errors
from strongroom.core.jwt_keys import VerifyKey

__all__ = ["ALGORITHM", "JWTAuth", "Principal", "check_jwt_secret"]

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 8192
MAX_CACHED = 10_000
LEEWAY_SECONDS = 5
ISSUER = "strongroom"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for: the audited user id, the role and policy names."""

    user_id: int
    role: str
    policies: tuple[str, ...] = ()
    expires_at: float = field(default=0.0, compare=False)
    #: Issued by our login for a built-in user (checked against the user record while in use).
    builtin: bool = False
    #: The accessor of a recorded token (`core.token_records`); empty for a JWT.
    accessor: str = ""
    #: A JWT's `iat` (0: none), for "revoke the subject's tokens issued before T".
    issued_at: float = field(default=0.0, compare=False)


def check_jwt_secret(secret: str | bytes) -> bytes:
    """Return the signing key as bytes if it is long enough.

    Raises:
        InvalidInput: shorter than 32 bytes.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise errors.InvalidInput(
            f"VAULT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long"
        )
    return key


#: The latest `exp` accepted (year 3000): beyond it times cannot be formatted everywhere.
MAX_EXP = 32_503_680_000.0


def _user_id(sub: object) -> int:
    if isinstance(sub, bool):
        raise errors.AuthenticationFailed("invalid token: sub must be a user id")
    if isinstance(sub, int) and 0 <= sub < 2**63:
        return sub
    if isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 18:
        return int(sub)
    raise errors.AuthenticationFailed("invalid token: sub must be a user id")


def _principal(claims: dict[str, Any]) -> Principal:
    role = claims.get("role")
    if not isinstance(role, str) or not role or len(role) > 64:
        raise errors.AuthenticationFailed("invalid token: role must be a non-empty string")
    exp = claims["exp"]
    # Compared before float(): an enormous integer would overflow the conversion.
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not 0 < exp < MAX_EXP:
        raise errors.AuthenticationFailed("invalid token: exp out of range")
    names = claims.get("policies", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > 64:
        raise errors.AuthenticationFailed("invalid token: policies must be a list of names")
    return Principal(
        _user_id(claims.get("sub")),
        role,
        tuple(names),
        float(claims["exp"]),
        claims.get("iss") == ISSUER and claims.get("builtin") is True,
        issued_at=float(iat) if isinstance(iat := claims.get("iat"), int | float) else 0.0,
    )


class JWTAuth:
    """Issues and verifies the server's bearer tokens. Thread-safe."""

    def __init__(
        self,
        secret: str | bytes | None,
        *,
        default_ttl: timedelta = timedelta(hours=1),
        keys: Sequence[VerifyKey] = (),
        max_ttl: timedelta | None = None,
    ) -> None:
        """Create the verifier: the HS256 `secret` (tokens without `kid`) and/or `keys`.

        Raises:
            InvalidInput: the secret is shorter than 32 bytes, or there is no key at all.
        """
        self._key = check_jwt_secret(secret) if secret is not None else None
        self._keys = [*([VerifyKey(None, ALGORITHM, self._key)] if self._key else []), *keys]
        if not self._keys:
            raise errors.InvalidInput("no JWT verification key: set VAULT_JWT_SECRET")
        self._kids = {k.kid for k in self._keys}
        self._max_ttl = max_ttl.total_seconds() if max_ttl is not None else None
        self.default_ttl = default_ttl
        self._cache: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        user_id: int,
        role: str,
        *,
        ttl: timedelta | None = None,
        policies: Sequence[str] = (),
        builtin: bool = False,
    ) -> tuple[str, datetime]:
        """Sign a token for `user_id` with `role`; return it and its expiry. `builtin` marks a
        token for a built-in user, which stops working once the user is disabled.

        Raises:
            InvalidInput: a negative user id, an empty role or a non-positive ttl.
        """
        if self._key is None:
            raise errors.InvalidInput("this server has no VAULT_JWT_SECRET: it cannot sign tokens")
        ttl = self.default_ttl if ttl is None else ttl
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 0:
            raise errors.InvalidInput("user id must be a non-negative integer")
        if not isinstance(role, str) or not role or len(role) > 64:
            raise errors.InvalidInput("role must be a non-empty string of at most 64 characters")
        if ttl <= timedelta(0):
            raise errors.InvalidInput("token ttl must be positive")
        now = datetime.now(UTC).replace(microsecond=0)
        expires_at = now + ttl
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "role": role,
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if policies:
            claims["policies"] = list(policies)
        if builtin:
            claims["builtin"] = True
        import jwt  # on first use (module docstring)

        return jwt.encode(claims, self._key, algorithm=ALGORITHM), expires_at

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthenticationFailed: missing, malformed, wrongly signed, `alg` other than HS256
                (including `none`), expired, not yet valid, or a required claim missing.
        """
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            with self._lock:
                self._cache.pop(token, None)
        principal = self._decode(token)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[token] = principal
        return principal

    def _key_for(self, token: str) -> VerifyKey:
        """The one key that may verify `token`, by its header's `kid` and `alg`."""
        import jwt  # on first use (module docstring)

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise errors.AuthenticationFailed("invalid token") from exc
        kid, alg = header.get("kid"), header.get("alg")
        if kid is not None and kid not in self._kids:
            raise errors.AuthenticationFailed("invalid token: unknown key id")
        for key in self._keys:
            if key.kid == kid and key.algorithm == alg:
                return key
        raise errors.AuthenticationFailed("invalid token")

    def _decode(self, token: str) -> Principal:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise errors.AuthenticationFailed("invalid token")
        key = self._key_for(token)
        import jwt  # on first use (module docstring)

        try:
            claims = jwt.decode(
                token,
                key.key,  # type: ignore[arg-type]
                algorithms=[key.algorithm],
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub", "role"],
                    "verify_sub": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.AuthenticationFailed("token expired") from exc
        except jwt.PyJWTError as exc:
            raise errors.AuthenticationFailed("invalid token") from exc
        principal = _principal(claims)
        if self._max_ttl is not None:
            lifetime = principal.expires_at - principal.issued_at
            if not principal.issued_at or lifetime > self._max_ttl:
                raise errors.AuthenticationFailed("token lifetime exceeds the server's maximum")
        return principal
