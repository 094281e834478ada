"""Rates for the overview's sparklines, from successive scrapes of the server's `/metrics`.

A scrape is parsed once into a flat `{(name, labels): value}` map; the difference of two scrapes
over the seconds between them gives each rate. p99 latency comes from the difference of the
request-latency histogram's cumulative buckets, so it is the p99 *of that interval*, not since
the server started. Pure: the data module fetches, this module only computes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]

# Series shown by the overview, in display order: key, title, short title (narrow screens), unit.
SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("created", "promises created", "created", "/s"),
    ("completed", "promises completed", "completed", "/s"),
    ("requests", "HTTP requests", "requests", "/s"),
    ("p99", "p99 latency", "p99", "ms"),
    ("errors_4xx", "4xx answers", "4xx", "/s"),
    ("errors_5xx", "5xx answers", "5xx", "/s"),
    ("delivered", "tasks delivered", "delivered", "/s"),
    ("reissued", "tasks re-issued", "re-issued", "/s"),
)
COMPLETED_STATES = ("resolved", "rejected", "rejected_canceled", "rejected_timedout")


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float  # seconds, monotonic
    samples: Samples

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples named `name` whose labels include `match`."""
        wanted = set(match.items())
        return sum(
            value
            for (sample, labels), value in self.samples.items()
            if sample == name and wanted <= labels
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (sample, labels), value in self.samples.items():
            if sample != name:
                continue
            for key, label_value in labels:
                if key == label:
                    out[label_value] = out.get(label_value, 0.0) + value
        return out


def parse_scrape(text: str, at: float) -> Scrape:
    """Parse the Prometheus text format; raises ValueError on text that is not that format."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return Scrape(at, samples)


def _increase(current: Scrape, previous: Scrape, name: str, **match: str) -> float:
    """How much a counter grew; a restart (the counter went down) counts from zero."""
    now = current.total(name, **match)
    before = previous.total(name, **match)
    return now if now < before else now - before


def _status_increase(current: Scrape, previous: Scrape, first_digit: str) -> float:
    def total(scrape: Scrape) -> float:
        return sum(
            value
            for (sample, labels), value in scrape.samples.items()
            if sample == "http_requests_total"
            and any(key == "status" and text.startswith(first_digit) for key, text in labels)
        )

    now, before = total(current), total(previous)
    return now if now < before else now - before


def histogram_quantile(quantile: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The quantile of cumulative `(upper bound, count)` buckets, interpolated linearly within
    the bucket it falls in (as PromQL's histogram_quantile); None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = quantile * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in ordered:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound
            if count == lower_count:
                return upper_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def _latency_buckets(scrape: Scrape) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for (sample, labels), value in scrape.samples.items():
        if sample != "http_requests_duration_seconds_bucket":
            continue
        bound = dict(labels).get("le")
        if bound is not None:
            upper = float(bound)
            buckets[upper] = buckets.get(upper, 0.0) + value
    return buckets


def interval_p99_ms(current: Scrape, previous: Scrape) -> float:
    now, before = _latency_buckets(current), _latency_buckets(previous)
    if any(now.get(bound, 0.0) < count for bound, count in before.items()):
        before = {}  # the server restarted between the scrapes
    deltas = [(bound, count - before.get(bound, 0.0)) for bound, count in now.items()]
    p99 = histogram_quantile(0.99, deltas)
    return 0.0 if p99 is None else p99 * 1000


def rates(current: Scrape, previous: Scrape) -> dict[str, float]:
    """Each series' value over the interval between two scrapes (per second, or ms for p99)."""
    seconds = current.at - previous.at
    if seconds <= 0:
        raise ValueError("scrapes must be taken in order")

    def per_second(amount: float) -> float:
        return amount / seconds

    completed = sum(
        _increase(current, previous, "promises_total", state=state) for state in COMPLETED_STATES
    )
    return {
        "created": per_second(_increase(current, previous, "promises_total", state="created")),
        "completed": per_second(completed),
        "requests": per_second(_increase(current, previous, "http_requests_total")),
        "p99": interval_p99_ms(current, previous),
        "errors_4xx": per_second(_status_increase(current, previous, "4")),
        "errors_5xx": per_second(_status_increase(current, previous, "5")),
        "delivered": per_second(
            _increase(current, previous, "task_deliveries_total", outcome="success")
        ),
        "reissued": per_second(_increase(current, previous, "tasks_total", state="reissued")),
    }


@dataclass(slots=True)
class RateHistory:
    """The last `length` rate points of every series, oldest first, fed one scrape at a time."""

    length: int = 120
    previous: Scrape | None = None
    series: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, scrape: Scrape) -> None:
        if self.previous is not None and scrape.at > self.previous.at:
            for key, value in rates(scrape, self.previous).items():
                self.series.setdefault(key, deque(maxlen=self.length)).append(value)
        self.previous = scrape

    def values(self, key: str) -> list[float]:
        return list(self.series.get(key, ()))

    def latest(self, key: str) -> float | None:
        points = self.series.get(key)
        return points[-1] if points else None

    def poll_connections(self) -> Mapping[str, float]:
        if self.previous is None:
            return {}
        return self.previous.by_label("poll_connections", "group")
