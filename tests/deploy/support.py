"""Helpers for the deployment-kit tests: where the kit is, and tools that must not skip in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI") == "true"


def need_tool(name: str, hint: str) -> str:
    """The path of command `name`; skip locally (fail under CI=true) when it is absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found ({hint}; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def need_root(why: str) -> None:
    """Skip locally (fail under CI=true) unless running as root."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail(f"needs root: {why}")
        pytest.skip(f"needs root: {why}")
