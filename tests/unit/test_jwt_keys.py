"""Panel JWTs (issue 15): asymmetric verification from a PEM key or a JWKS file, `kid` rotation
with two keys, unknown `kid`, algorithm confusion, the server-wide maximum lifetime."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from strongroom import errors
from strongroom.core.jwt_keys import key_from_pem, keys_from_jwks
from strongroom.core.tokens import JWTAuth

SECRET = "s" * 32
PRIVATE: dict[str, Any] = {
    "RS256": rsa.generate_private_key(65537, 2048),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
}


def _pem(alg: str) -> bytes:
    pem: bytes = (
        PRIVATE[alg]
        .public_key()
        .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    )
    return pem


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "7", "role": "App", "iat": now, "exp": now + 600, **extra}


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_asymmetric_tokens_verify_with_the_public_key_only(alg: str) -> None:
    auth = JWTAuth(None, keys=[key_from_pem(_pem(alg))])
    token = jwt.encode(_claims(), PRIVATE[alg], algorithm=alg)
    assert auth.verify(token).user_id == 7
    with pytest.raises(errors.InvalidInput, match="cannot sign"):
        auth.issue(1, "Admin")  # the panel keeps the only signing key
    with pytest.raises(errors.AuthenticationFailed):  # an HS256 token is not accepted
        auth.verify(jwt.encode(_claims(), SECRET, algorithm="HS256"))


def _hs256_with(secret: bytes) -> str:
    """An HS256 token signed by hand, with any bytes as the HMAC key (PyJWT refuses to)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(_claims(role="SuperAdmin")).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def test_algorithm_confusion_is_refused() -> None:
    pem = _pem("RS256")
    forged = _hs256_with(pem)  # the public key used as an HMAC secret
    for auth in (
        JWTAuth(None, keys=[key_from_pem(pem)]),
        JWTAuth(SECRET, keys=[key_from_pem(pem)]),
    ):
        with pytest.raises(errors.AuthenticationFailed):
            auth.verify(forged)
    none = jwt.encode(_claims(), None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(errors.AuthenticationFailed):
        JWTAuth(SECRET, keys=[key_from_pem(pem)]).verify(none)


def _jwk(alg: str, kid: str) -> dict[str, Any]:
    algorithm = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    jwk = json.loads(algorithm.to_jwk(PRIVATE[alg].public_key()))  # type: ignore[attr-defined]
    return {**jwk, "kid": kid, "alg": alg}


def test_jwks_rotation_two_keys_and_unknown_kid() -> None:
    jwks = json.dumps({"keys": [_jwk("RS256", "old"), _jwk("ES256", "new")]})
    auth = JWTAuth(None, keys=keys_from_jwks(jwks))
    old = jwt.encode(_claims(), PRIVATE["RS256"], algorithm="RS256", headers={"kid": "old"})
    new = jwt.encode(_claims(), PRIVATE["ES256"], algorithm="ES256", headers={"kid": "new"})
    assert auth.verify(old).user_id == auth.verify(new).user_id == 7
    unknown = jwt.encode(_claims(), PRIVATE["ES256"], algorithm="ES256", headers={"kid": "x"})
    with pytest.raises(errors.AuthenticationFailed, match="unknown key id"):
        auth.verify(unknown)
    swapped = jwt.encode(_claims(), PRIVATE["ES256"], algorithm="ES256", headers={"kid": "old"})
    with pytest.raises(errors.AuthenticationFailed):
        auth.verify(swapped)  # kid "old" verifies RS256 only
    with pytest.raises(errors.AuthenticationFailed):  # no kid: no key without one
        auth.verify(jwt.encode(_claims(), PRIVATE["RS256"], algorithm="RS256"))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"keys": []}',
        json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),  # no kid
        json.dumps({"keys": [{"kid": "a", "kty": "nope"}]}),
    ],
)
def test_bad_jwks_files_are_refused(text: str) -> None:
    with pytest.raises(errors.InvalidInput):
        keys_from_jwks(text)


def test_bad_pem_and_private_keys_are_refused() -> None:
    with pytest.raises(errors.InvalidInput):
        key_from_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    private = PRIVATE["RS256"].private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()
    )
    with pytest.raises(errors.InvalidInput, match="public key"):
        key_from_pem(private)


def test_server_wide_maximum_lifetime() -> None:
    auth = JWTAuth(SECRET, max_ttl=timedelta(hours=1))
    now = int(time.time())
    ok = jwt.encode({**_claims(), "exp": now + 3600}, SECRET, algorithm="HS256")
    assert auth.verify(ok).user_id == 7
    long = jwt.encode({**_claims(), "exp": now + 3601}, SECRET, algorithm="HS256")
    no_iat = jwt.encode({"sub": "7", "role": "App", "exp": now + 60}, SECRET, algorithm="HS256")
    for token in (long, no_iat):
        with pytest.raises(errors.AuthenticationFailed):
            auth.verify(token)
