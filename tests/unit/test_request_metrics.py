"""`Metrics.observe`/`observe_mount` count in plain dicts (`http.metrics._Requests`); a scrape
must read exactly what prometheus_client's own `Counter` and `Histogram` would have exported
for the same requests (timestamps of `_created` aside)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import metrics as prometheus_metrics

from strongroom.http.metrics import _BUCKETS, Metrics

REQUESTS = [
    ("/v1/secret/data/{path}", "GET", 200, 0.0012),
    ("/v1/secret/data/{path}", "GET", 200, 0.0005),  # on a bucket's bound: that bucket
    ("/v1/secret/data/{path}", "GET", 404, 20.0),  # above every bound: +Inf only
    ("/api/vault/secrets", "POST", 201, 0.0),
    ("/x", "POST", 500, 0.3),
    ("/x", "POST", 500, 0.25),
    ("/x", "LIST", 200, 10.0),
]
MOUNTS = [("secret/", "GET", 200), ("mount_1234", "GET", 404), ("secret/", "GET", 200)]


def _reference() -> str:
    """The exposition of the same requests through prometheus_client's metric classes."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "strongroom_http_requests",
        "HTTP requests by route and status",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "strongroom_http_request_duration_seconds",
        "HTTP request latency by route",
        ["route"],
        buckets=_BUCKETS,
        registry=registry,
    )
    kv = Counter(
        "strongroom_kv_requests",
        "Requests served by a KV mount, by mount accessor (secret/ for the default mount, "
        "/api/vault/secrets included)",
        ["mount", "method", "status"],
        registry=registry,
    )
    Counter(
        "strongroom_client_disconnects",
        "Requests whose client hung up before the server had read the body",
        registry=registry,
    )
    for route, method, status, seconds in REQUESTS:
        requests.labels(route, method, str(status)).inc()
        latency.labels(route).observe(seconds)
    for mount, method, status in MOUNTS:
        kv.labels(mount, method, str(status)).inc()
    return generate_latest(registry).decode()


def _without_times(text: str) -> str:
    return re.sub(r"(_created\{?.*?\}?) [0-9.e+]+$", r"\1 T", text, flags=re.MULTILINE)


@pytest.mark.parametrize("created", [True, False])
def test_the_exposition_prometheus_client_would_give(
    created: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (False: PROMETHEUS_DISABLE_CREATED_SERIES=true, or `disable_created_metrics()`)
    monkeypatch.setattr(prometheus_metrics, "_use_created", created)
    metrics = Metrics()
    for route, method, status, seconds in REQUESTS:
        metrics.observe(route, method, status, seconds)
    for mount, method, status in MOUNTS:
        metrics.observe_mount(mount, method, status)
    ours = metrics.render().decode()
    assert 'strongroom_http_request_duration_seconds_bucket{le="+Inf",route="/x"} 3.0' in ours
    assert ("_created" in ours) is created
    assert _without_times(ours) == _without_times(_reference())


def test_counts_go_on_after_a_scrape() -> None:
    metrics = Metrics()
    metrics.observe("/a", "GET", 200, 0.001)
    first = metrics.render().decode()
    metrics.observe("/a", "GET", 200, 0.001)
    second = metrics.render().decode()
    assert 'strongroom_http_requests_total{method="GET",route="/a",status="200"} 1.0' in first
    assert 'strongroom_http_requests_total{method="GET",route="/a",status="200"} 2.0' in second
    assert 'strongroom_http_request_duration_seconds_sum{route="/a"} 0.002' in second
