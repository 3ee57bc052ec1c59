"""strongroom.client.Client against a real server: the VaultAPI protocol over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from strongroom import errors, open_vault
from strongroom.api import VaultAPI
from strongroom.client import Client
from tests.conftest import fast_config
from tests.integration.server_proc import MASTER_KEY, ServerProcess, token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("client")).start()
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url, token("SuperAdmin")) as c:
        yield c


def test_client_satisfies_the_protocol(server: ServerProcess) -> None:
    with Client(server.url, token()) as c:
        _: VaultAPI = c
        assert c.is_locked is False


def test_secret_lifecycle(client: Client) -> None:
    info = client.create_secret("cl/a", "one", description="d", expires_in=timedelta(days=1))
    assert (info.path, info.version, info.description) == ("cl/a", 1, "d")
    assert info.expires_at is not None
    assert client.get_secret("cl/a") == "one"
    assert client.update_secret("cl/a", "two") == 2
    assert client.get_secret_version("cl/a", 1) == "one"
    assert [v.version for v in client.list_versions("cl/a")] == [2, 1]
    assert client.rollback_secret("cl/a", 1) == 3
    assert [s.path for s in client.list_secrets("cl/")] == ["cl/a"]
    assert len(client.generate_token(16)) >= 21
    assert client.cleanup_expired() == 0
    entries = client.audit_logs(path="cl/a", limit=100)
    assert {e.action for e in entries} >= {"create", "update", "rollback", "read"}
    assert client.verify_audit().ok
    client.delete_secret("cl/a")
    with pytest.raises(errors.SecretNotFound):
        client.get_secret("cl/a")


def test_typed_errors_come_back(server: ServerProcess, client: Client) -> None:
    client.create_secret("cl/b", "v")
    with pytest.raises(errors.SecretExists):
        client.create_secret("cl/b", "v")
    with pytest.raises(errors.VersionNotFound):
        client.get_secret_version("cl/b", 5)
    with pytest.raises(errors.InvalidInput):
        client.create_secret("bad//path", "v")
    with Client(server.url, "not-a-token") as anonymous, pytest.raises(errors.AuthenticationFailed):
        anonymous.get_secret("cl/b")
    with Client(server.url, token("App")) as app, pytest.raises(errors.PermissionDenied):
        app.get_secret("cl/b")
    with Client("http://127.0.0.1:9", token()) as nowhere, pytest.raises(errors.StorageUnavailable):
        nowhere.status()


def test_lock_unlock_and_backoff(server: ServerProcess, client: Client) -> None:
    client.lock()
    assert client.is_locked
    with pytest.raises(errors.VaultLocked):
        client.get_secret("cl/b")
    with pytest.raises(errors.InvalidMasterKey):
        client.unlock("wrong")
    client.unlock(MASTER_KEY)
    assert client.health().locked is False


def test_rotation_through_the_client(client: Client) -> None:
    client.create_secret("cl/rot", "v")
    assert client.rotate_secret("cl/rot").term >= 1
    seen: list[tuple[int, int]] = []
    result = client.rotate_all("another-master-key-42", progress=lambda d, t: seen.append((d, t)))
    assert result.term >= 1 and seen
    client.rotate_all(MASTER_KEY)
    assert client.get_secret("cl/rot") == "v"


def test_login(server: ServerProcess) -> None:
    vault = open_vault(server.dsn, fast_config())
    vault.access.create_user("erin", "erin-password", "Admin")
    vault.close()
    with Client(server.url) as c:
        with pytest.raises(errors.AuthenticationFailed):
            c.login("erin", "not-her-password")
        issued, expires_at = c.login("erin", "erin-password")
        assert issued and expires_at.tzinfo is not None
        assert c.status().locked is False
