"""Smoke test of bench/vs_openbao.py: one short scenario against real OpenBao and our server, so
the harness cannot rot. It checks that numbers came out, never how big they are."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "vs_openbao.py"


def test_vs_openbao_one_short_scenario(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing under CI=true (.ci/run installs it)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    out, png = tmp_path / "result.json", tmp_path / "chart.png"
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            *("--scenario", "read-one", "--conc", "1", "--seconds", "1", "--repeats", "1"),
            *("--warmup", "0", "--json", str(out), "--chart", str(png)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| read one key | 1 |" in done.stdout
    result = json.loads(out.read_text())
    assert result["meta"]["backend"] == "sqlite"
    [row] = result["rows"]
    assert (row["scenario"], row["conc"]) == ("read-one", 1)
    assert math.isfinite(row["ratio"])
    for server in ("OpenBao", "Strongroom"):
        cell = row[server]
        assert cell["requests"] > 0 and cell["errors"] == 0, (server, cell)
        for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_mb"):
            assert isinstance(cell[key], float) and math.isfinite(cell[key]), (server, key)
    assert png.read_bytes().startswith(b"\x89PNG")
