"""Retention (`system.retention.promises`) under load, and what a promise costs on disk.

Three parts per store (`--store sqlite|postgres|both`), each on its own server started with
`python -m resonate serve` (free loopback ports, the store's default settings):

1. **Purge under load** (`purge`). A database already holding `--size` N promises (default
   1,000,000), all completed about a day before the run, is copied twice from one seeded cache
   entry (the seeding of benchmarks/scale.py, with no pending rows). The create+complete load of
   benchmarks/promises.py (its raw HTTP/1.1 client and load worker, `--connections` 64
   closed-loop connections) runs against:
   - a server without retention, for `--baseline-duration` seconds (the baseline);
   - a server started with `--system-retention-promises 1h` (`--retention`): every seeded row is
     past the cutoff, the promises the load creates are not, so the loop deletes exactly the N
     seeded rows. The loop makes its first pass when the server starts; a pass runs batches of
     `system.retention.batchSize` (500) until one comes back short, at most 1,000 batches, then
     the loop waits its idle tick (60 to 75 s). The load starts as soon as the server is ready
     and runs until every seeded row is gone, then `--tail` seconds more.
   The server's `/metrics` is read every `--sample-interval` seconds (0.25):
   `retention_purged_total{kind="promises"}`, the retention loop's passes
   (`background_runs_total`, `background_duration_seconds`) and the store transaction latency
   histogram. Each request is stamped with the time it finished; a request is "during the purge"
   when it finished in a sampling interval in which the purged count rose. Reported: create and
   complete p50/p99 during the purge, on the same server when it was not purging (the idle tick
   between passes, the tail), and on the baseline server; their ratios; the purge rate (N over
   the summed duration of the loop's passes), the time from the server's start to the last
   seeded row gone, the passes, and the slowest store transaction (an upper bound from the
   histogram's buckets; a purge batch is one transaction, so this bounds the longest batch).
2. **Flat size** (`flat`). An empty database, a server with `--system-retention-promises 10s`
   (`--flat-retention`), the same load for `--flat-duration` seconds (180); every
   `--flat-interval` seconds (15): the promises stored, the rows purged so far, pairs/s and
   create p99 over the interval, and the database's size (SQLite: file + WAL, and the free pages
   in the file; PostgreSQL: `pg_database_size` and `pg_total_relation_size` of `promises` and
   `promise_tags`). The count climbs until the loop's next pass, drops, and climbs again: it
   is bounded by the throughput times (idle tick + retention), and the file stops growing
   once freed pages are being reused (on PostgreSQL only once a VACUUM has run: see
   `--vacuum-every`).
3. **Bytes per promise** (`sizing`). The seeded database of part 1 against an empty one seeded
   the same way (N=0): the size of the database, and per table with its indexes (SQLite: the
   `dbstat` table; PostgreSQL: `pg_relation_size` / `pg_indexes_size`), divided by N. A seeded
   promise: id `seed-<n>` (6-12 characters), RESOLVED, param data a 43-byte JSON, value data a
   13-byte JSON, no headers, no idempotency keys, two tags
   (`{"resonate:root":"root-<n//10>","resonate:invoke":"default"}`, two rows in the tag index),
   createdOn/completedOn/timeout set; PostgreSQL after `VACUUM ANALYZE`, SQLite after a WAL
   checkpoint (no free pages).

Seeded databases are cached like scale.py's (`--cache-dir`, default ~/.cache/resonate-bench,
keys `<store>-p0-n<N>-v<migrations>-<hash>`): the first run seeds (1M rows: about 10 s on
SQLite, 40 s on PostgreSQL), later runs copy.

    python benchmarks/retention.py --quick --store sqlite     # CI smoke: about 20 s
    python benchmarks/retention.py --store both               # full: about 15 min
    python benchmarks/retention.py --store postgres --parts purge --size 200000
    python benchmarks/retention.py --store postgres --parts flat --vacuum-every 60

Typical durations of the full run per store: seeding once (see above), purge part 2.5 min on
SQLite and 4 min on PostgreSQL (baseline 30 s; the purge of 1M rows takes two passes with the
loop's idle tick between them), flat part 3 min, sizing seconds. `--vacuum-every` runs
`VACUUM promises, promise_tags` during the flat part on PostgreSQL, for a server whose
autovacuum is off (as on the test machine), where the database otherwise never levels off.
Nothing here asserts speed; the exit status is 1 only when a run failed, saw request errors, or
the purge did not finish.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import http.client
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import promises as bench  # benchmarks/promises.py, next to this file
import scale  # benchmarks/scale.py: seeded databases, the server under test

FAR_NS = 2**62  # a load window without a planned end: the driver stops when told
QUICK = {
    "size": 20_000,
    "warmup": 0.5,
    "baseline_duration": 3.0,
    "tail": 2.0,
    "flat_duration": 10.0,
    "flat_interval": 2.0,
    "flat_retention": "2s",
}
FULL = {
    "size": 1_000_000,
    "warmup": 2.0,
    "baseline_duration": 30.0,
    "tail": 10.0,
    "flat_duration": 180.0,
    "flat_interval": 15.0,
    "flat_retention": "10s",
}
PARTS = ("purge", "flat", "sizing")
CPU_KEYS = ("server", "driver", "database", "self", "box")


def log(message: str) -> None:
    bench.log(message)


# --------------------------------------------------------------------------------------------
# Load: promises.py's worker, each request stamped with the time it finished, until told to stop.


class StampedWorker(bench.LoadWorker):
    """promises.py's create+complete worker; also records when each timed request finished."""

    def __init__(
        self,
        client: bench.Client,
        samples: bench.DriverSamples,
        stamps: dict[str, array[int]],
        name: str,
        window: tuple[int, int, int],
    ) -> None:
        super().__init__(client, samples, name, window)
        self._stamps = stamps

    def _account(self, kind: str, status: int, started: int, finished: int) -> bool:
        if self._warm_end_ns <= finished <= self._end_ns:  # as LoadWorker times it
            self._stamps[kind].append(finished)
        return super()._account(kind, status, started, finished)


async def _drive(pipe: multiprocessing.connection.Connection) -> None:
    pipe.send("ready")
    url, connections, prefix, start, warm_end = pipe.recv()
    parsed = urllib.parse.urlsplit(url)
    client = bench.RawClient(parsed.hostname or "127.0.0.1", parsed.port or 80)
    # The parent's deadlines are CLOCK_MONOTONIC; the workers time with perf_counter.
    shift = time.perf_counter_ns() - time.monotonic_ns()
    window = (start + shift, warm_end + shift, FAR_NS)
    samples = bench.DriverSamples()
    stamps: dict[str, array[int]] = {"create": array("q"), "complete": array("q")}
    workers = [
        asyncio.create_task(
            StampedWorker(client, samples, stamps, f"{prefix}-{index}", window).run()
        )
        for index in range(connections)
    ]
    loop = asyncio.get_running_loop()
    told: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not told.done():
            told.set_result(None)

    loop.add_reader(pipe.fileno(), readable)
    await told
    loop.remove_reader(pipe.fileno())
    pipe.recv()  # "stop"
    for worker in workers:
        worker.cancel()
    outcomes = await asyncio.gather(*workers, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            samples.errors_outside[f"driver:{outcome!r}"] += 1
    pipe.send(
        {
            "create_ns": samples.create_ns,
            "complete_ns": samples.complete_ns,
            "create_at": array("q", (t - shift for t in stamps["create"])),
            "complete_at": array("q", (t - shift for t in stamps["complete"])),
            "pairs": len(samples.pair_ns),
            "errors": dict(samples.errors),
            "errors_outside": dict(samples.errors_outside),
        }
    )


def driver_main(pipe: multiprocessing.connection.Connection) -> None:
    asyncio.run(_drive(pipe))


@dataclass
class Requests:
    """What the driver saw: latencies and finish times (CLOCK_MONOTONIC ns) of timed requests."""

    create_ns: array[int]
    complete_ns: array[int]
    create_at: array[int]
    complete_at: array[int]
    pairs: int
    errors: dict[str, int]
    errors_outside: dict[str, int]


class Driver:
    """One load driver process, spawned before the server starts (so that the load can begin
    the moment it is ready), started with `go` and stopped with `stop`."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=driver_main, args=(child,), daemon=True)
        self.process.start()
        if not self._pipe.poll(60) or self._pipe.recv() != "ready":
            raise RuntimeError("driver process did not start")
        self.warm_end_ns = 0

    def go(self, url: str, connections: int, warmup_s: float) -> None:
        start = time.monotonic_ns() + 20_000_000
        self.warm_end_ns = start + int(warmup_s * 1e9)
        prefix = f"r{os.getpid()}-{time.monotonic_ns() % 10**9}"
        self._pipe.send((url, connections, prefix, start, self.warm_end_ns))

    def stop(self) -> Requests:
        self._pipe.send("stop")
        if not self._pipe.poll(120):
            raise RuntimeError("driver process did not report")
        return Requests(**self._pipe.recv())

    def close(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --------------------------------------------------------------------------------------------
# The server's metrics and the box's CPU, sampled while the load runs.

METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = METRIC_LINE.match(line)
        if found is None:
            continue
        labels = tuple(sorted(LABEL.findall(found.group(2) or "")))
        with contextlib.suppress(ValueError):
            out[found.group(1), labels] = float(found.group(3))
    return out


@dataclass
class Sample:
    at_ns: int  # CLOCK_MONOTONIC
    purged: float  # retention_purged_total{kind="promises"}
    passes: float  # background_runs_total{loop="retention"}, any status
    pass_seconds: float  # background_duration_seconds_sum{loop="retention"}
    tx_buckets: dict[float, float]  # store_transaction_duration_seconds_bucket by le
    batch_buckets: dict[float, float]  # retention_batch_duration_seconds_bucket{promises} by le
    batch_seconds: float  # retention_batch_duration_seconds_sum{kind="promises"}
    cpu: dict[str, float]  # seconds so far: server, driver, database, self, box


def box_busy_seconds() -> float:
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[0:3]) + sum(ticks[5:7])) / bench.CLOCK_TICKS


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sampler(threading.Thread):
    """Reads /metrics and the CPU counters every `interval` seconds."""

    def __init__(
        self,
        metrics_port: int,
        interval: float,
        server_pid: int | None,
        driver_pid: int | None,
        database_pids: list[int],
    ) -> None:
        super().__init__(daemon=True)
        self._port, self._interval = metrics_port, interval
        self._pids = (server_pid, driver_pid, database_pids)
        self._halt = threading.Event()
        self.samples: list[Sample] = []
        self.failures = 0

    def take(self, conn: http.client.HTTPConnection) -> Sample | None:
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        except (OSError, http.client.HTTPException):
            self.failures += 1
            conn.close()
            return None
        at = time.monotonic_ns()
        values = parse_metrics(text)
        server, driver, database = self._pids
        buckets: dict[float, float] = {}
        batch_buckets: dict[float, float] = {}
        passes = pass_seconds = purged = batch_seconds = 0.0
        for (name, labels), value in values.items():
            label = dict(labels)
            if name == "retention_purged_total" and label.get("kind") == "promises":
                purged = value
            elif name == "background_runs_total" and label.get("loop") == "retention":
                passes += value
            elif name == "background_duration_seconds_sum" and label.get("loop") == "retention":
                pass_seconds = value
            elif name == "store_transaction_duration_seconds_bucket":
                buckets[float(label["le"])] = value
            elif label.get("kind") == "promises":
                if name == "retention_batch_duration_seconds_bucket":
                    batch_buckets[float(label["le"])] = value
                elif name == "retention_batch_duration_seconds_sum":
                    batch_seconds = value
        cpu = {
            "server": (bench.process_tree_cpu_seconds(server) if server else None) or 0.0,
            "driver": (bench.process_tree_cpu_seconds(driver) if driver else None) or 0.0,
            "database": sum(bench.process_cpu_seconds(database).values()),
            "self": self_cpu_seconds(),
            "box": box_busy_seconds(),
        }
        return Sample(at, purged, passes, pass_seconds, buckets, batch_buckets, batch_seconds, cpu)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        try:
            while not self._halt.is_set():
                sample = self.take(conn)
                if sample is not None:
                    self.samples.append(sample)
                self._halt.wait(self._interval)
        finally:
            conn.close()

    def halt(self) -> list[Sample]:
        self._halt.set()
        self.join(timeout=30)
        return self.samples


# --------------------------------------------------------------------------------------------
# Statistics.


def percentile_ms(values: list[int] | array[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] / 1e6


@dataclass
class Phase:
    """Requests and CPU of one kind of time (during the purge, not purging, ...)."""

    seconds: float = 0.0
    create: list[int] = field(default_factory=list)
    complete: list[int] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_KEYS, 0.0))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 1), "requests": 0}
        out["requests"] = len(self.create) + len(self.complete)
        out["pairs_per_s"] = len(self.complete) / self.seconds if self.seconds > 0 else None
        for kind in ("create", "complete"):
            values = getattr(self, kind)
            out[f"{kind}_p50_ms"] = percentile_ms(values, 0.50)
            out[f"{kind}_p99_ms"] = percentile_ms(values, 0.99)
            out[f"{kind}_max_ms"] = max(values) / 1e6 if values else None
        if self.seconds > 0:
            for name in ("server", "database"):
                out[f"{name}_cpu_percent"] = self.cpu[name] / self.seconds * 100
            others = (
                self.cpu["box"]
                - self.cpu["server"]
                - self.cpu["driver"]
                - self.cpu["database"]
                - self.cpu["self"]
            )
            out["other_processes_cpu_percent"] = max(0.0, others) / self.seconds * 100
        return out


def split_phases(
    requests: Requests, samples: list[Sample], warm_end_ns: int, purging: list[bool]
) -> dict[str, Phase]:
    """Requests by the sampling interval they finished in: `purging[i]` says whether the
    interval (samples[i-1], samples[i]] was one in which the purged count rose. Requests before
    the first sample or after the last are not counted."""
    phases = {"purging": Phase(), "not_purging": Phase()}
    times = [sample.at_ns for sample in samples]
    for index in range(1, len(samples)):
        lo, hi = max(times[index - 1], warm_end_ns), times[index]
        if hi <= lo:
            continue
        phase = phases["purging" if purging[index] else "not_purging"]
        phase.seconds += (hi - lo) / 1e9
        share = (hi - lo) / (times[index] - times[index - 1])
        for name, value in samples[index].cpu.items():
            phase.cpu[name] += (value - samples[index - 1].cpu[name]) * share
    for kind, at, latencies in (
        ("create", requests.create_at, requests.create_ns),
        ("complete", requests.complete_at, requests.complete_ns),
    ):
        for finished, latency in zip(at, latencies, strict=True):
            index = bisect.bisect_left(times, finished)
            if index == 0 or index >= len(times) or finished < warm_end_ns:
                continue
            phase = phases["purging" if purging[index] else "not_purging"]
            getattr(phase, kind).append(latency)
    return phases


def slowest_transaction(buckets: dict[float, float]) -> tuple[float, float] | None:
    """(lower, upper) bound in seconds of the slowest store transaction the histogram saw."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    previous = 0.0
    for bound in bounds:
        if buckets[bound] >= total:
            return previous, bound
        previous = bound
    return None


def tx_count_above(buckets: dict[float, float], seconds: float) -> float | None:
    if not buckets or seconds not in buckets:
        return None
    return buckets[max(buckets)] - buckets[seconds]


# --------------------------------------------------------------------------------------------
# Store-specific queries.


def database_url(store: scale.PostgresScale, workdir: Path) -> str:
    """The DSN of one run's PostgreSQL database."""
    profile = store.profile
    assert isinstance(profile, scale.PostgresRunProfile)
    return bench.with_database(store.dsn, profile.database(workdir))


def seed_rows_left(store: scale.ScaleStore, workdir: Path) -> int | None:
    sql = "SELECT count(*) FROM promises WHERE id >= 'seed-' AND id < 'seed.'"
    with contextlib.suppress(Exception):
        if isinstance(store, scale.PostgresScale):
            url = database_url(store, workdir)
            return int(bench.run_sql(url, sql)[0][0][0])
        conn = sqlite3.connect(f"file:{workdir / 'bench.db'}?mode=ro", uri=True)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    return None


def size_snapshot(store: scale.ScaleStore, workdir: Path) -> dict[str, Any]:
    """Rows and bytes of one run's database, read while the server runs."""
    out: dict[str, Any] = {}
    if isinstance(store, scale.PostgresScale):
        url = database_url(store, workdir)
        rows = bench.run_sql(
            url,
            "SELECT count(*) FROM promises",
            "SELECT pg_database_size(current_database()), "
            "pg_total_relation_size('promises'), pg_total_relation_size('promise_tags')",
            "SELECT n_dead_tup, vacuum_count + autovacuum_count FROM pg_stat_user_tables "
            "WHERE relname = 'promises'",
        )
        out["promises"] = int(rows[0][0][0])
        database, promises_bytes, tags_bytes = (int(value) for value in rows[1][0])
        out |= {"database": database, "promises_bytes": promises_bytes, "tags_bytes": tags_bytes}
        if rows[2]:
            out["dead_tuples"], out["vacuums"] = (int(value) for value in rows[2][0])
        return out
    path = workdir / "bench.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out["promises"] = int(conn.execute("SELECT count(*) FROM promises").fetchone()[0])
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        out["free"] = int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
    finally:
        conn.close()
    out["file"] = path.stat().st_size
    wal = Path(f"{path}-wal")
    out["wal"] = wal.stat().st_size if wal.exists() else 0
    out["database"] = out["file"] + out["wal"]
    return out


def sqlite_objects(path: Path) -> dict[str, int]:
    """Bytes of each table with its indexes, and in all (`dbstat`)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat AS d "
            "LEFT JOIN sqlite_master AS m ON m.name = d.name GROUP BY 1"
        ).fetchall()
        out = {str(name): int(size) for name, size in rows}
        for name, size in conn.execute(
            "SELECT d.name, sum(d.pgsize) FROM dbstat AS d "
            "JOIN sqlite_master AS m ON m.name = d.name "
            "WHERE m.tbl_name IN ('promises', 'promise_tags') GROUP BY 1"
        ).fetchall():
            out[f"  {name}"] = int(size)
    finally:
        conn.close()
    out["(file)"] = path.stat().st_size
    return out


def postgres_objects(url: str) -> dict[str, int]:
    """Bytes of each table with its indexes and TOAST, and in all; for `promises` and
    `promise_tags`, also the table alone (heap, TOAST, free-space and visibility maps) and
    each index."""
    tables, indexes, database = bench.run_sql(
        url,
        "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid) "
        "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = 'public'",
        "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index AS x "
        "JOIN pg_class AS i ON i.oid = x.indexrelid JOIN pg_class AS t ON t.oid = x.indrelid "
        "WHERE t.relname IN ('promises', 'promise_tags') ORDER BY t.relname, i.relname",
        "SELECT pg_database_size(current_database())",
    )
    out: dict[str, int] = {str(name): int(total) for name, total, _ in tables}
    for name, total, index_bytes in tables:
        if name in ("promises", "promise_tags"):
            out[f"  {name} (table without its indexes)"] = int(total) - int(index_bytes)
    for name, size in indexes:
        out[f"  {name}"] = int(size)
    out["(database)"] = int(database[0][0])
    return out


# --------------------------------------------------------------------------------------------
# Part 1: purge under load.


def retention_args(duration: str) -> list[str]:
    return ["--system-retention-promises", duration]


def run_loaded(
    store: scale.ScaleStore,
    workdir: Path,
    options: argparse.Namespace,
    extra: list[str],
    until: Any,
) -> dict[str, Any]:
    """Start a server on workdir's store, load it until `until(samples, started_ns)` says
    stop, and return the requests, samples and timings."""
    driver = Driver()
    out: dict[str, Any] = {}
    try:
        spawned = time.monotonic_ns()
        with scale.running_server(store, workdir, options, extra) as running:
            ready = time.monotonic_ns()
            database_pids = store.database_pids(workdir) if store.name == "postgres" else []
            sampler = Sampler(
                running.metrics_port,
                options.sample_interval,
                running.server.pid,
                driver.process.pid,
                database_pids,
            )
            sampler.start()
            driver.go(running.url, options.connections, options.warmup)
            try:
                while not until(sampler.samples, driver.warm_end_ns):
                    time.sleep(options.sample_interval)
                    if running.server.process and running.server.process.poll() is not None:
                        raise RuntimeError("server exited during the load")
            finally:
                requests = driver.stop()
                samples = sampler.halt()
            out |= {
                "requests": requests,
                "samples": samples,
                "server_start_ns": spawned,
                "ready_ns": ready,
                "warm_end_ns": driver.warm_end_ns,
                "sampler_failures": sampler.failures,
            }
    finally:
        driver.close()
    return out


def errors_of(requests: Requests) -> dict[str, int]:
    counts = Counter(requests.errors)
    counts.update({f"(outside) {k}": v for k, v in requests.errors_outside.items()})
    return dict(counts)


def measure_purge(
    store: scale.ScaleStore, options: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    size = options.size
    seed = store.prepare(size)
    out: dict[str, Any] = {"size": size, "seed": seed.__dict__}
    # Baseline: the same seeded database, no retention.
    workdir = tmp / f"{store.name}-baseline"
    workdir.mkdir()
    if options.wait_idle > 0:
        bench.wait_for_idle(options.wait_idle)
    store.checkout(size, workdir)
    try:
        log(f"{store.name}: baseline, {size:,} completed promises stored, no retention")
        duration_ns = int(options.baseline_duration * 1e9)

        def baseline_done(samples: list[Sample], warm_end_ns: int) -> bool:
            return bool(samples) and samples[-1].at_ns >= warm_end_ns + duration_ns

        run = run_loaded(store, workdir, options, [], baseline_done)
        phases = split_phases(
            run["requests"], run["samples"], run["warm_end_ns"], [False] * len(run["samples"])
        )
        out["baseline"] = phases["not_purging"].summary()
        out["baseline"]["errors"] = errors_of(run["requests"])
        out["baseline"]["slowest_tx_s"] = slowest_transaction(run["samples"][-1].tx_buckets)
        out["baseline"]["tx_over_100ms"] = tx_count_above(run["samples"][-1].tx_buckets, 0.1)
        log(f"  {out['baseline']['pairs_per_s']:.0f} pairs/s")
    finally:
        store.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    # With retention: the loop deletes the seeded rows while the load runs.
    workdir = tmp / f"{store.name}-purge"
    workdir.mkdir()
    if options.wait_idle > 0:
        bench.wait_for_idle(options.wait_idle)
    store.checkout(size, workdir)
    try:
        out["size_before"] = size_snapshot_offline(store, workdir)
        log(f"{store.name}: purge of {size:,} rows under load (retention {options.retention})")
        tail_ns = int(options.tail * 1e9)
        limit_ns = int(options.max_purge_wait * 1e9)
        done_at: list[int] = []

        def purge_done(samples: list[Sample], warm_end_ns: int) -> bool:
            if not samples:
                return False
            last = samples[-1]
            if not done_at and last.purged >= size:
                done_at.append(last.at_ns)
                log(f"  all {size:,} purged; {options.tail:g} s more of load")
            if done_at:
                return last.at_ns >= max(done_at[0], warm_end_ns) + tail_ns
            if last.at_ns - warm_end_ns > limit_ns:
                log(f"  purge not finished after {options.max_purge_wait:g} s: stopping")
                return True
            return False

        run = run_loaded(store, workdir, options, retention_args(options.retention), purge_done)
        samples: list[Sample] = run["samples"]
        purging = [False] + [
            samples[i].purged > samples[i - 1].purged for i in range(1, len(samples))
        ]
        phases = split_phases(run["requests"], samples, run["warm_end_ns"], purging)
        out["during_purge"] = phases["purging"].summary()
        out["same_server_not_purging"] = phases["not_purging"].summary()
        out["errors"] = errors_of(run["requests"])
        start = run["server_start_ns"]
        first_purge = next((s.at_ns for s in samples if s.purged > 0), None)
        at_warm_end = max((s.purged for s in samples if s.at_ns <= run["warm_end_ns"]), default=0.0)
        last = samples[-1]
        out["purge"] = {
            "purged": last.purged,
            "finished": bool(done_at),
            "seconds_to_all_from_server_start": (done_at[0] - start) / 1e9 if done_at else None,
            "server_ready_after_s": (run["ready_ns"] - start) / 1e9,
            "purged_before_measured_load": at_warm_end,
            "first_seen_purged_after_s": (first_purge - start) / 1e9 if first_purge else None,
            "passes": last.passes,
            "pass_seconds": last.pass_seconds,
            "rows_per_s": last.purged / last.pass_seconds if last.pass_seconds else None,
            "batches": math.ceil(last.purged / options.batch_size),
            "mean_batch_ms": (
                last.pass_seconds / math.ceil(last.purged / options.batch_size) * 1000
                if last.purged
                else None
            ),
            "seconds_purging_sampled": phases["purging"].seconds,
            "slowest_tx_s": slowest_transaction(last.tx_buckets),
            "slowest_batch_s": slowest_transaction(last.batch_buckets),
            "mean_timed_batch_ms": (
                last.batch_seconds / last.batch_buckets[math.inf] * 1000
                if last.batch_buckets.get(math.inf)
                else None
            ),
            "tx_over_100ms": tx_count_above(last.tx_buckets, 0.1),
            "seed_rows_left": seed_rows_left(store, workdir),
        }
        out["size_after"] = size_snapshot_offline(store, workdir)
        purge = out["purge"]
        log(
            f"  purged {purge['purged']:,.0f} in {purge['pass_seconds']:.1f} s of passes "
            f"({purge['passes']:.0f} passes); all gone "
            f"{purge['seconds_to_all_from_server_start'] or float('nan'):.1f} s after start"
        )
        out["ratios"] = {}
        for key in ("create_p50_ms", "create_p99_ms", "complete_p50_ms", "complete_p99_ms"):
            mine, base = out["during_purge"].get(key), out["baseline"].get(key)
            out["ratios"][key] = mine / base if mine is not None and base else None
        mine, base = out["during_purge"].get("pairs_per_s"), out["baseline"].get("pairs_per_s")
        out["ratios"]["pairs_per_s"] = mine / base if mine is not None and base else None
    finally:
        store.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def size_snapshot_offline(store: scale.ScaleStore, workdir: Path) -> dict[str, Any] | None:
    with contextlib.suppress(Exception):
        return size_snapshot(store, workdir)
    return None


# --------------------------------------------------------------------------------------------
# Part 2: flat size.


class Vacuum:
    """PostgreSQL only, `--vacuum-every` > 0: a plain `VACUUM promises, promise_tags` every so
    many seconds, in a thread, one at a time: what autovacuum would do on a server where it is
    on (the test machine's PostgreSQL runs with `autovacuum = off`)."""

    def __init__(self, store: scale.ScaleStore, workdir: Path, every_s: float) -> None:
        self._url = None
        if isinstance(store, scale.PostgresScale) and every_s > 0:
            self._url = database_url(store, workdir)
        self._every_ns = int(every_s * 1e9)
        self._last_ns = time.monotonic_ns()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def maybe(self, now_ns: int) -> None:
        if self._url is None or now_ns < self._last_ns + self._every_ns:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._last_ns = now_ns
        url = self._url

        def run() -> None:
            with contextlib.suppress(Exception):
                bench.run_sql(url, "VACUUM promises, promise_tags")
                self.runs += 1

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()


def measure_flat(store: scale.ScaleStore, options: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    store.prepare(0)
    workdir = tmp / f"{store.name}-flat"
    workdir.mkdir()
    if options.wait_idle > 0:
        bench.wait_for_idle(options.wait_idle)
    store.checkout(0, workdir)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"retention": options.flat_retention, "rows": rows}
    interval_ns = int(options.flat_interval * 1e9)
    end_ns: list[int] = []
    marks: list[tuple[int, float]] = []  # (time, purged so far) at each row
    vacuum = Vacuum(store, workdir, options.vacuum_every)
    if isinstance(store, scale.PostgresScale):
        out["autovacuum"] = bench.run_sql(store.dsn, "SHOW autovacuum")[0][0][0]
        out["vacuum_every"] = options.vacuum_every

    def flat_done(samples: list[Sample], warm_end_ns: int) -> bool:
        now = time.monotonic_ns()
        vacuum.maybe(now)
        if not end_ns:
            end_ns.append(warm_end_ns + int(options.flat_duration * 1e9))
            marks.append((warm_end_ns, 0.0))
            time.sleep(max(0, warm_end_ns - now) / 1e9)
            rows.append({"t": 0.0} | size_snapshot(store, workdir))
            return False
        if now >= marks[-1][0] + interval_ns:
            purged = samples[-1].purged if samples else 0.0
            marks.append((now, purged))
            rows.append(
                {"t": (now - marks[0][0]) / 1e9, "purged": purged} | size_snapshot(store, workdir)
            )
            log(
                f"  t={rows[-1]['t']:.0f} s: {rows[-1]['promises']:,} promises, "
                f"{rows[-1]['database'] / 2**20:.1f} MiB"
            )
        return now >= end_ns[0]

    log(
        f"{store.name}: flat size, retention {options.flat_retention}, "
        f"{options.flat_duration:g} s of load"
    )
    try:
        run = run_loaded(store, workdir, options, retention_args(options.flat_retention), flat_done)
        requests: Requests = run["requests"]
        times = [t for t, _ in marks]
        # Pairs/s and create p99 per row's interval.
        per: list[list[int]] = [[] for _ in times]
        completes = [0] * len(times)
        for finished, latency in zip(requests.create_at, requests.create_ns, strict=True):
            index = bisect.bisect_left(times, finished)
            if 0 < index < len(times):
                per[index].append(latency)
        for finished in requests.complete_at:
            index = bisect.bisect_left(times, finished)
            if 0 < index < len(times):
                completes[index] += 1
        for index in range(1, min(len(times), len(rows))):
            seconds = (times[index] - times[index - 1]) / 1e9
            rows[index]["pairs_per_s"] = completes[index] / seconds
            rows[index]["create_p99_ms"] = percentile_ms(per[index], 0.99)
        out["errors"] = errors_of(requests)
        out["vacuum_runs"] = vacuum.runs
        last = run["samples"][-1] if run["samples"] else None
        out["passes"] = last.passes if last else None
        out["purged"] = last.purged if last else None
    except Exception as error:
        out["failure"] = f"{type(error).__name__}: {error}"
        log(f"  FAILED: {out['failure']}")
    finally:
        store.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# Part 3: bytes per promise.


def measure_sizing(
    store: scale.ScaleStore, options: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    size = options.size
    objects: dict[int, dict[str, int]] = {}
    for n in (0, size):
        store.prepare(n)
        workdir = tmp / f"{store.name}-sizing-{n}"
        workdir.mkdir()
        store.checkout(n, workdir)
        try:
            if isinstance(store, scale.PostgresScale):
                url = database_url(store, workdir)
                objects[n] = postgres_objects(url)
            else:
                objects[n] = sqlite_objects(workdir / "bench.db")
        finally:
            store.release(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
    per: dict[str, dict[str, float]] = {}
    for name, value in objects[size].items():
        empty = objects[0].get(name, 0)
        per[name] = {
            "empty": empty,
            "seeded": value,
            "bytes_per_promise": (value - empty) / size if size else 0.0,
        }
    return {"size": size, "objects": per}


# --------------------------------------------------------------------------------------------
# Report.


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def num(value: float | None, pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def bound(value: tuple[float, float] | list[float] | None) -> str:
    if not value:
        return "-"
    low, high = value
    return f"{low * 1000:g}-{high * 1000:g} ms"


def purge_table(name: str, result: dict[str, Any]) -> list[str]:
    if result.get("failure"):
        return [f"### {name}: purge under load FAILED: {result['failure']}"]
    base, during, idle = (
        result["baseline"],
        result["during_purge"],
        result["same_server_not_purging"],
    )
    purge, ratios = result["purge"], result["ratios"]
    lines = [
        f"### {name}: purge of {result['size']:,} completed promises under load",
        "",
        "| | baseline (no retention) | during the purge | same server, not purging "
        "| purge / baseline |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def row(label: str, key: str, fmt: Any, ratio_key: str | None = None) -> None:
        cells = [fmt(base.get(key)), fmt(during.get(key)), fmt(idle.get(key))]
        last = ratio(ratios.get(ratio_key)) if ratio_key else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {last} |")

    row("seconds measured", "seconds", lambda v: num(v, "{:.1f}"))
    row("pairs/s", "pairs_per_s", num, "pairs_per_s")
    row("create p50 ms", "create_p50_ms", ms, "create_p50_ms")
    row("create p99 ms", "create_p99_ms", ms, "create_p99_ms")
    row("create max ms", "create_max_ms", ms)
    row("complete p50 ms", "complete_p50_ms", ms, "complete_p50_ms")
    row("complete p99 ms", "complete_p99_ms", ms, "complete_p99_ms")
    row("complete max ms", "complete_max_ms", ms)
    row("server CPU %", "server_cpu_percent", num)
    if name == "postgres":
        row("database CPU %", "database_cpu_percent", num)
    row("other processes CPU %", "other_processes_cpu_percent", num)
    lines += [
        "",
        "| purge | |",
        "| --- | ---: |",
        f"| rows purged | {num(purge['purged'])} (seeded rows left: "
        f"{num(purge['seed_rows_left'])}) |",
        f"| loop passes / their summed duration | {num(purge['passes'])} / "
        f"{num(purge['pass_seconds'], '{:.1f}')} s |",
        f"| purge rate (rows / pass time) | {num(purge['rows_per_s'])} rows/s |",
        f"| batches / mean batch (pass time / batches) | {num(purge['batches'])} / "
        f"{num(purge['mean_batch_ms'], '{:.1f}')} ms |",
        f"| all rows gone, from server start | "
        f"{num(purge['seconds_to_all_from_server_start'], '{:.1f}')} s (server ready after "
        f"{num(purge['server_ready_after_s'], '{:.1f}')} s; purged before the measured load: "
        f"{num(purge['purged_before_measured_load'])}) |",
        f"| purge batch: mean / slowest (histogram bucket) | "
        f"{num(purge.get('mean_timed_batch_ms'), '{:.1f}')} ms / "
        f"{bound(purge.get('slowest_batch_s'))} |",
        f"| slowest store transaction (histogram bucket): retention / baseline | "
        f"{bound(purge['slowest_tx_s'])} / {bound(base.get('slowest_tx_s'))} |",
        f"| store transactions over 100 ms: retention / baseline | "
        f"{num(purge['tx_over_100ms'])} / {num(base.get('tx_over_100ms'))} |",
        f"| database size MiB before / after the purge | "
        f"{mib((result.get('size_before') or {}).get('database'))} / "
        f"{mib((result.get('size_after') or {}).get('database'))} |",
        f"| request errors (baseline / retention) | {base.get('errors') or 0} / "
        f"{result.get('errors') or 0} |",
    ]
    return lines


def flat_table(name: str, result: dict[str, Any]) -> list[str]:
    if result.get("failure"):
        return [f"### {name}: flat size FAILED: {result['failure']}"]
    postgres = name == "postgres"
    lines = [
        f"### {name}: size under load with retention {result['retention']} "
        f"(loop passes: {num(result.get('passes'))})"
        + (
            f"; PostgreSQL autovacuum {result.get('autovacuum')}, VACUUM by the script every "
            f"{result.get('vacuum_every', 0):g} s ({result.get('vacuum_runs', 0)} runs)"
            if postgres
            else ""
        ),
        "",
        "| t s | promises | purged so far | pairs/s | create p99 ms | "
        + (
            "database MiB | promises table MiB | promise_tags MiB | dead tuples | vacuums |"
            if postgres
            else "file + WAL MiB | free pages in file MiB |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | "
        + ("---: | ---: | ---: | ---: | ---: |" if postgres else "---: | ---: |"),
    ]
    for row in result["rows"]:
        cells = [
            f"{row['t']:.0f}",
            num(row.get("promises")),
            num(row.get("purged")),
            num(row.get("pairs_per_s")),
            ms(row.get("create_p99_ms")),
        ]
        if postgres:
            cells += [
                mib(row.get("database")),
                mib(row.get("promises_bytes")),
                mib(row.get("tags_bytes")),
                num(row.get("dead_tuples")),
                num(row.get("vacuums")),
            ]
        else:
            cells += [
                f"{mib(row.get('file'))} + {mib(row.get('wal'))}",
                mib(row.get("free")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def sizing_table(name: str, result: dict[str, Any]) -> list[str]:
    if result.get("failure"):
        return [f"### {name}: bytes per promise FAILED: {result['failure']}"]
    lines = [
        f"### {name}: bytes per promise ({result['size']:,} seeded, completed, 2 tags)",
        "",
        "| object | empty database bytes | seeded bytes | bytes per promise |",
        "| --- | ---: | ---: | ---: |",
    ]
    for object_name, values in result["objects"].items():
        if values["seeded"] == values["empty"] and not object_name.startswith("("):
            continue  # tables the seeding does not touch
        lines.append(
            f"| {object_name.replace('  ', '- ')} | {values['empty']:,} | {values['seeded']:,} "
            f"| {values['bytes_per_promise']:,.1f} |"
        )
    return lines


def flagged(report: dict[str, Any]) -> bool:
    for result in report["stores"].values():
        purge = result.get("purge")
        if purge is not None:
            if purge.get("failure") or purge.get("errors") or (purge["baseline"].get("errors")):
                return True
            if not purge["purge"]["finished"]:
                return True
        flat = result.get("flat")
        if flat is not None and (flat.get("failure") or flat.get("errors")):
            return True
        sizing = result.get("sizing")
        if sizing is not None and sizing.get("failure"):
            return True
    return False


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Retention under load (purge, flat size) and bytes per promise."
    )
    parser.add_argument(
        "--store", choices=["sqlite", "postgres", "both"], default="both", help="(both)"
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: purge,flat,sizing (all)"
    )
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: small and short")
    parser.add_argument("--size", type=int, help="promises seeded (1,000,000; quick 20,000)")
    parser.add_argument(
        "--retention",
        default="1h",
        help="purge part: the server's retention (1h; seeds are 1 day old)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="system.retention.batchSize given to the server (500, its default)",
    )
    parser.add_argument("--connections", type=int, default=64, help="load connections (64)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds of load first (2)")
    parser.add_argument("--baseline-duration", type=float, help="baseline seconds (30)")
    parser.add_argument("--tail", type=float, help="seconds of load after the purge ended (10)")
    parser.add_argument(
        "--max-purge-wait", type=float, default=900.0, help="give up on the purge after (900 s)"
    )
    parser.add_argument(
        "--sample-interval", type=float, default=0.25, help="/metrics sampling period (0.25 s)"
    )
    parser.add_argument("--flat-duration", type=float, help="flat part: seconds of load (180)")
    parser.add_argument("--flat-interval", type=float, help="flat part: seconds per row (15)")
    parser.add_argument("--flat-retention", help="flat part: the server's retention (10s)")
    parser.add_argument(
        "--vacuum-every",
        type=float,
        default=0.0,
        help="flat part, PostgreSQL: `VACUUM promises, promise_tags` every so many seconds, "
        "for a server running with autovacuum off (0: never)",
    )
    scale.add_run_arguments(parser)
    options = parser.parse_args(argv)
    defaults = QUICK if options.quick else FULL
    for key, value in defaults.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    options.parts = [part for part in options.parts.split(",") if part]
    if not options.parts or any(part not in PARTS for part in options.parts):
        parser.error(f"--parts takes some of {','.join(PARTS)}")
    if options.size < 1:
        parser.error("--size must be at least 1")
    options.cache_dir = options.cache_dir.expanduser()
    if options.batch_size != 500:
        options.ours_arg.append(f"--system-retention-batch-size {options.batch_size}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    names = ["sqlite", "postgres"] if options.store == "both" else [options.store]
    report: dict[str, Any] = {
        "machine": bench.machine() | {"uvloop_installed": scale.uvloop_version()},
        "git": scale.git_state(),
        "config": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(options).items()
            if key not in ("json", "json_file", "dsn")
        },
        "stores": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="resonate-retention-") as tmp:
        for name in names:
            store = scale.STORES[name](options, pending_every=0)
            result: dict[str, Any] = {}
            report["stores"][name] = result
            for part, measure in (
                ("purge", measure_purge),
                ("flat", measure_flat),
                ("sizing", measure_sizing),
            ):
                if part not in options.parts:
                    continue
                log(f"== {name}: {part}")
                try:
                    result[part] = measure(store, options, Path(tmp))
                except Exception as error:
                    log(f"  FAILED: {type(error).__name__}: {error}")
                    result[part] = {"failure": f"{type(error).__name__}: {error}"}
    report["seconds"] = round(time.monotonic() - started, 1)
    failed = flagged(report)
    if options.json_file:
        options.json_file.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if options.json:
        print(json.dumps(report, indent=2, default=str))
        return 1 if failed else 0
    machine = report["machine"]
    print(
        f"## Retention: {machine['cpus']} CPUs, {machine['memory_gib']} GiB, Python "
        f"{machine['python']}, SQLite {machine['sqlite']}, uvloop installed: "
        f"{machine['uvloop_installed'] or 'no'}, {machine['date']}"
    )
    print(f"git: {report['git']['head']}" + (" (dirty)" if report["git"]["dirty"] else ""))
    print(
        f"load: {options.connections} connections, {options.warmup:g} s warmup; purge: "
        f"{options.size:,} rows, retention {options.retention}, batch {options.batch_size}; "
        f"flat: {options.flat_duration:g} s, retention {options.flat_retention}; "
        f"run took {report['seconds']:.0f} s"
    )
    for name, result in report["stores"].items():
        for part, table in (
            ("purge", purge_table),
            ("flat", flat_table),
            ("sizing", sizing_table),
        ):
            if part in result:
                print()
                print("\n".join(table(name, result[part])))
    if failed:
        print("\nRUN FLAGGED: failures, errors or an unfinished purge above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
