"""Server time of the web console's heaviest pages (issue #13), in process.

    .venv/bin/python bench/ui_pages.py [--folder 1000] [--dashboard 100000] [--repeat 20]
                                       [--created 5000]

Fills a SQLite vault with a folder of `--folder` secrets and `--dashboard` secrets in all, then
times GET /ui/secrets?prefix=<folder> and GET /ui/ through the ASGI app (Starlette's TestClient:
no network, so the figure is the server's time). Targets: folder of 1,000 <= 50 ms, dashboard on
100,000 <= 100 ms (p50).

Creating a secret is one audited transaction (about 2 ms), so only the folder and the first
`--created` secrets outside it are created through the vault (a tenth of them with a TTL of 1 to
60 days, so the dashboard has expiring secrets to show); the rest are copies of those rows made in
SQL (secret and version rows under new paths: the dashboard reads metadata only, never a value).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient

from strongroom import VaultConfig, open_vault
from strongroom.config import Secret, Settings
from strongroom.http.app import create_app

KEY = "bench-master-key-0123456789"
JWT = "bench-jwt-secret-that-is-long-enough-0123"


def _fill(dsn: str, folder: int, total: int, created: int) -> None:
    vault = open_vault(dsn, VaultConfig(argon2_time_cost=1, argon2_memory_kib=1024))
    vault.unlock(KEY)
    for i in range(folder):
        vault.create_secret(f"bench/folder/s{i:06d}", "v")
    bulk = max(0, total - folder)
    for i in range(min(bulk, created)):
        ttl = timedelta(days=1 + i % 60) if i % 10 == 0 else None
        vault.create_secret(f"bulk/{i % 100:02d}/s{i:07d}", "v", expires_in=ttl)
    vault.access.write_policy("folder", "bench/folder/*: read, list\n")
    vault.close()
    _copy_rows(dsn.removeprefix("sqlite:///"), bulk - min(bulk, created))


def _copy_rows(file: str, count: int) -> None:
    """`count` more secrets, copies of the `bulk/` ones under `copyN/` paths (SQL, no audit)."""
    with sqlite3.connect(file) as db:
        originals = db.execute("SELECT count(*) FROM vault_secrets WHERE path LIKE 'bulk/%'")
        per_round = originals.fetchone()[0]
        for n in range(-(-count // per_round) if per_round else 0):
            take = min(per_round, count - n * per_round)
            db.execute(
                "INSERT INTO vault_secrets (path, description, created_by, created_at,"
                " updated_at, version, expires_at, metadata, max_versions, cas_required,"
                " delete_version_after) SELECT ? || path, description, created_by, created_at,"
                " updated_at, version, expires_at, metadata, max_versions, cas_required,"
                " delete_version_after FROM vault_secrets WHERE path LIKE 'bulk/%'"
                " ORDER BY id LIMIT ?",
                (f"copy{n}/", take),
            )
            db.execute(
                "INSERT INTO vault_secret_versions (secret_id, version, value, key_term,"
                " updated_by, updated_at, deleted_at, destroyed) SELECT c.id, v.version,"
                " v.value, v.key_term, v.updated_by, v.updated_at, v.deleted_at, v.destroyed"
                " FROM vault_secrets c JOIN vault_secrets o ON o.path = substr(c.path, ?)"
                " JOIN vault_secret_versions v ON v.secret_id = o.id WHERE c.path LIKE ?",
                (len(f"copy{n}/") + 1, f"copy{n}/%"),
            )


def _time(client: TestClient, url: str, repeat: int) -> str:
    """p50 and worst wall time, and the process's CPU time per page (all threads: the figure
    that holds on a busy machine), in ms."""
    samples = []
    cpu = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:200]
    cpu_ms = (time.process_time() - cpu) / repeat * 1000
    p50, worst = statistics.median(samples) * 1000, max(samples) * 1000
    return f"p50 {p50:.1f} ms, max {worst:.1f} ms, CPU {cpu_ms:.1f} ms/page"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=int, default=1000)
    parser.add_argument("--dashboard", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--created", type=int, default=5000, help="created, not copied")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = f"sqlite:///{Path(tmp) / 'vault.db'}"
        started = time.perf_counter()
        _fill(dsn, args.folder, args.dashboard, args.created)
        print(f"filled {args.dashboard} secrets in {time.perf_counter() - started:.0f} s")
        settings = Settings(
            db_dsn=dsn,
            master_key=Secret(KEY),
            jwt_secret=Secret(JWT),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
        )
        from strongroom.core.tokens import JWTAuth

        auth = JWTAuth(JWT)
        admin = auth.issue(1, "SuperAdmin")[0]
        # A policy-limited user (the folder only) sees a dashboard of what it may list.
        limited = auth.issue(2, "Reader", policies=["folder"])[0]
        app = create_app(settings)
        for who, token in (("administrator", admin), ("policy-limited user", limited)):
            with TestClient(app, base_url="http://127.0.0.1") as client:
                pre = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
                assert pre is not None
                client.post("/ui/login", data={"csrf": pre.group(1), "token": token})
                client.get("/ui/secrets?prefix=bench/folder/")  # warm-up (templates, statements)
                client.get("/ui/")
                folder = _time(client, "/ui/secrets?prefix=bench/folder/", args.repeat)
                print(f"{who}, folder of {args.folder}: {folder} (target 50)")
                dashboard = _time(client, "/ui/", args.repeat)
                print(f"{who}, dashboard on {args.dashboard}: {dashboard} (target 100)")


if __name__ == "__main__":
    main()
