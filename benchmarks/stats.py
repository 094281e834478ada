"""The dashboard reads, GET /stats and GET /stuck, on a store holding a million promises.

    python benchmarks/stats.py                                 # SQLite, then PostgreSQL
    python benchmarks/stats.py --store sqlite --promises 100000
    python benchmarks/stats.py --store postgres --dsn postgresql://postgres@db:5432/postgres
    python benchmarks/stats.py --json

For each store: a fresh database (a temp file; on PostgreSQL a database created from `--dsn`
and dropped afterwards), migrated by `resonate migrate up`, filled by bulk SQL with
`--promises` promises (1% PENDING, the rest completed: 93% RESOLVED, 3% REJECTED, 1% CANCELED,
2% TIMEDOUT) and `--tasks` tasks (97% COMPLETED, 1% ENQUEUED, 2% CLAIMED, one in a thousand
issued 5 times), 1,000 schedules and 1,000 locks (half of them held past half their ttl).
PostgreSQL then gets `VACUUM ANALYZE`, as autovacuum would (this box runs with autovacuum off).
Nothing is overdue, so the server's loops write nothing while it is measured.

Measured, `--calls` times each (50) unless said:

- raw count: `Transaction.count_records` through `Store.read`, in this process, before the
  server starts: the statement the cache saves, i.e. what a GET /stats costs when its count
  has aged;
- GET /stats, misses: `--misses` calls (10), each after the cache's age has passed
  (`countedAt` is checked to have moved);
- GET /stats, back to back: what callers get from the shared count (a miss whenever it ages);
- GET /stuck with its defaults (never cached: short indexed range scans, 20 items at most).

Latencies are wall-clock per request over one keep-alive connection on loopback; percentiles
are nearest-rank. The plans of the dashboard statements at this size are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_DSN = os.environ.get(
    "RESONATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DAY_MS = 86_400_000
PARAM = b'{"func":"bench","args":[1,2,3],"kwargs":{}}'
VALUE = b'{"result":42}'
DASHBOARD_STATEMENTS = (
    "count_records",
    "stuck_promises",
    "tasks_with_lease_ending",
    "reissued_tasks",
    "overdue_schedules",
    "stale_locks",
)

# The fill, as one INSERT … SELECT per table over a series of integers `i` (the dialects differ
# only in how the series is made). States by `i % 100`: see the module docstring.
PROMISE_STATE = (
    "CASE WHEN i % 100 = 0 THEN 1 WHEN i % 100 <= 3 THEN 4 WHEN i % 100 = 4 THEN 8"
    " WHEN i % 100 <= 6 THEN 16 ELSE 2 END"
)
TASK_STATE = "CASE WHEN i % 100 = 0 THEN 2 WHEN i % 100 <= 2 THEN 4 ELSE 8 END"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 2),
        "p99_ms": round(percentile(samples_ms, 0.99), 2),
        "min_ms": round(min(samples_ms), 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- stores -----------------------------------------------------------------------------------


class SqliteTarget:
    name = "sqlite"

    def __init__(self, workdir: Path, options: argparse.Namespace) -> None:
        self.path = workdir / "stats.db"

    def args(self) -> list[str]:
        return ["--aio-store-sqlite-path", str(self.path)]

    def fill(self, promises: int, tasks: int, now: int) -> None:
        series = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            conn.execute(
                f"{series} INSERT INTO promises (id, state, param_data, value_data, timeout,"
                " created_on, completed_on)"
                f" SELECT 'bench-' || i, s, ?, CASE s WHEN 1 THEN NULL ELSE ? END, ?, ?,"
                " CASE s WHEN 1 THEN NULL ELSE ? END"
                f" FROM (SELECT i, {PROMISE_STATE} AS s FROM n)",
                (promises, PARAM, VALUE, now + DAY_MS, now - DAY_MS, now - DAY_MS),
            )
            self._fill_others(conn, series, tasks, now)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _fill_others(self, conn: sqlite3.Connection, series: str, tasks: int, now: int) -> None:
        conn.execute(
            f"{series} INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg,"
            " timeout, counter, ttl, expires_at, created_on, completed_on)"
            " SELECT '__invoke:bench-' || i, CASE s WHEN 4 THEN 'worker' END, s, 'bench-' || i,"
            ' \'"poll://any@bench"\', \'{"type":"invoke"}\', ?,'
            " CASE WHEN i % 1000 = 0 THEN 5 ELSE 1 END, CASE s WHEN 4 THEN ? ELSE 0 END,"
            " CASE s WHEN 8 THEN 0 ELSE ? END, ?, CASE s WHEN 8 THEN ? END"
            f" FROM (SELECT i, {TASK_STATE} AS s FROM n)",
            (tasks, now + DAY_MS, DAY_MS, now + DAY_MS, now - DAY_MS, now - DAY_MS),
        )
        conn.execute(
            f"{series} INSERT INTO schedules (id, cron, promise_id, promise_timeout,"
            " next_run_time, created_on)"
            " SELECT 'bench-' || i, '0 0 1 1 *', '{{.id}}.{{.timestamp}}', 60000, ?, ? FROM n",
            (1000, now + 30 * DAY_MS, now - DAY_MS),
        )
        conn.execute(
            f"{series} INSERT INTO locks (resource_id, execution_id, process_id, ttl, expires_at)"
            " SELECT 'bench-' || i, 'e' || i, 'p', 10 * ?, CASE WHEN i % 2 = 0 THEN ? ELSE ? END"
            " FROM n",
            (1000, DAY_MS, now + DAY_MS, now + 9 * DAY_MS),
        )

    def finish_fill(self) -> None:
        """Nothing: the server never runs ANALYZE, so neither does the benchmark."""

    def store(self) -> Any:
        from resonate.store.sqlite.store import SqliteStore

        return SqliteStore(str(self.path))

    def plans(self, now: int) -> dict[str, list[str]]:
        from resonate.store.sqlite.store import STATEMENTS

        conn = sqlite3.connect(self.path)
        try:
            return {
                name: [
                    str(row[3])
                    for row in conn.execute(
                        "EXPLAIN QUERY PLAN " + STATEMENTS[name], _args(name, now)
                    )
                ]
                for name in DASHBOARD_STATEMENTS
            }
        finally:
            conn.close()

    def size(self) -> str:
        return f"{self.path.stat().st_size / 2**20:.0f} MiB"

    def teardown(self) -> None:
        pass


class PostgresTarget:
    name = "postgres"

    def __init__(self, workdir: Path, options: argparse.Namespace) -> None:
        self.admin_dsn = options.dsn
        self.database = f"resonate_bench_stats_{secrets.token_hex(3)}"
        parts = urllib.parse.urlsplit(self.admin_dsn)
        self.dsn = urllib.parse.urlunsplit(parts._replace(path="/" + self.database))
        # template0: test suites on a shared box connect to template1 now and then.
        self._sql(self.admin_dsn, f'CREATE DATABASE "{self.database}" TEMPLATE template0')

    def _sql(self, dsn: str, *statements: str, args: tuple[Any, ...] = ()) -> list[list[Any]]:
        import asyncpg

        async def run() -> list[list[Any]]:
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                return [[tuple(row) for row in await conn.fetch(sql, *args)] for sql in statements]
            finally:
                await conn.close()

        return asyncio.run(run())

    def args(self) -> list[str]:
        return ["--aio-store-postgres-enable", "--aio-store-postgres-url", self.dsn]

    def fill(self, promises: int, tasks: int, now: int) -> None:
        self._sql(
            self.dsn,
            "INSERT INTO promises (id, state, param_data, value_data, timeout, created_on,"
            " completed_on)"
            " SELECT 'bench-' || i, s, $2::bytea, CASE s WHEN 1 THEN NULL ELSE $3::bytea END,"
            " $4::bigint, $5::bigint, CASE s WHEN 1 THEN NULL ELSE $5::bigint END"
            f" FROM (SELECT i, {PROMISE_STATE} AS s"
            " FROM generate_series(0, $1::int - 1) AS i) AS n",
            args=(promises, PARAM, VALUE, now + DAY_MS, now - DAY_MS),
        )
        self._sql(
            self.dsn,
            "INSERT INTO tasks (id, process_id, state, root_promise_id, recv, mesg, timeout,"
            " counter, ttl, expires_at, created_on, completed_on)"
            " SELECT '__invoke:bench-' || i, CASE s WHEN 4 THEN 'worker' END, s, 'bench-' || i,"
            ' \'"poll://any@bench"\'::bytea, \'{"type":"invoke"}\'::bytea, $2::bigint,'
            " CASE WHEN i % 1000 = 0 THEN 5 ELSE 1 END, CASE s WHEN 4 THEN $3::bigint ELSE 0 END,"
            " CASE s WHEN 8 THEN 0 ELSE $2::bigint END, $4::bigint,"
            " CASE s WHEN 8 THEN $4::bigint END"
            f" FROM (SELECT i, {TASK_STATE} AS s FROM generate_series(0, $1::int - 1) AS i) AS n",
            args=(tasks, now + DAY_MS, DAY_MS, now - DAY_MS),
        )
        self._sql(
            self.dsn,
            "INSERT INTO schedules (id, cron, promise_id, promise_timeout, next_run_time,"
            " created_on) SELECT 'bench-' || i, '0 0 1 1 *', '{{.id}}.{{.timestamp}}', 60000,"
            " $1::bigint, $2::bigint FROM generate_series(0, 999) AS i",
            args=(now + 30 * DAY_MS, now - DAY_MS),
        )
        self._sql(
            self.dsn,
            "INSERT INTO locks (resource_id, execution_id, process_id, ttl, expires_at)"
            " SELECT 'bench-' || i, 'e' || i, 'p', 10 * $1::bigint,"
            " CASE WHEN i % 2 = 0 THEN $2::bigint ELSE $3::bigint END"
            " FROM generate_series(0, 999) AS i",
            args=(DAY_MS, now + DAY_MS, now + 9 * DAY_MS),
        )

    def finish_fill(self) -> None:
        self._sql(self.dsn, "VACUUM ANALYZE")

    def store(self) -> Any:
        from resonate.store.postgres.store import PostgresStore

        return PostgresStore(self.dsn)

    def plans(self, now: int) -> dict[str, list[str]]:
        from resonate.store.postgres.store import STATEMENTS

        plans: dict[str, list[str]] = {}
        for name in DASHBOARD_STATEMENTS:
            (rows,) = self._sql(self.dsn, "EXPLAIN " + STATEMENTS[name], args=_args(name, now))
            plans[name] = [str(row[0]).strip() for row in rows if "Scan" in row[0]]
        return plans

    def size(self) -> str:
        (rows,) = self._sql(self.dsn, f"SELECT pg_size_pretty(pg_database_size('{self.database}'))")
        return str(rows[0][0])

    def teardown(self) -> None:
        try:
            self._sql(self.admin_dsn, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except Exception as error:  # a leftover database is not worth failing the run
            log(f"  could not drop database {self.database}: {error}")


TARGETS: dict[str, Callable[[Path, argparse.Namespace], Any]] = {
    "sqlite": SqliteTarget,
    "postgres": PostgresTarget,
}


def _args(name: str, now: int) -> tuple[int, ...]:
    if name == "count_records":
        return (now,)
    if name == "reissued_tasks":
        return (3, 20)
    if name == "tasks_with_lease_ending":
        return (now + 10_000, 20)
    return (now, 20)


# ---- measuring --------------------------------------------------------------------------------


def raw_counts(target: Any, calls: int) -> list[float]:
    """``calls`` counts through Store.read, in this process, in ms."""

    async def run() -> list[float]:
        store = target.store()
        await store.open(migrate_fresh=False)
        try:
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                await store.read(lambda tx, now=now_ms(): tx.count_records(now))
                samples.append((time.perf_counter() - started) * 1000)
            return samples
        finally:
            await store.close()

    return asyncio.run(run())


class Http:
    """One keep-alive connection; each call's wall-clock time in ms."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)

    def get(self, path: str) -> tuple[float, Any]:
        started = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        raw = response.read()
        took = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {raw[:200]!r}")
        return took, json.loads(raw)

    def close(self) -> None:
        self.connection.close()


def start_server(target: Any, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "resonate",
        "serve",
        "--api-http-addr",
        f"127.0.0.1:{port}",
        "--metrics-addr",
        f"127.0.0.1:{free_port()}",
        "--aio-poll-addr",
        f"127.0.0.1:{free_port()}",
        "--api-grpc-addr",
        f"127.0.0.1:{free_port()}",
        *target.args(),
    ]
    with (workdir / f"server-{target.name}.log").open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            client = Http(url)
            try:
                client.get("/readyz")
                return process, url
            finally:
                client.close()
        except (OSError, RuntimeError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure(name: str, options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    target = TARGETS[name](workdir, options)
    result: dict[str, Any] = {"store": name}
    try:
        migrate = [sys.executable, "-m", "resonate", "migrate", "up", *target.args()]
        subprocess.run(migrate, cwd=REPO_ROOT, check=True, capture_output=True)
        started = time.perf_counter()
        now = now_ms()
        target.fill(options.promises, options.tasks, now)
        target.finish_fill()
        result["fill_s"] = round(time.perf_counter() - started, 1)
        result["size"] = target.size()
        log(f"{name}: filled in {result['fill_s']} s ({result['size']})")
        result["plans"] = target.plans(now)
        result["raw_count"] = summary(raw_counts(target, options.calls))
        log(f"{name}: raw count {result['raw_count']}")

        process, url = start_server(target, workdir)
        client = Http(url)
        try:
            result.update(measure_http(client, options, result["raw_count"]["median_ms"]))
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=30)
    finally:
        target.teardown()
    return result


def measure_http(client: Http, options: argparse.Namespace, count_ms: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _, first = client.get("/stats")
    out["stats_body"] = {key: first[key] for key in ("promises", "tasks", "schedules", "locks")}
    # The server keeps a count for max(1 s, 20x the time it took): wait that out before each
    # miss, with a margin for a count that took longer this time.
    age_s = max(1.0, 20 * count_ms / 1000) + 0.3
    misses: list[float] = []
    counted_at = first["countedAt"]
    while len(misses) < options.misses:
        time.sleep(age_s)
        took, body = client.get("/stats")
        if body["countedAt"] != counted_at:
            misses.append(took)
        counted_at = body["countedAt"]
    out["stats_miss"] = summary(misses)
    log(f"  GET /stats, misses: {out['stats_miss']}")

    samples, counted = [], set()
    for _ in range(options.calls):
        took, body = client.get("/stats")
        samples.append(took)
        counted.add(body["countedAt"])
    out["stats_back_to_back"] = {**summary(samples), "counts_taken": len(counted)}
    log(f"  GET /stats, back to back: {out['stats_back_to_back']}")

    samples, sizes = [], {}
    for _ in range(options.calls):
        took, body = client.get("/stuck")
        samples.append(took)
        sizes = {key: len(body[key]) for key in ("promises", "tasks", "schedules", "locks")}
    out["stuck"] = {**summary(samples), "items": sizes}
    log(f"  GET /stuck: {out['stuck']}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--promises", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--misses", type=int, default=10)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL server to create on")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    options = parser.parse_args()
    names = ["sqlite", "postgres"] if options.store == "both" else [options.store]
    results = []
    with tempfile.TemporaryDirectory(prefix="resonate-stats-") as tmp:
        for name in names:
            results.append(measure(name, options, Path(tmp)))
    if options.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        print(
            f"\n== {result['store']}: {options.promises:,} promises, {options.tasks:,} tasks, "
            f"{result['size']}, filled in {result['fill_s']} s"
        )
        for key in ("raw_count", "stats_miss", "stats_back_to_back", "stuck"):
            print(f"  {key:20} {result[key]}")
        print(f"  counts: {result['stats_body']}")
        for statement, plan in result["plans"].items():
            print(f"  plan {statement}: " + " | ".join(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
