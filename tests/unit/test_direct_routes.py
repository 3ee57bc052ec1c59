"""`http.direct.DirectRoutes`: which requests skip Starlette's router, and that every other
request is left to it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from strongroom.http import api_kv2
from strongroom.http.direct import DirectRoutes
from strongroom.http.routing import refuse_head

# As `create_app` does (it changes the shared route objects: done here too, so that the
# outcome does not depend on whether a test of this process built an app before).
refuse_head([*api_kv2.KV2_ROUTES, *api_kv2.OTHER_ROUTES], "/v1/", keep={"/v1/sys/health"})
DIRECT = DirectRoutes(api_kv2.KV2_ROUTES)
#: As the server builds it: the other mounts' dispatcher taken when no route starts the path.
APP_ROUTES = [*api_kv2.KV2_ROUTES, *api_kv2.OTHER_ROUTES]
WITH_MOUNTS = DirectRoutes(api_kv2.KV2_ROUTES, api_kv2.MOUNTS_ROUTE, APP_ROUTES)


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


@pytest.mark.parametrize(
    ("method", "path", "rest"),
    [
        ("GET", "/v1/team/data/a/b", "team/data/a/b"),
        ("POST", "/v1/team/data/a", "team/data/a"),
        ("LIST", "/v1/team/metadata/", "team/metadata/"),
        ("GET", "/v1/legacy/key", "legacy/key"),
        ("GET", "/v1/no-such-mount", "no-such-mount"),
        ("GET", "/v1/secretx/data/a", "secretx/data/a"),
    ],
)
def test_other_mounts_go_to_the_dispatcher(method: str, path: str, rest: str) -> None:
    scope: dict[str, Any] = {"method": method, "path": path}
    route = WITH_MOUNTS.match(scope)
    assert route is api_kv2.MOUNTS_ROUTE
    assert scope["path_params"] == {"rest": rest}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/sys/health"),  # a segment another route starts: the router decides
        ("GET", "/v1/sys/no-such-endpoint"),
        ("POST", "/v1/auth/token/create"),
        ("GET", "/v1/secret/config"),
        ("GET", "/v1/secret/data/"),
        ("HEAD", "/v1/team/data/a"),  # HEAD on /v1: 405 with Allow, by the router
        ("GET", "/v1/"),
        ("GET", "/v1/team/data/a\nb"),
        ("GET", "/api/vault/secrets/a"),
        ("GET", "/v2/team/data/a"),
    ],
)
def test_with_mounts_the_rest_is_still_left_to_the_router(method: str, path: str) -> None:
    scope: dict[str, Any] = {"method": method, "path": path}
    assert WITH_MOUNTS.match(scope) is None
    assert "path_params" not in scope
    # (what the hot routes take, they still take)
    assert WITH_MOUNTS.match({"method": "GET", "path": "/v1/secret/data/a"}) is not None


async def _endpoint(request: Request) -> Response:
    return Response()


FALLBACK = Route("/v1/{rest:path}", _endpoint, methods=["GET"])


@pytest.mark.parametrize(
    "earlier",
    [
        Route("/v1/{mount}/special", _endpoint),  # a parameter as the first segment
        Route("/v1/x{suffix}", _endpoint),  # a parameter inside it
        Route("/{anything:path}", _endpoint),  # a parameter before the prefix
        Mount("", routes=[]),  # a mount of everything
    ],
)
def test_no_fallback_when_another_route_could_match_any_segment(earlier: Any) -> None:
    routes = DirectRoutes(api_kv2.KV2_ROUTES, FALLBACK, [earlier, FALLBACK])
    assert routes.match({"method": "GET", "path": "/v1/team/data/a"}) is None


def test_fallback_segments_and_shape() -> None:
    routes = DirectRoutes(
        api_kv2.KV2_ROUTES,
        FALLBACK,
        [Route("/v1/exact", _endpoint), Mount("/v1/ui", routes=[]), Route("/api/{x}", _endpoint)],
    )
    assert routes.match({"method": "GET", "path": "/v1/exact/x"}) is None
    assert routes.match({"method": "GET", "path": "/v1/ui/x"}) is None
    assert routes.match({"method": "GET", "path": "/v1/other/x"}) is FALLBACK
    with pytest.raises(ValueError, match="fallback"):
        DirectRoutes(api_kv2.KV2_ROUTES, Route("/v1/{x}", _endpoint), [])
