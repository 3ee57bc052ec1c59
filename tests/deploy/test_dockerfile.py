"""deploy/Dockerfile, run without a container engine: every RUN, the CMD and the HEALTHCHECK.

The two stages are replayed into a scratch "root" directory: the files the build context (after
.dockerignore) gives to each COPY are copied, each RUN runs in bash with the image's absolute paths
(/src, /wheels, /opt/strongroom, /var/lib/strongroom, /run/secrets) moved under that root, the CMD
runs with the image's ENV as its USER (uid 10001, via setpriv) against keys in run/secrets, and the
HEALTHCHECK command must then exit 0. Only the RUN that adds the passwd entry is not replayed (it
would change this machine's /etc/passwd); the test checks that it names the same uid as USER.

What this proves: the wheel builds from the context .dockerignore lets through; the runtime stage
installs from the wheels alone (no index); the server starts as a non-root uid from the key files
the image names, unlocked, writes its state only to /var/lib/strongroom (the installed tree stays
unchanged, as a read-only root filesystem needs), answers the health check, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, ROOT, need_root, need_tool

DOCKERFILE = DEPLOY / "Dockerfile"
UID = 10001
JWT_SECRET = "deploy-test-jwt-secret-0123456789abcdef"
MASTER_KEY = "deploy-test-master-key-0123456789"
# Paths the image uses, moved under the scratch root when replayed here.
IMAGE_PATHS = ("/src", "/wheels", "/opt/strongroom", "/var/lib/strongroom", "/run/secrets")


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, args
            stages.append(Stage(match.group(2)))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args.strip()))
        else:
            assert keyword == "ARG", f"{keyword} before the first FROM"
    return stages


def parse_env(args: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(args))


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(
                fnmatch.fnmatch(p, body) and p.count("/") == body.count("/") for p in prefixes
            )
        if hit:
            result = not negate
    return result


def build_context(dest: Path) -> Path:
    """Copy the repository as a builder would receive it (tracked and untracked files, minus
    what .dockerignore excludes)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rel in listed:
        if (ROOT / rel).is_file() and not ignored(rel, patterns):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target)
    return dest


class Replay:
    """Replays the Dockerfile's stages under one scratch root."""

    def __init__(self, root: Path, context: Path) -> None:
        self.root = root
        self.context = context
        self.bin = root / "host-bin"
        self.bin.mkdir()
        # `python` in the image is a plain interpreter with pip; here, this test's interpreter.
        shim = self.bin / "python"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        shim.chmod(0o755)
        self.env: dict[str, str] = {}
        self.workdir = root

    def path(self, text: str) -> str:
        """Move the image's absolute paths under the scratch root."""
        for image_path in IMAGE_PATHS:
            text = re.sub(
                rf"(?<![\w.]){re.escape(image_path)}(?=[/\s\"']|$)",
                str(self.root) + image_path,
                text,
            )
        return text

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
        env.pop("DATABASE_URL", None)
        env.update(self.env)
        image_path = self.env.get("PATH")
        env["PATH"] = ":".join(p for p in (image_path, str(self.bin), os.environ["PATH"]) if p)
        return env

    def apply_env(self, args: str) -> None:
        for key, value in parse_env(args).items():
            value = value.replace("$PATH", self.env.get("PATH", ""))
            if key == "PATH":
                # Keep the image's own directories first, then this machine's.
                image_dirs = [d for d in value.split(":") if d.startswith(IMAGE_PATHS)]
                value = ":".join(self.path(d) for d in image_dirs)
            self.env[key] = self.path(value)

    def copy(self, args: str, source_root: Path) -> None:
        items = shlex.split(args)
        assert not any(i.startswith("--") for i in items), f"COPY flags not replayed: {args}"
        *sources, dest = items
        base = Path(self.path(dest)) if dest.startswith("/") else self.workdir / dest
        for src in sources:
            origin = source_root / src
            assert origin.exists(), f"COPY {src}: not in the build context (.dockerignore?)"
            if origin.is_dir():
                shutil.copytree(origin, base, dirs_exist_ok=True)
            else:
                target = base / origin.name if dest.endswith("/") else base
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)

    def run(self, args: str) -> None:
        command = re.sub(r"^(--mount=\S+\s+)+", "", args)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.path(command)],
            cwd=self.workdir,
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Readable by uid 10001 (pytest's own tmp_path is owner-only).
    root = Path(tempfile.mkdtemp(prefix="strongroom-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_shape(stages: list[Stage]) -> None:
    """Two stages on python:3.12-slim, wheel built in the first, numeric non-root USER, a volume
    for state, a HEALTHCHECK without curl, and no secret passed as ARG or ENV."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in text
    assert [s.name for s in stages] == ["build", None]
    build, runtime = stages
    assert any("pip wheel" in r for r in build.all("RUN"))
    assert runtime.all("USER") == [f"{UID}:{UID}"]
    assert runtime.all("VOLUME") == ['["/var/lib/strongroom"]']
    (health,) = runtime.all("HEALTHCHECK")
    assert "curl" not in health and "wget" not in health
    for stage in stages:
        for args in stage.all("ARG") + stage.all("ENV"):
            names = [a.split("=")[0] for a in shlex.split(args)]
            assert not any(re.search(r"KEY$|SECRET|TOKEN|PASSWORD", n) for n in names), names
    env = {k: v for a in runtime.all("ENV") for k, v in parse_env(a).items()}
    assert env["DATABASE_URL"] == "sqlite:////var/lib/strongroom/vault.db"
    cmd = json.loads(runtime.all("CMD")[0])
    assert "--master-key-file" in cmd and "--jwt-secret-file" in cmd
    assert all(p.startswith("/run/secrets/") for p in (cmd[cmd.index("--master-key-file") + 1],))


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        "vault.db",
        ".venv/bin/python",
        ".strongroom/master-key",
        "deploy/secrets/x",
        "tests/conftest.py",
        "src/strongroom/__pycache__/api.cpython-311.pyc",
        ".git/HEAD",
    ):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "src/strongroom/api.py", "deploy/healthcheck.py"):
        assert not ignored(path, patterns), path


def test_image_commands_run_and_healthcheck_passes(stages: list[Stage], scratch: Path) -> None:
    need_root("the CMD runs as the image's uid 10001")
    need_tool("setpriv", "util-linux")
    need_tool("taskset", "util-linux")
    context = build_context(scratch / "context")
    build, runtime = stages
    replay = Replay(scratch, context)

    # Stage 1: the wheels.
    for ins in build.instructions:
        if ins.keyword == "ENV":
            replay.apply_env(ins.args)
        elif ins.keyword == "WORKDIR":
            replay.workdir = Path(replay.path(ins.args))
            replay.workdir.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            replay.copy(ins.args, context)
        elif ins.keyword == "RUN":
            replay.run(ins.args)
    assert list((scratch / "wheels").glob("strongroom-*.whl"))

    # Stage 2: the runtime.
    replay.env, replay.workdir = {}, scratch
    user = ""
    health: list[str] = []
    cmd: list[str] = []
    for ins in runtime.instructions:
        if ins.keyword == "ENV":
            replay.apply_env(ins.args)
        elif ins.keyword == "RUN" and "useradd" in ins.args:
            assert f"--uid {UID}" in ins.args and f"--gid {UID}" in ins.args
        elif ins.keyword == "RUN":
            replay.run(ins.args)
        elif ins.keyword == "COPY":
            replay.copy(ins.args, context)
        elif ins.keyword == "USER":
            user = ins.args
        elif ins.keyword == "WORKDIR":
            replay.workdir = Path(replay.path(ins.args))
        elif ins.keyword == "HEALTHCHECK":
            health = json.loads(ins.args.split(" CMD ", 1)[1])
        elif ins.keyword == "CMD":
            cmd = json.loads(ins.args)
        else:
            assert ins.keyword in {"LABEL", "VOLUME", "EXPOSE"}, ins.keyword
    assert user == f"{UID}:{UID}" and health and cmd
    assert not list((scratch / "opt/strongroom/bin").glob("pip*")), "pip left in the image"
    state = scratch / "var/lib/strongroom"
    assert state.stat().st_uid == UID and state.stat().st_mode & 0o777 == 0o700

    # The keys, as Compose or Kubernetes mount them.
    secrets = scratch / "run/secrets"
    secrets.mkdir(parents=True)
    for name, value in (
        ("strongroom_master_key", MASTER_KEY),
        ("strongroom_jwt_secret", JWT_SECRET),
    ):
        (secrets / name).write_text(value + "\n")
        os.chown(secrets / name, UID, UID)
        (secrets / name).chmod(0o400)

    port = free_port()
    listen = [a for a in cmd if a.endswith(":8080")]
    assert listen == ["0.0.0.0:8080"]
    cmd = [f"127.0.0.1:{port}" if a == "0.0.0.0:8080" else replay.path(a) for a in cmd]
    env = replay.process_env()
    # Cheap Argon2 for the test; the health check is pointed at the test's port.
    env |= {
        "STRONGROOM_ARGON2_TIME_COST": "1",
        "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
        "STRONGROOM_ARGON2_PARALLELISM": "1",
        "STRONGROOM_HEALTHCHECK_URL": f"http://127.0.0.1:{port}",
    }
    as_user = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "--"]
    # The CMD runs as it is, on one CPU (as under `docker run --cpuset-cpus`), so its default is
    # one worker: the replayed venv's interpreter is this machine's, which uid 10001 may not be
    # allowed to start again (a pyenv build under /root), and a supervisor's workers are spawned
    # from it. Several workers are tested in tests/integration/test_http_workers.py.
    one_cpu = ["taskset", "-c", str(min(os.sched_getaffinity(0)))]
    installed_before = tree(scratch / "opt")
    health_cmd = [replay.path(a) for a in health]

    def healthcheck() -> int:
        return subprocess.run(
            as_user + health_cmd, env=env, capture_output=True, timeout=10
        ).returncode

    assert healthcheck() == 1, "health check passes with no server"
    log = scratch / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            one_cpu + as_user + cmd, cwd=replay.workdir, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while healthcheck() != 0:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{UID}\s", status, re.MULTILINE), status
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sys/health", timeout=5) as r:
            body = json.load(r)
        assert body["sealed"] is False, "not unlocked from /run/secrets/strongroom_master_key"
        assert "(1 worker, vault unlocked at start)" in log.read_text(), log.read_text()
        assert (state / "vault.db").stat().st_mode & 0o777 == 0o600
        assert (state / "vault.db").stat().st_uid == UID
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=40)
    assert code == 0, log.read_text()
    assert tree(scratch / "opt") == installed_before, "the server wrote outside its state directory"
    assert healthcheck() == 1
