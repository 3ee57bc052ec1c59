"""Schemathesis against `/openapi.json` of a real server (#11 item 20), both APIs: no 5xx, every
documented response matches its schema, and every 405 carries `Allow`.

Bounded: a few examples per operation, no shrinking, so the module runs in well under a
minute. Operations that would lock the vault (`/api/vault/lock`, `/v1/sys/seal`) or replace its
master key (`/api/vault/rotate`) are left out: after them every later request answers 423/503.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.integration.server_proc import ServerProcess, auth

pytestmark = pytest.mark.filterwarnings("ignore")  # hypothesis/schemathesis internals

_LEAVE_OUT = ("/api/vault/lock", "/v1/sys/seal", "/api/vault/rotate")
_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("fuzz"))).start()
    yield proc
    assert proc.stop() == 0, proc.output()
    assert "Traceback" not in proc.output()


@pytest.fixture(scope="module")
def api_schema(fuzzed: ServerProcess) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    return loaded.exclude(path=list(_LEAVE_OUT))


def allow_on_405(ctx: object, response: schemathesis.Response, case: object) -> None:
    """RFC 9110 15.5.6: a 405 lists the allowed methods."""
    if response.status_code == 405:
        assert response.headers.get("allow"), "405 without an Allow header"


def test_no_5xx_and_responses_match_the_schema(api_schema: schemathesis.BaseSchema) -> None:
    # The Python API, not schemathesis' pytest plugin (it does not load under this pytest).
    headers = auth()
    checks = [not_a_server_error, response_schema_conformance, allow_on_405]
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert any(op.path.startswith("/v1/") for op in operations)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
    assert calls >= 2 * len(operations), calls


def test_every_documented_path_answers_405_with_allow(fuzzed: ServerProcess) -> None:
    document = httpx.get(f"{fuzzed.url}/openapi.json").json()
    assert any(p.startswith("/v1/") for p in document["paths"]), "the /v1 routes are documented"
    with fuzzed.client() as api:
        for template, operations in document["paths"].items():
            if template.startswith("/v1/secret/metadata") or template in _LEAVE_OUT:
                continue  # metadata answers every method Vault knows (LIST included)
            path = template.replace("{path}", "fuzz/p").replace("{version}", "1")
            declared = {m.upper() for m in operations}
            for method in _ALL_METHODS:
                if method in declared:
                    continue
                answer = api.request(method, path)
                if answer.status_code == 405:
                    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
                    assert declared <= allowed, (template, method, allowed)
                else:  # a secret path's suffix may name another operation, never a 5xx
                    assert answer.status_code < 500, (template, method, answer.text)
