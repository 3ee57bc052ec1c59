"""`vaultctl audit verify --anchor FILE`: the head an export wrote detects the deletion of the
newest entries, which the chain alone cannot see; locally on both backends and over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from strongroom.client import Client
from strongroom.models import AuditAnchor
from tests.core.dbutil import raw_sql
from tests.integration import server_proc
from tests.integration.cli_support import Vaultctl, one_error_line


def test_anchor_detects_deleted_newest_entries(dsn: str, tmp_path: Path) -> None:
    vc = Vaultctl(dsn, tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "one")
    out = tmp_path / "audit.jsonl"
    r = vc("audit", "export", "-o", str(out))
    assert r.code == 0 and "anchor written to" in r.err, r
    anchor_file = Path(f"{out}.anchor.json")
    anchor = json.loads(anchor_file.read_text())
    last = json.loads(out.read_text().splitlines()[-1])
    assert anchor == {"id": last["id"], "mac": last["mac"], "timestamp": last["timestamp"]}
    vc.ok("get", "--path", "a/b")  # the chain grows past the anchor: still fine
    r = vc("audit", "verify", "--anchor", str(anchor_file))
    assert r.code == 0 and r.out.startswith("chain intact"), r

    # An attacker with SQL access deletes the newest entries, the anchored one included.
    raw_sql(dsn, f"DELETE FROM vault_audit_logs WHERE id >= {int(anchor['id'])}")
    assert vc("audit", "verify").code == 0  # the chain alone cannot tell
    r = vc("audit", "verify", "--anchor", str(anchor_file))
    assert r.code == 1 and f"chain broken at entry {anchor['id']}" in r.out, r
    assert "newest entries were deleted" in r.out


def test_anchor_detects_a_changed_anchored_entry(tmp_path: Path) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "one")
    anchor_file = tmp_path / "head.json"
    vc.ok("audit", "export", "--anchor", str(anchor_file))
    forged = {**json.loads(anchor_file.read_text()), "mac": "0" * 64}
    anchor_file.write_text(json.dumps(forged))
    r = vc("audit", "verify", "--anchor", str(anchor_file))
    assert r.code == 1 and "differs from the anchor" in r.out, r


def test_bad_anchor_file_is_a_usage_error(tmp_path: Path) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vc.ok("create", "--path", "a/b", "--value", "one")
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    one_error_line(vc("audit", "verify", "--anchor", str(bad)), 2, "not an audit anchor")
    bad.write_text('{"id": -1, "mac": "x"}')
    one_error_line(vc("audit", "verify", "--anchor", str(bad)), 2, "positive integer")
    bad.write_text('{"id": 1, "mac": "\u00e9"}')
    one_error_line(vc("audit", "verify", "--anchor", str(bad)), 2, "64 hexadecimal digits")


def test_anchor_over_http(tmp_path: Path) -> None:
    server = server_proc.ServerProcess(tmp_path).start()
    try:
        client = Client(server.url, server_proc.token())
        rows = list(client.export_audit())
        anchor = AuditAnchor(int(str(rows[-1]["id"])), str(rows[-1]["mac"]))
        assert client.verify_audit(anchor).ok
        assert not client.verify_audit(AuditAnchor(anchor.id, "0" * 64)).ok
        with server.client() as http:
            bad = http.get("/api/vault/audit/verify", params={"anchor_id": "x", "anchor_mac": "y"})
            assert bad.status_code == 400 and "anchor_id" in bad.json()["error"]
            # Not hex (a 500 once: compare_digest refuses non-ASCII text), or out of range.
            for ident, mac in (("1", "\u00e9"), ("1", "g" * 64), ("9" * 40, "0" * 64)):
                params = {"anchor_id": ident, "anchor_mac": mac}
                bad = http.get("/api/vault/audit/verify", params=params)
                assert bad.status_code == 400, (params, bad.text)
            # A window whose bound has no UTC time is a 400 before any of the stream is sent.
            for since in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"):
                bad = http.get("/api/vault/audit/export", params={"since": since})
                assert bad.status_code == 400 and "since" in bad.json()["error"], bad.text
        client.close()
        remote = Vaultctl(
            server.dsn,
            tmp_path,
            key=None,
            extra_env={"VAULT_ADDR": server.url, "VAULT_TOKEN": server_proc.token()},
        )
        out = tmp_path / "remote.csv"
        r = remote("audit", "export", "--format", "csv", "-o", str(out))
        assert r.code == 0 and "anchor written to" in r.err, r
        assert out.read_text().startswith("id,timestamp,")
        r = remote("audit", "verify", "--anchor", f"{out}.anchor.json")
        assert r.code == 0 and r.out.startswith("chain intact"), r
    finally:
        server.stop()
