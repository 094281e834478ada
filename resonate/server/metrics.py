"""Prometheus metrics of one server instance (http-api.md §13), on its own registry."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from resonate import __version__
from resonate.store.base import Event

# `_created` series double every counter and histogram for no use to operators.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# GET /doctor's store latency: the p99 of the durations of the last this many store batches.
RECENT_BATCHES = 1000


class LoopHistogram:
    """A histogram series kept without locks: see RequestSeries."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0.0] * len(_LATENCY_BOUNDS)  # per bucket, not cumulative
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        # prometheus-client's rule: the first bucket whose bound is >= the amount.
        self.counts[bisect_left(_LATENCY_BOUNDS, amount)] += 1
        self.sum += amount


_LATENCY_BOUNDS = (*(float(bound) for bound in LATENCY_BUCKETS), math.inf)
_LATENCY_LE = tuple(floatToGoString(bound) for bound in _LATENCY_BOUNDS)  # type: ignore[no-untyped-call]

# A counter or gauge series: a one-item list, updated in place (cell[0] += 1).
Cell = list[float]


class RequestSeries(Collector):
    """The metrics every API request updates (``http_requests_total``,
    ``http_requests_duration_seconds``, ``api_requests_total``, ``api_requests_in_flight``,
    ``api_duration_seconds``), as plain numbers instead of prometheus-client's metric objects.

    prometheus-client takes a lock and makes several calls per update, about nine updates per
    request: a measurable share of a request's CPU. These series are only ever updated and read
    (``/metrics``, served by the same event loop) on the event loop's thread, so no lock is
    needed. The exposition is the one the metric objects gave: same names, help, types, labels,
    buckets and order (series in the order they were first used).
    """

    def __init__(self) -> None:
        self.http_requests: dict[tuple[str, str, str], Cell] = {}
        self.http_duration: dict[tuple[str, str], LoopHistogram] = {}
        self.api_requests: dict[tuple[str, str, str], Cell] = {}
        self.api_in_flight: dict[tuple[str, str], Cell] = {}
        self.api_duration: dict[tuple[str, str], LoopHistogram] = {}
        self.lane_requests: Cell = [0.0]  # answered by the lane (http/lane.py)

    def http_count(self, method: str, path: str, status: str) -> Cell:
        return self.http_requests.setdefault((method, path, status), [0.0])

    def http_latency(self, method: str, path: str) -> LoopHistogram:
        series = self.http_duration.get((method, path))
        if series is None:
            series = self.http_duration[method, path] = LoopHistogram()
        return series

    def api_count(self, operation: str, protocol: str, status: str) -> Cell:
        return self.api_requests.setdefault((operation, protocol, status), [0.0])

    def in_flight(self, operation: str, protocol: str) -> Cell:
        return self.api_in_flight.setdefault((operation, protocol), [0.0])

    def api_latency(self, operation: str, protocol: str) -> LoopHistogram:
        series = self.api_duration.get((operation, protocol))
        if series is None:
            series = self.api_duration[operation, protocol] = LoopHistogram()
        return series

    def describe(self) -> Iterable[Metric]:
        return [
            Metric("http_requests", _HTTP_REQUESTS_HELP, "counter"),
            Metric("http_requests_duration_seconds", _HTTP_DURATION_HELP, "histogram"),
            Metric("api_requests", _API_REQUESTS_HELP, "counter"),
            Metric("api_requests_in_flight", _API_IN_FLIGHT_HELP, "gauge"),
            Metric("api_duration_seconds", _API_DURATION_HELP, "histogram"),
            Metric("http_lane_requests", _HTTP_LANE_HELP, "counter"),
        ]

    def collect(self) -> Iterable[Metric]:
        metrics = self.describe()
        http_requests, http_duration, api_requests, api_in_flight, api_duration, lane = metrics
        _add_cells(http_requests, "_total", ("method", "path", "status"), self.http_requests)
        _add_histograms(http_duration, ("method", "path"), self.http_duration)
        _add_cells(api_requests, "_total", ("type", "protocol", "status"), self.api_requests)
        _add_cells(api_in_flight, "", ("type", "protocol"), self.api_in_flight)
        _add_histograms(api_duration, ("type", "protocol"), self.api_duration)
        lane.add_sample("http_lane_requests_total", {}, self.lane_requests[0])
        return metrics


_HTTP_REQUESTS_HELP = "HTTP requests by route template and status"
_HTTP_DURATION_HELP = "HTTP request latency by route template"
_API_REQUESTS_HELP = "API operations by type and 5-digit status code"
_API_IN_FLIGHT_HELP = "API operations in flight"
_API_DURATION_HELP = "API operation latency"
_HTTP_LANE_HELP = "HTTP requests of the API listener answered by the lane (api.http.lane)"


def _add_cells(
    metric: Metric, suffix: str, names: tuple[str, ...], series: dict[Any, Cell]
) -> None:
    for labels, cell in list(series.items()):
        metric.add_sample(metric.name + suffix, dict(zip(names, labels, strict=True)), cell[0])


def _add_histograms(
    metric: Metric, names: tuple[str, ...], series: dict[Any, LoopHistogram]
) -> None:
    name = metric.name
    for labels, histogram in list(series.items()):
        base = dict(zip(names, labels, strict=True))
        total = 0.0
        for le, count in zip(_LATENCY_LE, histogram.counts, strict=True):
            total += count
            metric.add_sample(name + "_bucket", {**base, "le": le}, total)
        metric.add_sample(name + "_count", base, total)
        metric.add_sample(name + "_sum", base, histogram.sum)


class Metrics:
    def __init__(self, store_kind: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store_kind = store_kind
        self._children: dict[tuple[Any, ...], Any] = {}
        self.recent_batch_seconds: deque[float] = deque(maxlen=RECENT_BATCHES)
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # The per-request series, updated by the API listener's middleware on every request.
        self.requests = RequestSeries()
        registry.register(self.requests)
        self.promises = Counter(
            "promises", "Promises created and completed, by state", ["state"], registry=registry
        )
        self.tasks = Counter("tasks", "Task state changes, by state", ["state"], registry=registry)
        self.locks = Counter(
            "locks", "Locks acquired, released and expired", ["state"], registry=registry
        )
        self.lock_acquires = Counter(
            "lock_acquires",
            "Lock acquire requests by outcome (acquired, refreshed, taken_over, refused)",
            ["outcome"],
            registry=registry,
        )
        self.locks_held = Gauge("locks_held", "Locks currently held", registry=registry)
        self.retention_purged = Counter(
            "retention_purged",
            "Rows deleted by the retention loop and POST /promises/purge, by kind "
            "(promises, tasks)",
            ["kind"],
            registry=registry,
        )
        self.retention_oldest_age = Gauge(
            "retention_oldest_completed_age_seconds",
            "How long ago the oldest completed promise (any final state) and the oldest "
            "completed or timed-out task completed, by kind (promises, tasks); 0 when none",
            ["kind"],
            registry=registry,
        )
        self.retention_batch_duration = Histogram(
            "retention_batch_duration_seconds",
            "One retention or purge batch (a delete transaction, queueing included), by kind "
            "(promises, tasks)",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for kind in ("promises", "tasks"):  # every series of each from the start, at 0
            self.retention_purged.labels(kind)
            self.retention_oldest_age.labels(kind)
            self.retention_batch_duration.labels(kind)
        self.schedules = Counter(
            "schedules", "Schedules created and deleted", ["state"], registry=registry
        )
        self.schedule_firings = Counter(
            "schedule_firings",
            "Schedule slots by outcome: created (a promise), skipped (its id existed), "
            "missed (beyond system.scheduleMaxCatchUp after downtime)",
            ["outcome"],
            registry=registry,
        )
        self.plugin_connections = Gauge(
            "aio_plugin_connections", "Open transport connections", ["type"], registry=registry
        )
        self.poll_connections = Gauge(
            "poll_connections",
            "Open poll (SSE) streams per worker group",
            ["group"],
            registry=registry,
        )
        self.poll_2026_connections = Gauge(
            "poll_2026_connections",
            "Open 2026-protocol worker streams (GET /poll/<group>/<id> on the API port) per group",
            ["group"],
            registry=registry,
        )
        self.tasks_2026 = Counter(
            "tasks_2026",
            "2026-protocol task events: created, due (an execute to send: woken, released, "
            "continued), lease_expired",
            ["event"],
            registry=registry,
        )
        self.deliveries = Counter(
            "task_deliveries",
            "Task deliveries by transport plugin and outcome",
            ["plugin", "outcome"],
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "task_delivery_duration_seconds",
            "Task delivery latency by transport plugin",
            ["plugin"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.store_transactions = Counter(
            "store_transactions",
            "Store transactions by outcome",
            ["store", "status"],
            registry=registry,
        )
        self.store_duration = Histogram(
            "store_transaction_duration_seconds",
            "Store transaction latency",
            ["store"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.store_batch = Histogram(
            "store_batch_operations",
            "Operations per group-commit transaction",
            ["store"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.background_runs = Counter(
            "background_runs", "Background loop passes", ["loop", "status"], registry=registry
        )
        self.background_duration = Histogram(
            "background_duration_seconds",
            "Background loop pass latency",
            ["loop"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        info = Gauge(
            "resonate_info", "Server version and store", ["version", "store"], registry=registry
        )
        info.labels(__version__, store_kind).set(1)
        # The counter of each kind of store event (observe_events); lock events have their own.
        self._event_metrics: dict[str, MetricWrapperBase] = {
            "promise": self.promises,
            "task": self.tasks,
            "schedule": self.schedules,
            "schedule_firing": self.schedule_firings,
            "task_2026": self.tasks_2026,
        }

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: prometheus-client's lookup takes a lock
        and builds a tuple each time, and this runs several times per request."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_batch(self, operations: int, seconds: float, status: str) -> None:
        self.child(self.store_batch, self.store_kind).observe(operations)
        self.child(self.store_duration, self.store_kind).observe(seconds)
        self.child(self.store_transactions, self.store_kind, status).inc()
        self.recent_batch_seconds.append(seconds)

    def recent_batch_p99_ms(self) -> float | None:
        """The 99th percentile of the last ``RECENT_BATCHES`` batch durations, ms (nearest
        rank); None before the first batch."""
        durations = sorted(self.recent_batch_seconds)
        if not durations:
            return None
        rank = max(1, math.ceil(len(durations) * 0.99))
        return round(durations[rank - 1] * 1000, 3)

    def observe_events(self, events: Sequence[Event]) -> None:
        # A batch's events summed per series first: one counter update per series, not one
        # per event (a batch of 60 creates and completions has two series).
        totals: dict[tuple[str, str], int] = {}
        for event in events:
            if event.kind == "lock":
                self._observe_lock(event.name, event.count)
            else:
                key = (event.kind, event.name)
                totals[key] = totals.get(key, 0) + event.count
        for (kind, name), count in totals.items():
            metric = self._event_metrics.get(kind)
            if metric is not None:
                self.child(metric, name).inc(count)

    def _observe_lock(self, name: str, count: int) -> None:
        """A lock event: `lock_acquires_total` for acquires, `locks_total` per state, and the
        held gauge (re-counted by every sweep pass). A takeover ends an expired lock and starts
        a new one: `expired` and `acquired` both count it, and the gauge does not move."""
        if name in ("released", "expired"):
            self.locks.labels(name).inc(count)
            self.locks_held.dec(count)
            return
        self.lock_acquires.labels(name).inc()
        if name == "acquired":
            self.locks.labels("acquired").inc()
            self.locks_held.inc()
        elif name == "taken_over":
            self.locks.labels("expired").inc()
            self.locks.labels("acquired").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
