"""`ServerState.caller` checks a request's token once per dialect: the `/v1/<mount>/...`
dispatcher checks it first (so a caller without one learns nothing of the mounts) and the
KV v2 handler it calls gets the same caller without verifying again. A token given
explicitly (the web console's cookie) is always verified."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from strongroom.core.tokens import Principal
from strongroom.http.state import API, V1, ServerState


class _Auth:
    def __init__(self) -> None:
        self.verified: list[str] = []

    def verify(self, token: str) -> Principal:
        self.verified.append(token)
        return Principal(user_id=7, role="App", policies=("p",))


def _state(auth: _Auth) -> Any:
    tokens = SimpleNamespace(jwt_allowed_cached=lambda who: True)
    vault = SimpleNamespace(state=SimpleNamespace(is_unlocked=True), tokens=tokens)
    return SimpleNamespace(
        unlocker=None, vault=vault, auth=auth, client_ip=lambda request: "192.0.2.1"
    )


def _request(token: str) -> Request:
    headers = [(b"x-vault-token", token.encode()), (b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def _caller(state: Any, request: Request, dialect: Any, token: str | None = None) -> Any:
    return asyncio.run(ServerState.caller(state, request, dialect, token=token))


def test_one_check_per_request_and_dialect() -> None:
    auth = _Auth()
    state, request = _state(auth), _request("header-token")
    first = _caller(state, request, V1)
    assert _caller(state, request, V1) is first
    assert auth.verified == ["header-token"]
    assert first.principal.user_id == 7 and first.actor.ip == "192.0.2.1"
    # another dialect reads its own header: checked again
    assert _caller(state, request, API) is not first
    assert auth.verified == ["header-token", "header-token"]
    # a new request is checked again
    _caller(state, _request("header-token"), V1)
    assert len(auth.verified) == 3


def test_an_explicit_token_is_always_verified() -> None:
    auth = _Auth()
    state, request = _state(auth), _request("header-token")
    _caller(state, request, API, token="cookie-token")
    _caller(state, request, API, token="cookie-token")
    assert auth.verified == ["cookie-token", "cookie-token"]
    # and what it found is not taken for the header's caller
    _caller(state, request, API)
    assert auth.verified[-1] == "header-token"
