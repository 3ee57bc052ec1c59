"""`http.direct.DirectRoutes`: which requests skip Starlette's router, and that every other
request is left to it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.http import api_kv2
from strongroom.http.direct import DirectRoutes
from strongroom.http.routing import refuse_head

# As `create_app` does (it changes the shared route objects: done here too, so that the
# outcome does not depend on whether a test of this process built an app before).
refuse_head(api_kv2.KV2_ROUTES, "/v1/")
DIRECT = DirectRoutes(api_kv2.KV2_ROUTES)


def _match(method: str, path: str) -> tuple[str | None, Any]:
    scope: dict[str, Any] = {"method": method, "path": path}
    route = DIRECT.match(scope)
    return (route.name if route else None), scope.get("path_params")


@pytest.mark.parametrize(
    ("method", "path", "name", "rest"),
    [
        ("GET", "/v1/secret/data/a/b", "kv2_data", "a/b"),
        ("POST", "/v1/secret/data/a", "kv2_data", "a"),
        ("GET", "/v1/secret/metadata/folder/", "kv2_metadata", "folder/"),
        ("GET", "/v1/secret/subkeys/a", "kv2_subkeys", "a"),
        ("PUT", "/v1/secret/destroy/a/b/c", "kv2_destroy", "a/b/c"),
    ],
)
def test_hot_routes_match_by_prefix(method: str, path: str, name: str, rest: str) -> None:
    assert _match(method, path) == (name, {"path": rest})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/secret/data/"),  # an empty key path: the router answers it
        ("GET", "/v1/secret/data/a\nb"),  # the router's pattern never matches a line feed
        ("POST", "/v1/secret/data/a\n"),
        ("GET", "/v1/secret/data"),
        ("GET", "/v1/secret/config"),
        ("GET", "/v1/secret/metadata"),
        ("GET", "/v1/secret/destroy/a"),  # a method the route does not serve: 405 with Allow
        ("HEAD", "/v1/secret/data/a"),  # HEAD on /v1: 405 with Allow, by the router
        ("GET", "/v1/kv/data/a"),  # another mount: the mount dispatcher
        ("GET", "/v1/sys/health"),
        ("GET", "/api/vault/secrets/a"),
        ("GET", "/"),
        ("GET", ""),
    ],
)
def test_everything_else_is_left_to_the_router(method: str, path: str) -> None:
    assert _match(method, path) == (None, None)


def test_only_async_catch_all_routes_with_literal_prefixes_are_taken() -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    def sync_endpoint(request: Request) -> Response:
        return Response()

    routes = DirectRoutes(
        [
            Route("/a/{path:path}", endpoint, name="a"),
            Route("/b/{x}/{path:path}", endpoint, name="b"),
            Route("/c/{path:path}", sync_endpoint, name="c"),
            Route("/d/exact", endpoint, name="d"),
        ]
    )
    assert routes.match({"method": "GET", "path": "/a/x"}) is not None
    for path in ("/b/1/x", "/c/x", "/d/exact"):
        assert routes.match({"method": "GET", "path": path}) is None
    with pytest.raises(ValueError, match="one prefix depth"):
        DirectRoutes([Route("/a/{path:path}", endpoint), Route("/x/y/{path:path}", endpoint)])
