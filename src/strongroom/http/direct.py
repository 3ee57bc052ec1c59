"""The routes that carry most traffic, dispatched without Starlette's router.

A KV v2 read or write at `secret/` (`/v1/secret/data/...`, `/v1/secret/metadata/...` and the
other `{path:path}` routes of `api_kv2.KV2_ROUTES`) is found by its prefix in a dict, and the
server's front layer (`app.Front`) calls its endpoint directly, outside Starlette, its errors
answered by the same handler (`http.errors`): the router's route-by-route matching and
Starlette's middleware cost about a tenth of a read (docs/decisions.md, "Speed, round two" and
"round three"). What the router would answer differently is left to it: a method the route does
not serve (405 with `Allow`), an empty path, any other URL.

A request for any other mount (`/v1/team/data/...`) is the `/v1/{rest:path}` dispatcher's
(`fallback`) when the segment after `/v1/` starts no other route: the router would have tried
every route first, about a hundred failed matches, a fifth of such a read ("round four").
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

__all__ = ["DirectRoutes"]

_CATCH_ALL = "{path:path}"


class DirectRoutes:
    """`{path:path}` routes with a literal prefix, matched by that prefix."""

    def __init__(
        self,
        routes: Sequence[Route],
        fallback: Route | None = None,
        everything: Sequence[BaseRoute] = (),
    ) -> None:
        """`routes`: the catch-all routes taken by prefix. `fallback`: a catch-all such as
        `/v1/{rest:path}`, taken for a path under its prefix whose first segment there no
        route of `everything` (the app's routes, in the router's order) could match; None
        (no fallback) when one could match any such segment."""
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
        self._fallback = None if fallback is None else _Fallback.of(fallback, everything)

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
                break
        route = self._by_prefix.get(path[: end + 1]) if end >= 0 else None
        if route is None:
            return None if self._fallback is None else self._fallback.match(scope, path)
        return _take(scope, route, "path", path[end + 1 :])


def _take(scope: Scope, route: Route, param: str, rest: str) -> Route | None:
    """`route` with `rest` as its catch-all parameter, or None when the router must decide."""
    if not rest or scope["method"] not in (route.methods or ()):
        return None
    if "\n" in rest:
        # The router's pattern (`.*$`) never matches a line feed inside the path and drops
        # one at its end: it keeps deciding such paths.
        return None
    scope["path_params"] = {param: rest}
    scope["route"] = route
    scope["endpoint"] = route.endpoint
    return route


class _Fallback:
    """A catch-all route taken for the first path segments that no other route starts."""

    def __init__(self, route: Route, prefix: str, param: str, taken: frozenset[str]) -> None:
        self.route, self.prefix, self.param, self.taken = route, prefix, param, taken

    @classmethod
    def of(cls, route: Route, everything: Sequence[BaseRoute]) -> _Fallback | None:
        prefix, brace, param = route.path.partition("{")
        if not brace or not param.endswith(":path}") or not prefix.endswith("/"):
            raise ValueError("a fallback is a `<prefix>/{name:path}` route")
        if not inspect.iscoroutinefunction(route.endpoint):
            raise ValueError("a fallback's endpoint must be a coroutine function")
        taken: set[str] = set()
        for other in everything:
            if other is route:
                continue
            if isinstance(other, Mount):
                template = other.path + "/{path:path}"  # (what it serves)
            elif isinstance(other, Route):
                template = other.path
            else:
                return None  # a kind of route this class cannot reason about
            literal = template.split("{", 1)[0]
            if literal.startswith(prefix):
                first, slash, _ = literal[len(prefix) :].partition("/")
                if not slash and "{" in template:
                    return None  # a parameter inside the first segment
                taken.add(first)  # ("" when the segment is a parameter: never a fallback)
            elif prefix.startswith(literal) and "{" in template:
                return None  # a parameter before the prefix could match anything under it
        if "" in taken:
            return None
        return cls(route, prefix, param.removesuffix(":path}"), frozenset(taken))

    def match(self, scope: Scope, path: str) -> Route | None:
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix) :]
        if rest.partition("/")[0] in self.taken:
            return None
        return _take(scope, self.route, self.param, rest)
