"""The console's audit pages: the audit log (filters, paging, CSV/JSON download,
verification); users, tokens and policies are in `manage`. Each handler asks the core's
Authorizer (`ServerState.require_admin`) first; refusals are audited there.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime

from starlette.responses import Response

from strongroom import errors
from strongroom.http.ui.web import HEADERS, Page, form_of
from strongroom.models import AuditEntry

__all__ = ["audit", "audit_export", "audit_verify"]

AUDIT_PAGE = 100
_FIELDS = (
    "id",
    "timestamp",
    "path",
    "user_id",
    "action",
    "success",
    "ip_address",
    "error",
    "request_id",
)


async def _entries(page: Page, limit: int) -> tuple[dict[str, str], list[AuditEntry]]:
    caller = page.who()
    await page.st.require_admin(caller, "audit")
    q = page.request.query_params
    filters = {k: q.get(k, "").strip() for k in ("path", "user", "action", "since", "success")}
    since = None
    if filters["since"]:
        try:
            since = datetime.fromisoformat(filters["since"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise errors.InvalidInput("since must be a date or an ISO-8601 time") from exc
        if since.tzinfo is None:
            since = since.replace(tzinfo=datetime.now().astimezone().tzinfo).astimezone()
    user = filters["user"]
    if user and not user.isdigit():
        raise errors.InvalidInput("user must be a user id (a number)")
    if filters["success"] not in ("", "yes", "no"):
        raise errors.InvalidInput("success must be yes or no")
    found = await page.st.run(
        page.st.vault.audit_logs,
        path=filters["path"] or None,
        user_id=int(user) if user else None,
        action=filters["action"] or None,
        since=since,
        limit=limit,
    )
    if filters["success"]:
        wanted = filters["success"] == "yes"
        found = [e for e in found if e.success is wanted]
    return filters, found


async def audit(page: Page) -> Response:
    """The audit log, newest first, with filters and "older" paging."""
    raw = page.request.query_params.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) <= 100 else 1
    filters, found = await _entries(page, AUDIT_PAGE * number + 1)
    more = len(found) > AUDIT_PAGE * number
    shown = found[(number - 1) * AUDIT_PAGE : number * AUDIT_PAGE]
    return page.render(
        "audit.html",
        filters=filters,
        entries=shown,
        number=number,
        more=more,
        verify=page.web.last_verify,
    )


async def audit_export(page: Page) -> Response:
    """The filtered audit log as a CSV or JSON download (at most 10,000 entries)."""
    fmt = page.request.query_params.get("format", "json")
    if fmt not in ("csv", "json"):
        raise errors.InvalidInput("format must be csv or json")
    _, found = await _entries(page, 10_000)
    rows = [e.as_dict() for e in found]
    headers = {**HEADERS, "content-disposition": f'attachment; filename="audit.{fmt}"'}
    if fmt == "json":
        return Response(json.dumps(rows, indent=1), headers=headers, media_type="application/json")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: quote it.
        writer.writerow({k: _cell(row.get(k)) for k in _FIELDS})
    return Response(out.getvalue(), headers=headers, media_type="text/csv")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


async def audit_verify(page: Page) -> Response:
    """Verify the audit hash chain now; the result shows on the dashboard and audit page."""
    caller = page.who()
    await page.st.require_admin(caller, "audit_verify")
    result = await page.st.run(page.st.vault.verify_audit)
    page.web.last_verify = (time.time(), result)
    form = getattr(page.request.state, "form", None) or await form_of(page.request)
    back = form.get("back", "/ui/audit")
    return page.redirect(back if back in ("/ui/", "/ui/audit") else "/ui/audit")
