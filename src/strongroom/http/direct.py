"""The routes that carry most traffic, dispatched without Starlette's router.

A KV v2 read or write at `secret/` (`/v1/secret/data/...`, `/v1/secret/metadata/...` and the
other `{path:path}` routes of `api_kv2.KV2_ROUTES`) is found by its prefix in a dict, and the
server's front layer (`app.Front`) calls its endpoint directly, outside Starlette, its errors
answered by the same handler (`http.errors`): the router's route-by-route matching and
Starlette's middleware cost about a tenth of a read (docs/decisions.md, "Speed, round two" and
"round three"). What the router would answer differently is left to it: a method the route does
not serve (405 with `Allow`), an empty path, any other URL.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from starlette.routing import Route
from starlette.types import Scope

__all__ = ["DirectRoutes"]

_CATCH_ALL = "{path:path}"


class DirectRoutes:
    """`{path:path}` routes with a literal prefix, matched by that prefix."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._by_prefix = {
            prefix: route
            for route in routes
            if (prefix := route.path.removesuffix(_CATCH_ALL)) != route.path
            and prefix.endswith("/")
            and "{" not in prefix
            and inspect.iscoroutinefunction(route.endpoint)
        }
        # Every prefix has the same number of slashes (`/v1/secret/data/`): the one before the
        # last ends the part to look up.
        depths = {prefix.count("/") for prefix in self._by_prefix}
        if len(depths) > 1:
            raise ValueError("direct routes must share one prefix depth")
        self._depth = depths.pop() if depths else 0

    def match(self, scope: Scope) -> Route | None:
        """The route serving this request (its path parameters set in `scope`), or None for
        the router to decide."""
        if not self._by_prefix:
            return None
        path: str = scope["path"]
        end = -1
        for _ in range(self._depth):
            end = path.find("/", end + 1)
            if end < 0:
                return None
        route = self._by_prefix.get(path[: end + 1])
        rest = path[end + 1 :]
        if route is None or not rest or scope["method"] not in (route.methods or ()):
            return None
        if "\n" in rest:
            # The router's pattern (`.*$`) never matches a line feed inside the path and drops
            # one at its end: it keeps deciding such paths.
            return None
        scope["path_params"] = {"path": rest}
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        return route
