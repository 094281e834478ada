"""Prometheus metrics of one server instance (http-api.md §13), on its own registry."""

from __future__ import annotations

from collections.abc import Sequence
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

from resonate import __version__
from resonate.store.base import Event

# `_created` series double every counter and histogram for no use to operators.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self, store_kind: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store_kind = store_kind
        self._children: dict[tuple[Any, ...], Any] = {}
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template and status",
            ["method", "path", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_requests_duration_seconds",
            "HTTP request latency by route template",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.api_requests = Counter(
            "api_requests",
            "API operations by type and 5-digit status code",
            ["type", "protocol", "status"],
            registry=registry,
        )
        self.api_in_flight = Gauge(
            "api_requests_in_flight",
            "API operations in flight",
            ["type", "protocol"],
            registry=registry,
        )
        self.api_duration = Histogram(
            "api_duration_seconds",
            "API operation latency",
            ["type", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
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

    def observe_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.kind == "promise":
                self.child(self.promises, event.name).inc(event.count)
            elif event.kind == "task":
                self.child(self.tasks, event.name).inc(event.count)
            elif event.kind == "schedule":
                self.child(self.schedules, event.name).inc(event.count)
            elif event.kind == "schedule_firing":
                self.child(self.schedule_firings, event.name).inc(event.count)
            elif event.kind == "task_2026":
                self.child(self.tasks_2026, event.name).inc(event.count)
            elif event.kind == "lock":
                self._observe_lock(event.name, event.count)

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
