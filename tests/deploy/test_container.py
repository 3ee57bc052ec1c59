"""deploy/Dockerfile built into a real image with buildah and run: its health check passes.

No registry is reachable here, so `python:3.12-slim` is stood in for by a Debian bookworm rootfs
made with mmdebstrap (python3, venv, pip; built once and kept as a local image). podman cannot run
containers in this sandbox (its runtimes fail with "crun: setrlimit `RLIMIT_NPROC`: Operation not
permitted": root lacks CAP_SYS_RESOURCE here), but buildah's chroot isolation builds the image and
runs its commands: the CMD (listening on a free loopback port, since chroot isolation shares the
host's network) and then the image's own HEALTHCHECK command, which must exit 0.

Slow (about 90 s for the build; a few minutes more the first time, for the rootfs).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, ROOT, need_root, need_tool
from tests.integration.server_proc import free_port

pytestmark = pytest.mark.slow

BASE = "localhost/strongroom-test-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd"
UID = 10001


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def ensure_base(buildah: str, work: Path) -> None:
    """The stand-in for python:3.12-slim, made once from Debian packages and kept."""
    if run(buildah, "inspect", "--type", "image", BASE).returncode == 0:
        return
    mmdebstrap = need_tool("mmdebstrap", "Debian package mmdebstrap")
    tar = work / "rootfs.tar"
    made = run(mmdebstrap, "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tar))
    assert made.returncode == 0, made.stderr[-3000:]
    ctr = run(buildah, "from", "scratch").stdout.strip()
    try:
        added = run(buildah, "add", ctr, str(tar), "/")
        assert added.returncode == 0, added.stderr
        committed = run(buildah, "commit", "--quiet", ctr, BASE)
        assert committed.returncode == 0, committed.stderr
    finally:
        run(buildah, "rm", ctr)


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="strongroom-container-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_image_builds_runs_and_is_healthy(work: Path) -> None:
    need_root("buildah's chroot isolation")
    buildah = need_tool("buildah", "Debian package buildah")
    ensure_base(buildah, work)
    image = f"localhost/strongroom-test:{uuid.uuid4().hex[:8]}"
    built = run(
        buildah,
        "bud",
        "--isolation=chroot",
        "--format=docker",  # keeps HEALTHCHECK (the OCI format has none)
        "--quiet",
        f"--build-arg=PYTHON_IMAGE={BASE}",
        # This machine reaches PyPI through its own CA bundle.
        "--volume=/etc/ssl/certs:/etc/ssl/certs:ro",
        f"--file={DEPLOY / 'Dockerfile'}",
        f"--tag={image}",
        str(ROOT),
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    ctr = ""
    server: subprocess.Popen[bytes] | None = None
    try:
        config = json.loads(run(buildah, "inspect", "--type", "image", image).stdout)["Docker"][
            "config"
        ]
        assert config["User"] == f"{UID}:{UID}"
        health = config["Healthcheck"]["Test"]
        assert health[0] == "CMD"
        cmd = config["Cmd"]
        assert "0.0.0.0:8080" in cmd

        secrets = work / "secrets"
        secrets.mkdir()
        for name, value in {
            "strongroom_master_key": "container-test-master-key-0123456789",
            "strongroom_jwt_secret": "container-test-jwt-secret-0123456789abcdef",
        }.items():
            (secrets / name).write_text(value)
            shutil.chown(secrets / name, UID, UID)
            (secrets / name).chmod(0o400)
        port = free_port()
        cheap = [
            "--env=STRONGROOM_ARGON2_TIME_COST=1",
            "--env=STRONGROOM_ARGON2_MEMORY_KIB=1024",
            "--env=STRONGROOM_ARGON2_PARALLELISM=1",
        ]
        ctr = run(buildah, "from", "--quiet", image).stdout.strip()
        assert ctr
        listen = [f"127.0.0.1:{port}" if a == "0.0.0.0:8080" else a for a in cmd]
        with (work / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [
                    buildah,
                    "run",
                    "--isolation=chroot",
                    f"--volume={secrets}:/run/secrets:ro",
                    *cheap,
                    ctr,
                    "--",
                    *listen,
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

        def healthcheck() -> int:
            url = f"--env=STRONGROOM_HEALTHCHECK_URL=http://127.0.0.1:{port}"
            return run(
                buildah, "run", "--isolation=chroot", url, ctr, "--", *health[1:], timeout=60
            ).returncode

        deadline = time.monotonic() + 90
        while healthcheck() != 0:
            assert server.poll() is None, (work / "server.log").read_text()
            assert time.monotonic() < deadline, (work / "server.log").read_text()
            time.sleep(1)
        output = (work / "server.log").read_text()
        assert "vault unlocked at start" in output, output
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if ctr:
            run(buildah, "rm", ctr)
        run(buildah, "rmi", image)
