"""The web console at `/ui/` (server-rendered Jinja2, a little JavaScript of our own) and the
static assets of `/docs` (Swagger UI, vendored: no CDN).

`routes()` is all `http.app` needs: the console's routes, or with `enabled=False` only `/docs`'s
assets. See docs/ui.md.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from strongroom.http.ui import admin, auth, manage, pages
from strongroom.http.ui.web import Web

__all__ = ["STATIC", "routes"]

STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".txt": "text/plain"}


def _static(prefix: str, folder: Path) -> Route:
    """Serve the files of `folder` (read once; nothing else is reachable)."""
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    cache: dict[str, bytes] = {}

    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        path = files.get(name)
        if path is None:
            return Response("not found", 404, media_type="text/plain")
        if name not in cache:
            cache[name] = path.read_bytes()
        media = _TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "text/plain"
        headers = {"x-content-type-options": "nosniff", "cache-control": "public, max-age=3600"}
        return Response(cache[name], media_type=media, headers=headers)

    return Route(prefix + "/{name}", endpoint, methods=["GET"], include_in_schema=False)


def routes(*, enabled: bool = True) -> list[BaseRoute]:
    """The console's routes under `/ui` (when `enabled`), and `/docs`'s vendored assets."""
    found: list[BaseRoute] = [_static("/docs/static", STATIC / "swagger")]
    if not enabled:
        return found
    web = Web()
    get, post, both = ["GET"], ["POST"], ["GET", "POST"]

    async def to_ui(request: Request) -> Response:
        return RedirectResponse("/ui/", 307)

    table: list[tuple[str, object, list[str]]] = [
        ("/ui/", web.wrap(pages.dashboard), get),
        ("/ui/secrets", web.wrap(pages.browse), get),
        ("/ui/secret/{path:path}", web.wrap(pages.secret), get),
        ("/ui/reveal", web.wrap(pages.reveal), post),
        ("/ui/metadata/{path:path}", web.wrap(pages.metadata), post),
        ("/ui/new", web.wrap(pages.create), both),
        ("/ui/edit/{path:path}", web.wrap(pages.edit), both),
        ("/ui/rollback/{path:path}", web.wrap(pages.rollback), both),
        ("/ui/delete/{path:path}", web.wrap(pages.delete), both),
        ("/ui/login", auth.login_endpoint(web), both),
        ("/ui/logout", web.wrap(auth.logout), post),
        ("/ui/unlock", web.wrap(auth.unlock), both),
        ("/ui/audit", web.wrap(admin.audit), get),
        ("/ui/audit/export", web.wrap(admin.audit_export), get),
        ("/ui/audit/verify", web.wrap(admin.audit_verify), post),
        ("/ui/admin/users", web.wrap(manage.users), both),
        ("/ui/admin/users/{username}", web.wrap(manage.user), both),
        ("/ui/admin/users/{username}/delete", web.wrap(manage.user_delete), get),
        ("/ui/admin/tokens", web.wrap(manage.tokens), both),
        ("/ui/admin/policies", web.wrap(manage.policies), both),
        ("/ui/admin/policies/{name}/delete", web.wrap(manage.policy_delete), get),
    ]
    found.append(Route("/ui", to_ui, include_in_schema=False))
    found.append(_static("/ui/static", STATIC))
    found += [Route(p, e, methods=m, include_in_schema=False) for p, e, m in table]  # type: ignore[arg-type]
    return found
