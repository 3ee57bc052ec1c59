"""Verification keys for the hosting panel's stateless JWTs (issue 15): an HS256 secret, a PEM
public key (RS256, ES256 or EdDSA, told apart by the key's type) or a local JWKS file whose
keys carry a `kid`, so a panel can rotate keys (two keys valid at once) and, with an asymmetric
key, keep the only signing key. Parsing is PyJWT's (`jwt.PyJWK`, `jwt.algorithms`); foreign
errors become `InvalidInput` here. This module never logs a key. PyJWT loads on first use: its
algorithms load most of `cryptography`, which a local `vaultctl get` never needs (issue 16).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from strongroom import errors

__all__ = ["ASYMMETRIC", "VerifyKey", "key_from_pem", "keys_from_jwks"]

#: The asymmetric algorithms a public key may verify (HS256 is the shared-secret one).
ASYMMETRIC = ("RS256", "ES256", "EdDSA")


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """One key a token's signature may be checked with: its `kid` (None: tokens without
    one) and the single algorithm it verifies."""

    kid: str | None
    algorithm: str
    key: object


def key_from_pem(pem: str | bytes, *, kid: str | None = None) -> VerifyKey:
    """A verification key from a PEM public key; the algorithm follows the key's type
    (RSA: RS256, EC P-256: ES256, Ed25519/Ed448: EdDSA).

    Raises:
        InvalidInput: not a PEM public key of one of those types.
    """
    import jwt  # on first use (module docstring)
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        raise errors.InvalidInput("the JWT verification key must be a public key, not private")
    candidates = (
        ("RS256", RSAAlgorithm(RSAAlgorithm.SHA256)),
        ("ES256", ECAlgorithm(ECAlgorithm.SHA256)),
        ("EdDSA", OKPAlgorithm()),
    )
    for name, algorithm in candidates:
        try:
            return VerifyKey(kid, name, algorithm.prepare_key(data))
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue
    raise errors.InvalidInput("the JWT public key is not an RSA, EC P-256 or Ed25519 PEM key")


def keys_from_jwks(text: str) -> list[VerifyKey]:
    """Verification keys from a JWKS document (`{"keys": [...]}`); each key needs a `kid`
    and an `alg` (or a type that implies one).

    Raises:
        InvalidInput: malformed JSON or JWK, a key without `kid`, or a duplicate `kid`.
    """
    try:
        document = json.loads(text)
        raw = document["keys"]
        if not isinstance(raw, list) or not raw:
            raise ValueError("no keys")
        found = [_jwk(item) for item in raw]
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, errors.InvalidInput):
            raise
        raise errors.InvalidInput('the JWKS file must be {"keys": [JWK, ...]}') from exc
    _unique(k.kid for k in found)
    return found


def _jwk(item: object) -> VerifyKey:
    import jwt  # on first use (module docstring)

    if not isinstance(item, dict) or not isinstance(item.get("kid"), str) or not item["kid"]:
        raise errors.InvalidInput("every key of the JWKS file needs a kid")
    if "d" in item:
        raise errors.InvalidInput("the JWKS file must hold public keys only")
    try:
        parsed = jwt.PyJWK(item)
    except jwt.PyJWTError as exc:
        raise errors.InvalidInput(f"JWKS key {item['kid'][:64]!r} is not usable") from exc
    if parsed.algorithm_name not in (*ASYMMETRIC, "HS256"):
        raise errors.InvalidInput(f"JWKS key {item['kid'][:64]!r}: unsupported algorithm")
    return VerifyKey(item["kid"], parsed.algorithm_name, parsed.key)


def _unique(kids: Iterable[str | None]) -> None:
    seen: set[str | None] = set()
    for kid in kids:
        if kid in seen:
            raise errors.InvalidInput(f"duplicate kid {kid!r} in the JWKS file")
        seen.add(kid)
