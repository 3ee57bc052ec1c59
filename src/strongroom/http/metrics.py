"""Prometheus metrics: requests by route and status, latency, requests by KV mount, lock state,
secrets nearing expiry and expired, whether auto-unlock is on, storage errors by cause, and client
disconnects.

Each server process has its own registry (no global state, so tests can build many apps). Route
labels are route templates, never concrete paths, so secret paths do not leak into metrics and
the label set stays small; the `mount` label is `secret/` or the accessor of a mount that
served the request (an administrator creates them), never a mount path or a path a caller typed:
`/metrics` needs no token. The lock state is read when scraped;
the expiry counts are refreshed by the server's background job (`http.jobs`), so a scrape never
queries the database.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["CONTENT_TYPE", "ExpiryCounts", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass
class ExpiryCounts:
    """The expiry gauges' values, refreshed by the server's job (`http.jobs`)."""

    window: timedelta
    nearing_expiry: int = 0
    expired: int = 0


class _VaultGauges(Collector):
    def __init__(
        self, is_locked: Callable[[], bool], counts: ExpiryCounts, auto_unlock: bool
    ) -> None:
        self._is_locked = is_locked
        self._counts = counts
        self._auto_unlock = auto_unlock

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "strongroom_vault_locked",
            "1 when the vault is locked",
            value=1.0 if self._is_locked() else 0.0,
        )
        counts = self._counts
        yield GaugeMetricFamily(
            "strongroom_secrets_nearing_expiry",
            f"Live secrets that expire within {int(counts.window.total_seconds())} seconds",
            value=float(counts.nearing_expiry),
        )
        yield GaugeMetricFamily(
            "strongroom_secrets_expired",
            "Expired secrets still stored (the cleanup job removes them)",
            value=float(counts.expired),
        )
        yield GaugeMetricFamily(
            "strongroom_auto_unlock_enabled",
            "1 when the server unlocks itself again after an auto-lock (--auto-unlock)",
            value=1.0 if self._auto_unlock else 0.0,
        )


class _StorageErrors(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "strongroom_storage_errors",
            "Failed database transactions by cause (audit: a write with its audit entries)",
            labels=["cause"],
        )
        for cause, count in sorted(self._counts().items()):
            family.add_metric([cause], float(count))
        yield family


class _OutboxPending(Collector):
    def __init__(self, pending: Callable[[], int]) -> None:
        self._pending = pending

    def collect(self) -> Iterator[Metric]:
        try:
            value = self._pending()
        except Exception:  # a scrape must not fail when the database does
            return
        yield GaugeMetricFamily(
            "strongroom_outbox_pending", "Webhook deliveries not yet made", value=value
        )


class _Requests(Collector):
    """`strongroom_http_requests_total{route,method,status}`, the latency histogram
    `strongroom_http_request_duration_seconds{route}` and `strongroom_kv_requests_total{mount,
    method,status}`, counted in plain dicts and turned into metric families when scraped.

    prometheus_client's `Counter.inc` and `Histogram.observe` take a lock each and walk the
    buckets: ~4.5 us of every request here (docs/decisions.md, "Speed, round eleven"). These
    counts are only changed by the event loop's thread (`http.app.Front`); a scrape reads
    copies. The exposition is the one those classes give: `_created` samples included, unless
    prometheus_client is told to leave them out (`PROMETHEUS_DISABLE_CREATED_SERIES=true` or
    `disable_created_metrics()`), as its classes are.
    """

    def __init__(self) -> None:
        #: (route, method, status) -> [count, created]
        self.requests: dict[tuple[str, str, int], list[float]] = {}
        #: route -> [count per bucket (the last one +Inf), sum, created]
        self.latency: dict[str, list[float]] = {}
        #: (mount, method, status) -> [count, created]
        self.kv: dict[tuple[str, str, int], list[float]] = {}

    def collect(self) -> Iterator[Metric]:
        # (read at each scrape, as prometheus_client's own classes do)
        with_created = getattr(prometheus_metrics, "_use_created", True)
        requests = CounterMetricFamily(
            "strongroom_http_requests",
            "HTTP requests by route and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), (count, created) in self.requests.copy().items():
            requests.add_metric(
                [route, method, str(status)], count, created=created if with_created else None
            )
        yield requests
        latency = HistogramMetricFamily(
            "strongroom_http_request_duration_seconds",
            "HTTP request latency by route",
            labels=["route"],
        )
        for route, counts in self.latency.copy().items():
            *buckets, total, created = counts  # (a copy: the loop may go on counting)
            cumulative, running = [], 0.0
            for bound, count in zip(_BOUNDS, buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([route], cumulative, total)
            if with_created:
                latency.samples.append(
                    Sample(f"{latency.name}_created", {"route": route}, created, None)
                )
        yield latency
        kv = CounterMetricFamily(
            "strongroom_kv_requests",
            "Requests served by a KV mount, by mount accessor (secret/ for the default mount, "
            "/api/vault/secrets included)",
            labels=["mount", "method", "status"],
        )
        for (mount, method, status), (count, created) in self.kv.copy().items():
            kv.add_metric(
                [mount, method, str(status)], count, created=created if with_created else None
            )
        yield kv


#: The latency buckets' `le` labels, +Inf last (as prometheus_client's `Histogram` writes them).
_BOUNDS = [*(floatToGoString(b) for b in _BUCKETS), "+Inf"]  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics of one server process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counts = _Requests()
        self.registry.register(self._counts)
        self._disconnects = Counter(
            "strongroom_client_disconnects",
            "Requests whose client hung up before the server had read the body",
            registry=self.registry,
        )

    def watch_vault(
        self, is_locked: Callable[[], bool], counts: ExpiryCounts, *, auto_unlock: bool = False
    ) -> None:
        """Add the lock-state, expiry and auto-unlock gauges."""
        self.registry.register(_VaultGauges(is_locked, counts, auto_unlock))

    def watch_storage(self, counts: Callable[[], dict[str, int]]) -> None:
        """Add `strongroom_storage_errors_total{cause}`, read from `counts` when scraped."""
        self.registry.register(_StorageErrors(counts))

    def watch_webhooks(self, pending: Callable[[], int]) -> Callable[[str], None]:
        """Add `strongroom_webhook_deliveries_total{result}` and `strongroom_outbox_pending`
        (read from `pending` when scraped); return the callback that counts a delivery's
        result (`delivered`, `retry`, `failed`)."""
        deliveries = Counter(
            "strongroom_webhook_deliveries",
            "Webhook delivery attempts by result (delivered, retry, failed)",
            ["result"],
            registry=self.registry,
        )
        self.registry.register(_OutboxPending(pending))
        return lambda result: deliveries.labels(result).inc()

    def count_disconnect(self) -> None:
        """Count one client that hung up mid-request."""
        self._disconnects.inc()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency (on the event loop's thread: `_Requests`)."""
        counts = self._counts
        key = (route, method, status)
        counted = counts.requests.get(key)
        if counted is None:
            counted = counts.requests[key] = [0, time.time()]
        counted[0] += 1
        latency = counts.latency.get(route)
        if latency is None:
            latency = counts.latency[route] = [0] * len(_BOUNDS) + [0.0, time.time()]
        latency[bisect_left(_BUCKETS, seconds)] += 1  # (the first bucket whose `le` holds it)
        latency[-2] += seconds

    def observe_mount(self, mount: str, method: str, status: int) -> None:
        """Count one request served by the KV mount at `mount` (a mount path, never a key)."""
        key = (mount, method, status)
        counted = self._counts.kv.get(key)
        if counted is None:
            counted = self._counts.kv[key] = [0, time.time()]
        counted[0] += 1

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
