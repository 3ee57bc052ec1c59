"""The text formats of an audit export: JSON lines and CSV, encoded a batch at a time.

Shared by `vaultctl audit export` and `GET /api/vault/audit/export`, so both print the same bytes.
Rows are `AuditLog.export` rows: an entry's fields and its chain MAC, never a value.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

from strongroom import errors

#: The columns of an exported audit row, in order (JSON keys and the CSV header).
EXPORT_FIELDS = (
    "id",
    "timestamp",
    "secret_id",
    "path",
    "user_id",
    "action",
    "ip_address",
    "success",
    "error",
    "request_id",
    "mac",
)

__all__ = ["EXPORT_FIELDS", "EXPORT_FORMATS", "check_format", "encode_batch", "header"]

#: The export formats: JSON lines (one object a line) and CSV (a header line first).
EXPORT_FORMATS = ("jsonl", "csv")


def check_format(fmt: str) -> str:
    """Return `fmt` if it is an export format.

    Raises:
        InvalidInput: it is not one of `EXPORT_FORMATS`.
    """
    if fmt not in EXPORT_FORMATS:
        raise errors.InvalidInput(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    return fmt


def header(fmt: str) -> str:
    """What the export starts with: the CSV header line, nothing for JSON lines."""
    return ",".join(EXPORT_FIELDS) + "\r\n" if fmt == "csv" else ""


def encode_batch(rows: Sequence[Mapping[str, object]], fmt: str) -> str:
    """One batch of rows as text, each row ending with a line break."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows:
            writer.writerow(["" if row[k] is None else row[k] for k in EXPORT_FIELDS])
        return out.getvalue()
    return "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
