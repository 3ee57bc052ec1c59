"""The hosting panel's stateless JWTs on a real server (issue 15): asymmetric keys from a JWKS
file with two `kid`s, `--jwt-max-ttl`, algorithm confusion, and "refuse subject N's tokens
issued before T" (`vaultctl token revoke --user-id N --jwts-before now`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.integration.server_proc import ServerProcess, auth
from tests.unit.test_jwt_keys import _hs256_with

KEYS: dict[str, Any] = {
    "old": (rsa.generate_private_key(65537, 2048), "RS256", RSAAlgorithm),
    "new": (ec.generate_private_key(ec.SECP256R1()), "ES256", ECAlgorithm),
}


def _panel(kid: str, *, lifetime: int = 600, iat_shift: int = 0) -> str:
    private, alg, _ = KEYS[kid]
    now = int(time.time()) + iat_shift
    claims = {"sub": "42", "role": "Admin", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})


def _status(server: ServerProcess, token: str) -> int:
    return httpx.get(
        f"{server.url}/api/vault/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).status_code


def test_panel_tokens_with_two_keys_max_ttl_and_revoke_before(tmp_path: Path) -> None:
    jwks = {
        "keys": [
            {**json.loads(cls.to_jwk(private.public_key())), "kid": kid, "alg": alg}
            for kid, (private, alg, cls) in KEYS.items()
        ]
    }
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    args = ["--jwt-jwks", str(tmp_path / "jwks.json"), "--jwt-max-ttl", "1h"]
    server = ServerProcess(tmp_path, args=args).start()
    try:
        assert _status(server, _panel("old")) == 200
        assert _status(server, _panel("new")) == 200  # two keys at once during a rotation
        private, alg, _ = KEYS["new"]
        now = int(time.time())
        unknown = jwt.encode(
            {"sub": "42", "role": "Admin", "iat": now, "exp": now + 60},
            private, algorithm=alg, headers={"kid": "gone"},
        )  # fmt: skip
        assert _status(server, unknown) == 401
        assert _status(server, _panel("old", lifetime=7200)) == 401  # over --jwt-max-ttl
        pem = (
            KEYS["old"][0]
            .public_key()
            .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
        )
        assert _status(server, _hs256_with(pem)) == 401  # algorithm confusion
        early = _panel("old", iat_shift=-5)
        assert _status(server, early) == 200
        cut = httpx.post(
            f"{server.url}/api/vault/tokens/revoke",
            headers=auth("SuperAdmin"),
            json={"user_id": 42, "jwt_issued_before": "now"},
            timeout=10,
        )
        assert cut.status_code == 200, cut.text
        assert _status(server, early) == 401
        assert _status(server, _panel("new", iat_shift=2)) == 200  # issued after the cut
        logs = httpx.get(
            f"{server.url}/api/vault/audit",
            params={"action": "token_refused"},
            headers=auth("SuperAdmin"),
            timeout=10,
        ).json()["logs"]
        assert logs and logs[0]["path"] == "user-id:42"
    finally:
        server.stop()
