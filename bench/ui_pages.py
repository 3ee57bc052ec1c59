"""Server time of the web console's heaviest pages (issue #13), in process.

    .venv/bin/python bench/ui_pages.py [--folder 1000] [--dashboard 100000] [--repeat 20]

Fills a SQLite vault with a folder of `--folder` secrets and `--dashboard` secrets in all, then
times GET /ui/secrets?prefix=<folder> and GET /ui/ through the ASGI app (Starlette's TestClient:
no network, so the figure is the server's time). Targets: folder of 1,000 <= 50 ms, dashboard on
100,000 <= 100 ms (p50). Filling 100,000 secrets takes minutes: each is one audited transaction.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from strongroom import VaultConfig, open_vault
from strongroom.config import Secret, Settings
from strongroom.http.app import create_app

KEY = "bench-master-key-0123456789"
JWT = "bench-jwt-secret-that-is-long-enough-0123"


def _fill(dsn: str, folder: int, total: int) -> None:
    vault = open_vault(dsn, VaultConfig(argon2_time_cost=1, argon2_memory_kib=1024))
    vault.unlock(KEY)
    for i in range(folder):
        vault.create_secret(f"bench/folder/s{i:06d}", "v")
    for i in range(max(0, total - folder)):
        vault.create_secret(f"bulk/{i % 100:02d}/s{i:07d}", "v")
    vault.close()


def _time(client: TestClient, url: str, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:200]
    return statistics.median(samples) * 1000, max(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=int, default=1000)
    parser.add_argument("--dashboard", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = f"sqlite:///{Path(tmp) / 'vault.db'}"
        started = time.perf_counter()
        _fill(dsn, args.folder, args.dashboard)
        print(f"filled {args.dashboard} secrets in {time.perf_counter() - started:.0f} s")
        settings = Settings(
            db_dsn=dsn,
            master_key=Secret(KEY),
            jwt_secret=Secret(JWT),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
        )
        from strongroom.core.tokens import JWTAuth

        token = JWTAuth(JWT).issue(1, "SuperAdmin")[0]
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            pre = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
            assert pre is not None
            client.post("/ui/login", data={"csrf": pre.group(1), "token": token})
            p50, worst = _time(client, "/ui/secrets?prefix=bench/folder/", args.repeat)
            print(f"folder of {args.folder}: p50 {p50:.1f} ms, max {worst:.1f} ms (target 50)")
            p50, worst = _time(client, "/ui/", args.repeat)
            print(
                f"dashboard on {args.dashboard}: p50 {p50:.1f} ms, max {worst:.1f} ms (target 100)"
            )


if __name__ == "__main__":
    main()
