"""Raw `/v1/` requests beyond hvac (subkeys, merge-patch, config, LIST, health options, mounts,
errors) sent in the same order to our server and to a real OpenBao dev server: status code,
content type and body must match field by field, except where `DIFFERENT` says why not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY
from tests.integration.kv2_support import ROOT_TOKEN, bao_dev_server, strongroom_server
from tests.integration.test_kv2_hvac import DIFFERENT, normalise

MERGE = {"Content-Type": "application/merge-patch+json"}
#: (step, method, path, JSON body, extra headers). Paths are under /v1/.
STEPS: list[tuple[str, str, str, Any, dict[str, str]]] = [
    (
        "write",
        "POST",
        "secret/data/raw/a",
        {"data": {"a": {"b": {"c": 1}}, "l": [1], "s": "x"}},
        {},
    ),
    ("subkeys", "GET", "secret/subkeys/raw/a", None, {}),
    ("subkeys_depth", "GET", "secret/subkeys/raw/a?depth=1", None, {}),
    ("no_data", "POST", "secret/data/raw/a", {}, {}),
    ("string_data", "POST", "secret/data/raw/a", {"data": "x"}, {}),
    (
        "patch_wrong_type",
        "PATCH",
        "secret/data/raw/a",
        {"data": {"t": "y"}},
        {"Content-Type": "application/json"},
    ),
    ("patch_missing", "PATCH", "secret/data/raw/none", {"data": {"t": "y"}}, MERGE),
    ("patch", "PATCH", "secret/data/raw/a", {"data": {"s": None, "t": "y"}}, MERGE),
    ("read_patched", "GET", "secret/data/raw/a", None, {}),
    ("patch_cas", "PATCH", "secret/data/raw/a", {"data": {"t": "z"}, "options": {"cas": 9}}, MERGE),
    ("patch_no_data", "PATCH", "secret/data/raw/a", {"nodata": 1}, MERGE),
    (
        "meta_write",
        "POST",
        "secret/metadata/raw/a",
        {"custom_metadata": {"n": 1, "b": True}, "max_versions": 3},
        {},
    ),
    (
        "meta_patch",
        "PATCH",
        "secret/metadata/raw/a",
        {"custom_metadata": {"b": None, "x": "y"}},
        MERGE,
    ),
    ("meta_read", "GET", "secret/metadata/raw/a", None, {}),
    ("meta_only", "POST", "secret/metadata/raw/empty", {"max_versions": 2}, {}),
    ("meta_only_read", "GET", "secret/metadata/raw/empty", None, {}),
    ("meta_only_data", "GET", "secret/data/raw/empty", None, {}),
    ("delete_csv", "POST", "secret/delete/raw/a", {"versions": "1"}, {}),
    ("delete_none", "POST", "secret/delete/raw/a", {"versions": []}, {}),
    ("read_deleted", "GET", "secret/data/raw/a?version=1", None, {}),
    ("p1", "POST", "secret/data/raw/p", {"data": {"a": 1}}, {}),
    ("p_delete", "DELETE", "secret/data/raw/p", None, {}),
    ("patch_deleted", "PATCH", "secret/data/raw/p", {"data": {"b": 1}}, MERGE),
    (
        "patch_deleted_cas",
        "PATCH",
        "secret/data/raw/p",
        {"data": {"b": 1}, "options": {"cas": 7}},
        MERGE,
    ),
    ("subkeys_deleted", "GET", "secret/subkeys/raw/a?version=1", None, {}),
    ("bad_version", "GET", "secret/data/raw/a?version=abc", None, {}),
    ("list_root", "LIST", "secret/metadata", None, {}),
    ("list_root_get", "GET", "secret/metadata/?list=true", None, {}),
    ("list_folder", "LIST", "secret/metadata/raw/", None, {}),
    ("list_missing", "LIST", "secret/metadata/raw/nope", None, {}),
    ("config_read", "GET", "secret/config", None, {}),
    (
        "config_write",
        "POST",
        "secret/config",
        {"max_versions": 2, "cas_required": False, "delete_version_after": "1h"},
        {},
    ),
    ("config_reread", "GET", "secret/config", None, {}),
    ("m1", "POST", "secret/data/raw/m", {"data": {"i": 1}}, {}),
    ("m2", "POST", "secret/data/raw/m", {"data": {"i": 2}}, {}),
    ("m3", "POST", "secret/data/raw/m", {"data": {"i": 3}}, {}),
    ("m_meta", "GET", "secret/metadata/raw/m", None, {}),
    ("m_pruned", "GET", "secret/data/raw/m?version=1", None, {}),
    (
        "config_reset",
        "POST",
        "secret/config",
        {"max_versions": 0, "delete_version_after": "0s"},
        {},
    ),
    ("cas_required", "POST", "secret/metadata/raw/c", {"cas_required": True}, {}),
    ("cas_missing", "POST", "secret/data/raw/c", {"data": {"a": 1}}, {}),
    ("cas_ok", "POST", "secret/data/raw/c", {"data": {"a": 1}, "options": {"cas": 0}}, {}),
    ("destroy_missing", "POST", "secret/destroy/raw/nope", {"versions": [1]}, {}),
    ("delete_meta_missing", "DELETE", "secret/metadata/raw/nope", None, {}),
    ("read_missing", "GET", "secret/data/raw/none", None, {}),
    ("no_token", "GET", "secret/data/raw/a", None, {"X-Vault-Token": ""}),
    ("bad_token", "GET", "secret/data/raw/a", None, {"X-Vault-Token": "bogus"}),
    ("health_codes", "GET", "sys/health?sealedcode=299&activecode=299", None, {}),
    ("health_bad_code", "GET", "sys/health?activecode=abc", None, {}),
    ("health_head", "HEAD", "sys/health", None, {}),
    ("data_head", "HEAD", "secret/data/raw/a", None, {}),
    ("metadata_head", "HEAD", "secret/metadata/raw/a", None, {}),
    ("subkeys_head", "HEAD", "secret/subkeys/raw/a", None, {}),
    ("config_head", "HEAD", "secret/config", None, {}),
    ("ui_mount", "GET", "sys/internal/ui/mounts/secret/raw/a", None, {}),
    ("ui_mount_other", "GET", "sys/internal/ui/mounts/nope", None, {}),
    ("mounts", "GET", "sys/mounts", None, {}),
    ("leader", "GET", "sys/leader", None, {}),
    ("init", "GET", "sys/init", None, {}),
    ("no_route", "GET", "nope/data/x", None, {}),
]
#: Error texts that differ: Vault's are Go decoding messages or capitalised; ours are one
#: lower-case line (CONVENTIONS), with the same status code.
OUR_OWN_WORDING = {"string_data", "delete_none", "bad_version"}
WIRE_DIFFERENT = {
    "config_read": {"metadata_cas_required"},
    "config_reread": {"metadata_cas_required"},
    "meta_read": {"current_metadata_version", "metadata_cas_required"},
    "meta_only_read": {"current_metadata_version", "metadata_cas_required"},
    "m_meta": {"current_metadata_version", "metadata_cas_required"},
    "health_codes": DIFFERENT["health"],
    # The mount's accessor, uuid and plugin version are generated per Vault server.
    "ui_mount": {"accessor", "uuid", "running_plugin_version"},
    "mounts": {"accessor", "uuid", "running_plugin_version"},
}


def run_steps(url: str, token: str) -> dict[str, tuple[int, str | None, Any]]:
    out: dict[str, tuple[int, str | None, Any]] = {}
    with httpx.Client(base_url=f"{url}/v1/", headers={"X-Vault-Token": token}) as http:
        for step, method, path, body, headers in STEPS:
            content = None if body is None else httpx.Request("POST", "http://x", json=body).content
            extra = {k: v for k, v in headers.items() if v}
            if "X-Vault-Token" in headers:  # this step replaces (or drops) our token
                response = httpx.request(method, f"{url}/v1/{path}", headers=extra)
            else:
                response = http.request(method, path, content=content, headers=extra or None)
            parsed: Any = response.json() if response.content else None
            if step == "mounts":  # OpenBao lists its system mounts too; compare `secret/`
                parsed = {"top": parsed["secret/"], "data": parsed["data"]["secret/"]}
            out[step] = (response.status_code, response.headers.get("content-type"), parsed)
    return out


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    with (
        strongroom_server(tmp_path_factory.mktemp("sr"), MASTER_KEY) as ours,
        bao_dev_server(tmp_path_factory.mktemp("bao")) as bao,
    ):
        yield run_steps(ours.url, ours.token()), run_steps(bao.url, ROOT_TOKEN)


def test_raw_requests_answer_as_openbao(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ours, bao = both
    for step, *_ in STEPS:
        (code, ctype, body), (their_code, their_ctype, their_body) = ours[step], bao[step]
        assert (code, ctype) == (their_code, their_ctype), f"step {step!r}"
        ignore = DIFFERENT["*"] | WIRE_DIFFERENT.get(step, set())
        if step in OUR_OWN_WORDING:
            ignore = ignore | {"errors"}
            assert body["errors"] and their_body["errors"], f"step {step!r}"
        assert normalise(body, ignore) == normalise(their_body, ignore), f"step {step!r}"


def test_values_behind_the_shapes(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ours, _ = both
    assert ours["subkeys"][2]["data"]["subkeys"] == {"a": {"b": {"c": None}}, "l": None, "s": None}
    assert ours["read_patched"][2]["data"]["data"] == {"a": {"b": {"c": 1}}, "l": [1], "t": "y"}
    assert ours["meta_read"][2]["data"]["custom_metadata"] == {"n": "1", "x": "y"}
    assert ours["m_meta"][2]["data"]["oldest_version"] == 2
    assert ours["m_meta"][2]["data"]["versions"]["3"]["deletion_time"] != ""
    assert ours["list_root"][2]["data"]["keys"] == ["raw/"]
    assert ours["patch_deleted"][2]["data"]["deletion_time"] != ""
    assert ours["health_codes"][0] == 299 and ours["patch_wrong_type"][0] == 415
    assert ours["patch_missing"] == (404, "application/json", None)
