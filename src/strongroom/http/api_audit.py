"""`/api/vault/audit/...` beyond search and verify: the streamed export (Admins).

The export is a `StreamingResponse`: each batch of rows is read in the server's thread pool and
sent before the next is read, so memory stays flat however long the trail is and the event loop
never waits on the database. Rows never hold a value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from strongroom import errors
from strongroom.core.audit_export import check_format, encode_batch, header
from strongroom.core.audit_log import ExportRow
from strongroom.http.routing import Operation, Target
from strongroom.http.state import ServerState
from strongroom.models import AuditAnchor

__all__ = ["OPERATIONS", "anchor_params", "time_param"]

_MEDIA = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def time_param(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO-8601 query parameter (UTC when it has no offset), or None when absent.

    Raises:
        InvalidInput: the value is not an ISO-8601 time.
    """
    text = query.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # In UTC here, so a time that has none (9999-12-31T23:59-23:59) is a 400 now, not a
        # stream that dies after its 200 header.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise errors.InvalidInput(f"{name} must be an ISO-8601 time with a timezone") from exc


def anchor_params(query: Mapping[str, str]) -> AuditAnchor | None:
    """The `anchor_id` + `anchor_mac` of `GET /api/vault/audit/verify`, or None when absent.

    Raises:
        InvalidInput: only one of them, or an id that is not a positive integer.
    """
    ident, mac = query.get("anchor_id"), query.get("anchor_mac")
    if not ident and not mac:
        return None
    if not ident or not mac or not ident.isascii() or not ident.isdigit() or len(ident) > 18:
        raise errors.InvalidInput("anchor_id (a positive integer) and anchor_mac go together")
    return AuditAnchor(int(ident), mac)


async def audit_export(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "audit_export")
    q = request.query_params
    fmt = check_format(q.get("format") or "jsonl")
    since, until = time_param(q, "since"), time_param(q, "until")
    batches = await st.run(st.vault.audit.export_batches, since, until, actor=caller.actor)

    async def body() -> AsyncIterator[str]:
        first = header(fmt)
        if first:
            yield first
        it: Iterator[list[ExportRow]] = batches
        while True:
            batch = await st.run(next, it, None)
            if batch is None:
                return
            yield encode_batch(batch, fmt)

    name = f"audit.{fmt}"
    return StreamingResponse(
        body(),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


OPERATIONS = (
    Operation(
        "GET",
        "/api/vault/audit/export",
        audit_export,
        "Export the audit log, streamed, oldest first (?since=&until=&format=jsonl|csv)",
        "admin",
        query=("since", "until", "format"),
    ),
)
