"""The console's administration pages over HTTP: users, recorded tokens and policies, through
the core's Authorizer (an Admin cannot grant or touch Admin/SuperAdmin), with CSRF, errors
shown on the form's page, and every change audited; and the secret page's KV v2 metadata form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from strongroom import open_vault
from tests.conftest import fast_config
from tests.integration.server_proc import MASTER_KEY, ServerProcess, auth
from tests.rawsql import execute

COOKIE = "strongroom_ui"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("uiadmin")
    dsn = f"sqlite:///{tmp / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)
    vault.access.create_user("dora", "dora-password-1", "Admin")
    vault.access.create_user("ed", "ed-password-123", "Admin")
    vault.access.write_policy("app-read", "app/*: read, list")
    vault.access.create_user("rita", "rita-password-1", "Reader", policies=["app-read"])
    vault.create_secret("app/meta", "v1")
    vault.close()
    proc = ServerProcess(tmp, dsn=dsn).start()
    yield proc
    assert proc.stop() == 0, proc.output()


class Console:
    """A signed-in console client and its CSRF token."""

    def __init__(self, server: ServerProcess, username: str, password: str) -> None:
        self.client = httpx.Client(base_url=server.url)
        page = self.client.get("/ui/login")
        pre = _csrf(page.text)
        done = self.client.post(
            "/ui/login", data={"csrf": pre, "username": username, "password": password}
        )
        assert done.status_code == 303, done.text
        self.csrf = _csrf(self.client.get("/ui/").text)

    def post(self, url: str, **form: str) -> httpx.Response:
        return self.client.post(url, data={"csrf": self.csrf, **form})


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _users(server: ServerProcess) -> dict[str, tuple[str, str, bool]]:
    rows = execute(server.dsn, "SELECT username, role, policies, disabled FROM vault_users")
    return {name: (role, policies, bool(disabled)) for name, role, policies, disabled in rows}


def _api_login(server: ServerProcess, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/auth/login", json={"username": username, "password": password}
    )


def _issued(server: ServerProcess, username: str, password: str) -> dict[str, str]:
    """A login token and its accessor."""
    token = _api_login(server, username, password).json()["token"]
    found = httpx.post(
        f"{server.url}/api/vault/tokens/lookup", json={"token": token}, headers=auth()
    ).json()
    return {"token": token, "accessor": found["accessor"]}


def _audit(server: ServerProcess, action: str) -> list[dict[str, object]]:
    found = httpx.get(
        f"{server.url}/api/vault/audit", params={"action": action, "limit": 50}, headers=auth()
    )
    logs: list[dict[str, object]] = found.json()["logs"]
    return logs


@pytest.fixture
def dora(server: ServerProcess) -> Iterator[Console]:
    console = Console(server, "dora", "dora-password-1")
    yield console
    console.client.close()


def test_an_admin_manages_a_user_from_creation_to_deletion(
    server: ServerProcess, dora: Console
) -> None:
    made = dora.post(
        "/ui/admin/users",
        username="frank",
        password="frank-password-1",
        role="reader",
        policies="billing-read, ops",
    )
    assert made.status_code == 303 and made.headers["location"].startswith("/ui/admin/users/frank")
    assert _users(server)["frank"][0] == "reader"
    page = dora.client.get("/ui/admin/users/frank?done=created")
    assert "User created." in page.text and "billing-read, ops" in page.text
    assert [e["success"] for e in _audit(server, "user_create") if e["path"] == "user:frank"] == [
        True
    ]

    # Change role, then policies.
    assert dora.post("/ui/admin/users/frank", action="role", role="App").status_code == 303
    assert _users(server)["frank"][0] == "App"
    assert dora.post("/ui/admin/users/frank", action="policies", policies="ops").status_code == 303
    assert '"ops"' in _users(server)["frank"][1] and "billing" not in _users(server)["frank"][1]

    # Reset the password: mismatch and a weak one are refused with the reason, nothing changes.
    differ = dora.post(
        "/ui/admin/users/frank", action="password", password="another-pass-12", confirm="x"
    )
    assert differ.status_code == 400 and "the two passwords differ" in differ.text
    weak = dora.post("/ui/admin/users/frank", action="password", password="short", confirm="short")
    assert weak.status_code == 400 and 'role="alert"' in weak.text
    assert _api_login(server, "frank", "frank-password-1").status_code == 200
    reset = dora.post(
        "/ui/admin/users/frank",
        action="password",
        password="a-new-frank-pass-2",
        confirm="a-new-frank-pass-2",
    )
    assert reset.status_code == 303
    assert _api_login(server, "frank", "frank-password-1").status_code == 401
    assert _api_login(server, "frank", "a-new-frank-pass-2").status_code == 200

    # Disable (the user cannot log in), enable.
    assert dora.post("/ui/admin/users/frank", action="disable").status_code == 303
    assert _api_login(server, "frank", "a-new-frank-pass-2").status_code == 401
    assert dora.post("/ui/admin/users/frank", action="enable").status_code == 303
    assert _api_login(server, "frank", "a-new-frank-pass-2").status_code == 200

    # Delete: a confirmation page naming the user, then the delete.
    confirm = dora.client.get("/ui/admin/users/frank/delete")
    assert confirm.status_code == 200 and "Delete user frank?" in confirm.text
    unconfirmed = dora.post("/ui/admin/users/frank", action="delete")
    assert unconfirmed.status_code == 400 and "frank" in _users(server)
    gone = dora.post("/ui/admin/users/frank", action="delete", confirm="frank")
    assert gone.status_code == 303 and "frank" not in _users(server)
    for action in ("user_role", "user_policies", "user_password", "user_disable", "user_delete"):
        assert any(e["path"] == "user:frank" and e["success"] for e in _audit(server, action))


def test_an_admin_cannot_grant_or_touch_administrators(
    server: ServerProcess, dora: Console
) -> None:
    before = _users(server)
    for role in ("Admin", "superadmin", "SuperAdmin"):
        refused = dora.post(
            "/ui/admin/users", username="gina", password="gina-password-12", role=role
        )
        assert refused.status_code == 403, refused.text
        assert 'role="alert"' in refused.text and 'value="gina"' in refused.text
    promote = dora.post("/ui/admin/users/rita", action="role", role="SuperAdmin")
    assert promote.status_code == 403
    for action in ("disable", "policies", "delete"):
        assert dora.post("/ui/admin/users/ed", action=action, confirm="ed").status_code == 403
    refused_pw = dora.post(
        "/ui/admin/users/ed",
        action="password",
        password="ed-new-password-1",
        confirm="ed-new-password-1",
    )
    assert refused_pw.status_code == 403
    assert _users(server) == before
    assert any(e["path"] == "user:gina" and not e["success"] for e in _audit(server, "user_create"))


def test_tokens_listed_and_revoked_by_accessor_or_user(
    server: ServerProcess, dora: Console
) -> None:
    rita = _issued(server, "rita", "rita-password-1")
    rita_again = _issued(server, "rita", "rita-password-1")
    ed = _issued(server, "ed", "ed-password-123")
    listing = dora.client.get("/ui/admin/tokens").text
    for issued in (rita, rita_again, ed):
        assert issued["accessor"] in listing and issued["token"] not in listing
    # One token by accessor: refused at once.
    done = dora.post("/ui/admin/tokens", action="revoke", accessor=rita["accessor"])
    assert done.status_code == 303 and "done=revoked" in done.headers["location"]
    bearer = {"authorization": f"Bearer {rita['token']}"}
    assert httpx.get(f"{server.url}/api/vault/status", headers=bearer).status_code == 401
    again = {"authorization": f"Bearer {rita_again['token']}"}
    assert httpx.get(f"{server.url}/api/vault/status", headers=again).status_code == 200
    unknown = dora.post("/ui/admin/tokens", action="revoke", accessor="no-such-accessor")
    assert unknown.status_code == 404 and 'role="alert"' in unknown.text
    # An Admin cannot revoke an administrator's token, one or all.
    assert (
        dora.post("/ui/admin/tokens", action="revoke", accessor=ed["accessor"]).status_code == 403
    )
    ed_id = str(_users_ids(server)["ed"])
    assert dora.post("/ui/admin/tokens", action="revoke_user", user_id=ed_id).status_code == 403
    ed_bearer = {"authorization": f"Bearer {ed['token']}"}
    assert httpx.get(f"{server.url}/api/vault/status", headers=ed_bearer).status_code == 200
    # Every token of a user, from the user's page.
    rita_id = str(_users_ids(server)["rita"])
    assert rita_again["accessor"] in dora.client.get(f"/ui/admin/tokens?user_id={rita_id}").text
    back = "/ui/admin/users/rita"
    done = dora.post("/ui/admin/tokens", action="revoke_user", user_id=rita_id, back=back)
    assert done.status_code == 303 and done.headers["location"].startswith(back)
    assert httpx.get(f"{server.url}/api/vault/status", headers=again).status_code == 401
    assert dora.post("/ui/admin/tokens", action="revoke_user", user_id="x").status_code == 400
    assert dora.client.get("/ui/admin/tokens?user_id=-1").status_code == 400
    assert any(e["success"] for e in _audit(server, "token_revoke"))
    assert any(e["path"] == f"user-id:{rita_id}" for e in _audit(server, "token_revoke_user"))


def _users_ids(server: ServerProcess) -> dict[str, int]:
    return {n: int(i) for i, n in execute(server.dsn, "SELECT id, username FROM vault_users")}


def test_policies_written_from_json_and_deleted(server: ServerProcess, dora: Console) -> None:
    rules = '[{"path": "app/billing/*", "capabilities": ["read", "list"]}]'
    assert (
        dora.post("/ui/admin/policies", action="write", name="billing", rules=rules).status_code
        == 303
    )
    page = dora.client.get("/ui/admin/policies?edit=billing").text
    assert "app/billing/*: list, read" in page
    assert "app/billing/*" in page.split('id="p-rules"')[1]  # the form is filled for editing
    bad = dora.post("/ui/admin/policies", action="write", name="broken", rules='[{"path": 1}]')
    assert bad.status_code == 400 and 'role="alert"' in bad.text
    stored = {n for (n,) in execute(server.dsn, "SELECT name FROM vault_policies")}
    assert "broken" not in stored and "billing" in stored
    confirm = dora.client.get("/ui/admin/policies/billing/delete")
    assert confirm.status_code == 200 and "Delete policy billing?" in confirm.text
    assert dora.client.get("/ui/admin/policies/nope/delete").status_code == 404
    assert dora.post("/ui/admin/policies", action="delete", name="billing").status_code == 400
    gone = dora.post("/ui/admin/policies", action="delete", name="billing", confirm="billing")
    assert gone.status_code == 303
    assert "billing" not in {n for (n,) in execute(server.dsn, "SELECT name FROM vault_policies")}
    assert any(e["path"] == "policy:billing" for e in _audit(server, "policy_delete"))


def test_no_csrf_or_no_admin_changes_nothing(server: ServerProcess, dora: Console) -> None:
    before = _users(server)
    no_csrf = dora.client.post(
        "/ui/admin/users",
        data={"username": "hal", "password": "hal-password-123", "role": "Reader"},
    )
    assert no_csrf.status_code == 403
    rita = Console(server, "rita", "rita-password-1")
    try:
        assert rita.client.get("/ui/admin/users").status_code == 403
        assert rita.client.get("/ui/admin/tokens").status_code == 403
        assert rita.client.get("/ui/admin/policies").status_code == 403
        refused = rita.post(
            "/ui/admin/users", username="hal", password="hal-password-123", role="Reader"
        )
        assert refused.status_code == 403
        assert rita.post("/ui/admin/users/ed", action="disable").status_code == 403
    finally:
        rita.client.close()
    assert _users(server) == before


def _meta(server: ServerProcess) -> dict[str, object]:
    found = httpx.get(f"{server.url}/v1/secret/metadata/app/meta", headers=auth())
    assert found.status_code == 200, found.text
    data: dict[str, object] = found.json()["data"]
    return data


def test_kv_metadata_edited_on_the_secret_page(server: ServerProcess, dora: Console) -> None:
    url = "/ui/metadata/app/meta"
    custom = "owner=billing team\n\nticket = OPS-1=2\nnote=<script>alert(1)</script>\n"
    done = dora.post(url, max_versions="3", custom_metadata=custom)
    assert (
        done.status_code == 303 and done.headers["location"] == "/ui/secret/app/meta?done=metadata"
    )
    meta = _meta(server)
    assert meta["max_versions"] == 3
    assert meta["custom_metadata"] == {
        "owner": "billing team",
        "ticket": "OPS-1=2",
        "note": "<script>alert(1)</script>",
    }
    page = dora.client.get("/ui/secret/app/meta?done=metadata").text
    assert "Metadata saved." in page and "<script>alert" not in page
    assert "note=&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the form, escaped
    assert (
        'name="max_versions" type="number" min="0" max="1000000" inputmode="numeric" value="3"'
        in page
    )
    assert any(e["path"] == "app/meta" and e["success"] for e in _audit(server, "write_metadata"))

    # Bad input: the page again with the reason and the typed text; nothing changes.
    for form, reason in (
        ({"max_versions": "many", "custom_metadata": "a=b"}, "max_versions"),
        ({"max_versions": "-1", "custom_metadata": "a=b"}, "max_versions"),
        ({"max_versions": "2", "custom_metadata": "no equals sign"}, "expected key=value"),
        ({"max_versions": "2", "custom_metadata": "a=1\na=2"}, "given twice"),
        ({"max_versions": "2", "custom_metadata": "k=" + "v" * 600}, "512"),
    ):
        bad = dora.post(url, **form)
        assert bad.status_code == 400, (form, bad.text)
        assert 'role="alert"' in bad.text and reason in bad.text
        assert '<details class="card" id="metadata-editor" open>' in bad.text
    assert _meta(server)["max_versions"] == 3
    # Clearing: 0 max versions (the mount's setting), no custom metadata.
    assert dora.post(url, max_versions="", custom_metadata="").status_code == 303
    assert _meta(server)["max_versions"] == 0 and _meta(server)["custom_metadata"] in ({}, None)

    # Without CSRF, or without `update` on the path: 403, unchanged, no form shown.
    assert dora.client.post(url, data={"max_versions": "9"}).status_code == 403
    rita = Console(server, "rita", "rita-password-1")
    try:
        shown = rita.client.get("/ui/secret/app/meta")
        assert shown.status_code == 200 and "metadata-editor" not in shown.text
        assert rita.post(url, max_versions="9", custom_metadata="x=y").status_code == 403
    finally:
        rita.client.close()
    assert _meta(server)["max_versions"] == 0
