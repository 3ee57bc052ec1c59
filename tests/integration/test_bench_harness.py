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
from typing import Any

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "vs_openbao.py"


def bench(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a bench script with this interpreter; its output captured, its status returned."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def need_wrk() -> None:
    """Skip without wrk, but fail under CI, where `.ci/run` installs it."""
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing under CI=true (.ci/run installs it)")
        pytest.skip("wrk is not installed (apt-get install wrk)")


def test_vs_openbao_one_short_scenario(tmp_path: Path) -> None:
    need_wrk()
    out, png = tmp_path / "result.json", tmp_path / "chart.png"
    done = bench(
        HARNESS,
        *("--scenario", "read-one", "--scenario", "read-mount", "--conc", "1"),
        *("--seconds", "1", "--repeats", "1"),
        *("--warmup", "0", "--json", str(out), "--chart", str(png)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| read one key | 1 |" in done.stdout
    assert "| read one key at another mount (team/) | 1 |" in done.stdout
    result = json.loads(out.read_text())
    assert result["meta"]["backend"] == "sqlite"
    rows = result["rows"]
    assert [(row["scenario"], row["conc"]) for row in rows] == [("read-one", 1), ("read-mount", 1)]
    for row in rows:
        assert math.isfinite(row["ratio"])
        for server in ("OpenBao", "Strongroom"):
            cell = row[server]
            assert cell["requests"] > 0 and cell["errors"] == 0, (server, cell)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_mb"):
                assert isinstance(cell[key], float) and math.isfinite(cell[key]), (server, key)
    assert png.read_bytes().startswith(b"\x89PNG")


LARGE = HARNESS.with_name("large_vault.py")


def test_large_vault_reads_a_small_and_a_large_folder(tmp_path: Path) -> None:
    """bench/large_vault.py with a small "large" folder: it fills, serves and measures both
    folders, and a second run reuses the filled database."""
    need_wrk()
    db, out = tmp_path / "vault.db", tmp_path / "large.json"
    args = [
        "--keys",
        "1500",
        "--db",
        str(db),
        "--json",
        str(out),
        "--seconds",
        "1",
        "--repeats",
        "1",
    ]
    first = bench(LARGE, *args, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "filling" in first.stdout and "| 1,500 keys |" in first.stdout
    result = json.loads(out.read_text())
    assert result["keys"] == 1500 and math.isfinite(result["ratio"])
    for cell in (result["small"], result["large"]):
        assert cell["requests"] > 0 and cell["errors"] == 0, cell
        for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_mb"):
            assert isinstance(cell[key], float) and math.isfinite(cell[key]), key
    again = bench(LARGE, *args, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "filling" not in again.stdout  # the filled database was reused


AB = HARNESS.with_name("ab_inprocess.py")


def test_ab_inprocess_alternates_two_checkouts(tmp_path: Path) -> None:
    """bench/ab_inprocess.py with this checkout against a copy of it: both children serve their
    batches (every answer a 200, or it fails) and the ratio comes out."""
    src = Path(__file__).resolve().parents[2] / "src"
    copy = tmp_path / "src"
    shutil.copytree(src / "strongroom", copy / "strongroom")
    done = bench(
        AB,
        str(copy),
        *("--path", "/v1/secret/data/bench/one", "--path", "/v1/team/data/bench/one"),
        *("--rounds", "2", "--batch", "20", "--conc", "4"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    medians = [line for line in done.stdout.splitlines() if "CPU per request median" in line]
    assert len(medians) == 2 and medians[0].startswith(str(copy)), done.stdout
    ratio = done.stdout.split("second / first, per round: median ")[1].split()[0]
    assert math.isfinite(float(ratio)) and float(ratio) > 0
    refused = bench(AB, str(src))
    assert refused.returncode == 2 and "two different src/ directories" in refused.stderr


LIST_SCALE = HARNESS.parent / "list_scale.py"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_list_scale_times_both_listings(backend: str, pg_ready: bool) -> None:
    """bench/list_scale.py on a small vault: it checks its folder lists in full and prints a
    time for each listing."""
    if backend == "postgresql" and not pg_ready:
        pytest.skip("PostgreSQL not reachable")
    done = bench(LIST_SCALE, "--others", "300", "--runs", "2", "--backend", backend)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{backend}, a folder of 1,000 keys among 300 other secrets" in done.stdout
    timings = [line.split()[-2:] for line in done.stdout.splitlines() if " ms" not in line][-2:]
    assert len(timings) == 2
    for p50, p90 in timings:
        assert 0 < float(p50) <= float(p90), done.stdout
    assert bench(LIST_SCALE, "--runs", "0").returncode == 2


CEILING = HARNESS.with_name("ceiling.py")


def ceiling_cell(
    tmp_path: Path, conc: int, servers: tuple[str, ...], *args: str
) -> tuple[str, dict[str, Any]]:
    """bench/ceiling.py for one short read-one cell: its output and its JSON, once every one of
    `servers` answered every read with a 2xx and its figures came out."""
    need_wrk()
    out = tmp_path / "ceiling.json"
    done = bench(
        CEILING,
        *("--scenario", "read-one", "--conc", str(conc), "--seconds", "1", "--repeats", "1"),
        *("--warmup", "0", "--json", str(out), *args),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    (row,) = result["rows"]
    assert (row["scenario"], row["conc"]) == ("read-one", conc)
    assert f"| read one key | {conc} |" in done.stdout
    for server in servers:
        cell = row[server]
        assert cell["requests"] > 0 and cell["errors"] == 0, (server, cell)
        for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
            assert isinstance(cell[key], float) and math.isfinite(cell[key]), (server, key)
    return done.stdout, result


def test_ceiling_serves_all_five_servers(tmp_path: Path) -> None:
    """OpenBao, our server and the three variants of the minimal audited-read app, pinned."""
    _, result = ceiling_cell(
        tmp_path,
        1,
        (
            "OpenBao",
            "Strongroom",
            *(f"Ceiling, commit {v}" for v in ("on loop", "in thread", "in thread, our HTTP")),
        ),
    )
    assert result["meta"]["where"] == "servers on CPU 0, wrk on CPU 1"


def test_ceiling_compares_one_worker_with_two(tmp_path: Path) -> None:
    """--workers 2: our server and the ceiling (commit in thread) with one worker and with
    two, unpinned, and the two scaling ratios."""
    stdout, result = ceiling_cell(
        tmp_path,
        4,
        (
            "OpenBao",
            "Strongroom",
            "Strongroom, 2 workers",
            "Ceiling, commit in thread",
            "Ceiling, commit in thread, 2 workers",
        ),
        *("--workers", "2"),
    )
    assert "| Strongroom, 2 workers / Strongroom |" in stdout
    assert "| Ceiling, commit in thread, 2 workers / Ceiling, commit in thread |" in stdout
    assert result["meta"]["where"] == "unpinned" and result["meta"]["workers"] == 2
