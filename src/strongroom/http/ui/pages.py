"""The console's secret pages: dashboard, browser, secret page, reveal, create, edit, rollback,
delete. Every access decision is the core's `Authorizer` (through `ServerState.require` and
`list_filter`); nothing here decides access itself.

Must never: put a secret value into HTML (Reveal fetches it as JSON, audited as a read), a URL or a
log line.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.http.api_vault import check_creatable
from strongroom.http.errors import json_response
from strongroom.http.ui.web import HEADERS, Page, form_of, url_path
from strongroom.models import SecretInfo, validate_path, validate_prefix

__all__ = ["ALPHABETS", "PAGE_SIZE", "Entry", "folder_entries"]

PAGE_SIZE = 100
ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "symbols": string.ascii_letters + string.digits + "!#$%&*+-=?@^_~",
    "hex": "0123456789abcdef",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a folder listing: a sub-folder (with how many secrets it holds) or a secret."""

    name: str
    folder: bool
    count: int = 0
    info: SecretInfo | None = None


def folder_entries(prefix: str, paths: Iterable[str]) -> list[Entry]:
    """The folders and secrets directly in `prefix` (folders first, each sorted by name),
    from the paths under it; a secret's `info` is left for the page that shows it."""
    folders: dict[str, int] = {}
    leaves: list[Entry] = []
    for path in paths:
        rest = path[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if slash:
            folders[head] = folders.get(head, 0) + 1
        else:
            leaves.append(Entry(rest, False))
    return [Entry(k, True, v) for k, v in sorted(folders.items())] + leaves


def _page_count(entries: list[Entry]) -> int:
    return max(1, -(-len(entries) // PAGE_SIZE))


async def _form(page: Page) -> dict[str, str]:
    form: dict[str, str] | None = getattr(page.request.state, "form", None)
    return form if form is not None else await form_of(page.request)


async def _visible(page: Page, prefix: str) -> list[SecretInfo]:
    """The secrets under `prefix` that the caller may see listed (one audited list: every
    path is read, but rows only for the visible ones)."""
    caller = page.who()
    visible = await page.st.list_filter(caller, prefix)
    _, found = await page.st.run(
        page.st.vault.secrets.list_paths,
        prefix,
        lambda paths: [p for p in paths if visible(p)],
        within=visible.prefixes,
        actor=caller.actor,
    )
    return found


async def dashboard(page: Page) -> Response:
    """Lock state, counts, expiring secrets, audit verification and recent activity."""
    st, caller = page.st, page.who()
    status = await st.run(st.vault.status)
    if status.locked:
        return page.render("locked.html", 423)
    now = datetime.now(UTC)
    allowed: set[str] = set()
    if page.is_admin:
        # Administrators see everything: count in SQL instead of listing every secret.
        count, soon = await st.run(st.vault.secrets.overview, timedelta(days=30))
        # The list stops at 100; the counts are the database's.
        expiring = [
            await st.run(st.vault.secrets.count_expiring, timedelta(days=days)) for days in (7, 30)
        ]
    else:
        found = await _visible(page, "")
        count = len(found)
        allowed = {i.path for i in found}  # only paths the caller may list
        soon = [i for i in found if i.expires_at and now < i.expires_at <= now + timedelta(days=30)]
        soon.sort(key=lambda i: i.expires_at or now)
        week = [i for i in soon if i.expires_at and i.expires_at <= now + timedelta(days=7)]
        expiring = [len(week), len(soon)]
    if page.is_admin:
        recent = await st.run(st.vault.audit_logs, limit=10)
    else:
        own = await st.run(st.vault.audit_logs, user_id=caller.principal.user_id, limit=50)
        recent = [e for e in own if e.path is None or e.path in allowed][:10]
    last = st.vault.state.last_access
    remaining = None
    if st.settings.auto_lock and last is not None:
        left = st.settings.auto_lock_timeout - (now - last)
        remaining = max(0, int(left.total_seconds()))
    return page.render(
        "dashboard.html",
        status=status,
        count=count,
        expiring=expiring,
        month=soon,
        recent=recent,
        remaining=remaining,
        verify=page.web.last_verify,
    )


async def browse(page: Page) -> Response:
    """One folder: sub-folders and secrets, a name filter, and paging."""
    q = page.request.query_params
    prefix = validate_prefix(q.get("prefix", ""))
    if prefix:
        if not prefix.endswith("/"):
            raise errors.InvalidInput("a folder ends with '/'")
        validate_path(prefix[:-1])
    name_filter = validate_prefix(q.get("filter", ""))
    if "/" in name_filter:
        raise errors.InvalidInput("the filter matches names in this folder: no '/'")
    try:
        number = max(1, int(q.get("page", "1")))
    except ValueError as exc:
        raise errors.InvalidInput("page must be a number") from exc
    caller = page.who()
    visible = await page.st.list_filter(caller, prefix + name_filter)
    grouped: list[list[Entry]] = []

    def page_of(paths: list[str]) -> list[str]:
        # Runs in the listing's transaction: group every path, but load rows for one page.
        entries = folder_entries(prefix, [p for p in paths if visible(p)])
        grouped.append(entries)
        start = (min(number, _page_count(entries)) - 1) * PAGE_SIZE
        return [prefix + e.name for e in entries[start : start + PAGE_SIZE] if not e.folder]

    _, infos = await page.st.run(
        page.st.vault.secrets.list_paths,
        prefix + name_filter,
        page_of,
        within=visible.prefixes,
        actor=caller.actor,
    )
    entries = grouped[0]
    pages = _page_count(entries)
    number = min(number, pages)
    by_path = {i.path: i for i in infos}
    shown = [
        e if e.folder else replace(e, info=by_path[prefix + e.name])
        for e in entries[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        if e.folder or prefix + e.name in by_path
    ]
    crumbs = []
    walked = ""
    for part in prefix.split("/")[:-1]:
        walked += part + "/"
        crumbs.append((part, walked))
    return page.render(
        "browse.html",
        prefix=prefix,
        crumbs=crumbs,
        name_filter=name_filter,
        entries=shown,
        total=len(entries),
        number=number,
        pages=pages,
        can_create=page.is_admin or await page.allows("create", prefix + "x"),
    )


async def _info(page: Page, path: str) -> SecretInfo:
    caller = page.who()
    _, found = await page.st.run(
        page.st.vault.secrets.list_paths, path, lambda _: [path], actor=caller.actor
    )
    if not found:
        raise errors.SecretNotFound(f"no secret at {path}")
    return found[0]


async def secret(
    page: Page, *, error: errors.StrongroomError | None = None, meta_text: str | None = None
) -> Response:
    """A secret's metadata, versions and audit trail; its value stays masked until Reveal.
    (`error` and `meta_text`: a refused metadata form, shown again with its reason.)"""
    caller = page.who()
    path = validate_path(page.request.path_params["path"])
    await page.st.require(caller, "read", "versions", path)
    info = await _info(page, path)
    if meta_text is None:
        meta_text = "".join(f"{k}={v}\n" for k, v in sorted(info.custom_metadata.items()))
    versions = await page.st.run(page.st.vault.list_versions, path, actor=caller.actor)
    trail = None
    if await page.allows("audit", path):
        trail = await page.st.run(page.st.vault.audit_logs, path=path, limit=50)
    done = page.request.query_params.get("done") == "metadata"
    return page.render(
        "secret.html",
        400 if error is not None else 200,
        error=error,
        done="Metadata saved." if done else None,
        meta_text=meta_text,
        info=info,
        versions=versions,
        trail=trail,
        can_update=await page.allows("update", path),
        can_delete=await page.allows("delete", path),
    )


def parse_custom_metadata(text: str) -> dict[str, str]:
    """`key=value` lines (blank lines ignored) as a custom-metadata map; the core checks the
    limits (`kv_types.coerce_custom_metadata`).

    Raises:
        InvalidInput: a line without `=`, an empty key, or a key given twice.
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise errors.InvalidInput(f"metadata line {number}: expected key=value")
        if key in found:
            raise errors.InvalidInput(f"metadata line {number}: {key} is given twice")
        found[key] = value.strip()
    return found


async def metadata(page: Page) -> Response:
    """Save a secret's KV v2 custom metadata and max versions (`update` on the path, as a
    metadata write through `/v1`); a bad form shows the secret page again with the reason."""
    caller = page.who()
    path = validate_path(page.request.path_params["path"])
    await page.st.require(caller, "update", "write_metadata", path)
    form = await _form(page)
    text = form.get("custom_metadata", "")
    try:
        custom = parse_custom_metadata(text)
        await page.st.run(
            page.st.vault.kv.metadata.write,
            path,
            max_versions=form.get("max_versions", "").strip() or "0",
            custom_metadata=custom,
            actor=caller.actor,
        )
    except errors.InvalidInput as exc:
        return await secret(page, error=exc, meta_text=text)
    return page.redirect(f"/ui/secret/{url_path(path)}?done=metadata")


async def reveal(page: Page) -> Response:
    """The value of a secret (or one version) as JSON, audited as a read; never cached."""
    caller = page.who()
    form = await _form(page)
    path = validate_path(form.get("path", ""))
    await page.st.require(caller, "read", "read", path)
    vault = page.st.vault
    raw = form.get("version", "")
    if raw:
        if not raw.isdigit():
            raise errors.InvalidInput("version must be a number")
        value = await page.st.run(vault.get_secret_version, path, int(raw), actor=caller.actor)
    else:
        value = await page.st.run(vault.get_secret, path, actor=caller.actor)
    return json_response({"path": path, "value": value}, headers=HEADERS)


def _generated(form: dict[str, str]) -> str:
    alphabet = ALPHABETS.get(form.get("alphabet", "alnum"))
    if alphabet is None:
        raise errors.InvalidInput("unknown alphabet")
    raw = form.get("length", "32")
    if not raw.isdigit() or not 8 <= int(raw) <= 256:
        raise errors.InvalidInput("length must be from 8 to 256")
    return "".join(secrets.choice(alphabet) for _ in range(int(raw)))


async def create(page: Page) -> Response:
    """The Create form (GET) and its submission (POST): a value typed or generated."""
    caller = page.who()
    if page.request.method == "GET":
        folder = page.request.query_params.get("prefix", "")
        return page.render("create.html", folder=folder, form={}, error=None)
    form = await _form(page)
    try:
        path = check_creatable(form.get("path", "").strip())
        value = _generated(form) if form.get("generate") else form.get("value", "")
        if not value:
            raise errors.InvalidInput("enter a value or choose generate")
        ttl = form.get("ttl", "").strip()
        expires_in = parse_duration(ttl) if ttl else None
        await page.st.require(caller, "create", "create", path)
        await page.st.run(
            page.st.vault.create_secret,
            path,
            value,
            description=form.get("description") or None,
            expires_in=expires_in,
            actor=caller.actor,
        )
    except (errors.InvalidInput, errors.Conflict, errors.PayloadTooLarge) as exc:
        kept = {k: v for k, v in form.items() if k != "value"}
        return page.render("create.html", exc.http_status, folder="", form=kept, error=exc)
    return page.redirect(f"/ui/secret/{url_path(path)}")


async def edit(page: Page) -> Response:
    """Edit (GET form, POST a new version)."""
    caller = page.who()
    path = validate_path(page.request.path_params["path"])
    await page.st.require(caller, "update", "update", path)
    if page.request.method == "GET":
        return page.render("edit.html", path=path)
    form = await _form(page)
    value = _generated(form) if form.get("generate") else form.get("value", "")
    if not value:
        raise errors.InvalidInput("enter a value or choose generate")
    await page.st.run(page.st.vault.update_secret, path, value, actor=caller.actor)
    return page.redirect(f"/ui/secret/{url_path(path)}")


async def rollback(page: Page) -> Response:
    """Roll back to a version: a confirmation page (GET), then the rollback (POST)."""
    caller = page.who()
    path = validate_path(page.request.path_params["path"])
    await page.st.require(caller, "update", "rollback", path)
    source = page.request.query_params if page.request.method == "GET" else await _form(page)
    raw = source.get("version", "")
    if not raw.isdigit():
        raise errors.InvalidInput("version must be a number")
    if page.request.method == "GET":
        return page.render("confirm.html", action="rollback", path=path, version=int(raw))
    await page.st.run(page.st.vault.rollback_secret, path, int(raw), actor=caller.actor)
    return page.redirect(f"/ui/secret/{url_path(path)}")


async def delete(page: Page) -> Response:
    """Delete: a confirmation page naming the path (GET), then the delete (POST)."""
    caller = page.who()
    path = validate_path(page.request.path_params["path"])
    await page.st.require(caller, "delete", "delete", path)
    if page.request.method == "GET":
        return page.render("confirm.html", action="delete", path=path, version=None)
    await page.st.run(page.st.vault.delete_secret, path, actor=caller.actor)
    folder = path.rpartition("/")[0]
    return page.redirect(f"/ui/secrets?prefix={url_path(folder + '/' if folder else '')}")
