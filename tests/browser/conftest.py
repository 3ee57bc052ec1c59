"""Browser tests of the web console: Playwright for Python driving Debian's `chromium`.

Locally they skip (with the reason) when /usr/bin/chromium is absent; under CI=true they fail
instead, since `.ci/run` installs it. Each module gets its own real server (a subprocess on a free
loopback port) with an admin, a policy-limited user and a few secrets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import MASTER_KEY, ServerProcess

CHROMIUM = os.environ.get("STRONGROOM_CHROMIUM", "/usr/bin/chromium")
#: Where the tests' screenshots go: set STRONGROOM_UI_SCREENSHOTS=docs/images to refresh the
#: pictures of docs/ui.md; otherwise a temporary folder (a test run leaves the tree clean).
IMAGES = Path(
    os.environ.get("STRONGROOM_UI_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "strongroom-ui-screenshots"
)
ADMIN = ("alice", "alice-password-1")
LIMITED = ("bob", "bob-password-1")


def _chromium_or_skip() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + ": required under CI=true")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ui")
    dsn = f"sqlite:///{tmp / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    for path in ("app/billing/stripe", "app/billing/paypal", "app/shipping/key", "db/main"):
        vault.create_secret(path, f"value-of-{path}", description=f"the {path} credential")
    vault.access.write_policy("billing-read", "app/billing/*: read, list\n")
    vault.access.create_user(ADMIN[0], ADMIN[1], "Admin")
    vault.access.create_user(LIMITED[0], LIMITED[1], "App", policies=["billing-read"])
    vault.close()
    proc = ServerProcess(tmp, dsn=dsn).start()
    yield proc
    assert proc.stop() == 0, proc.output()
