"""How the server's cost grows with the data it keeps: N promises already stored, both stores.

For each store (`--store sqlite|postgres|both`) and each size N (`--sizes 0,1000000,5000000`)
the script starts `python -m resonate serve` on a copy of a database already holding N promises
and measures, in this order (so that reads and searches see exactly N seeded rows):

- `GET /promises/{id}` of random seeded promises: p50/p99 over `--reads` sequential requests;
- three searches, each timed over up to `--searches` sequential requests (or `--search-budget`
  seconds, at least 3 requests), p50/p99 and the rows of the first page:
  * selective: `GET /promises?id=*&tags[resonate:root]=root-<k>`, a value held by 10 promises
    (k random per request; at N=0 it matches nothing);
  * non-selective tag: `tags[resonate:invoke]=default`, held by every seeded promise (first page
    of 100, newest first);
  * state: `state=pending` (20% of the seeded promises are pending; first page of 100);
- create+complete pairs with the load driver of benchmarks/promises.py (imported from it: same
  raw HTTP/1.1 client, 64 closed-loop connections, warmup then `--duration` seconds): pairs/s,
  create/complete/pair p50 and p99, server CPU per request;
- the same load while one client issues selective searches back to back (closed loop, one in
  flight): the create p99 with and without concurrent searches, and the searches' own p50/p99;
- server RSS (VmRSS of /proc/<pid>/status) after start, after the reads and searches, and after
  the loads; the database's size on disk.

Then, once per store on an empty database, the poll (SSE) transport: `--poll-connections`
(1000) streams `GET /scale/w<i>` held open on the poll listener over raw asyncio streams (the
soft RLIMIT_NOFILE is raised in-process when needed; the server's `aio.poll.maxConnections` is
set above the count), server RSS before and after they connect (memory per connection), then
`--poll-tasks` promises created one after the other with the tag
`resonate:invoke: poll://any@scale/w<i>` (random i): the time from sending the create to its
invoke message arriving on stream i (p50/p99), with every stream connected.

Seeding (`--cache-dir`, default ~/.cache/resonate-bench). Seeded databases are built once and
reused; each run works on a copy, so runs start from the same state. The cache key is the store,
N, the number of migrations and a hash of the store's migration files, so a schema change
(e.g. a new migration) seeds afresh; entries of the same store and N with another key are
deleted when a new one is built. Rows are written by SQL through every migration's schema, so
triggers on `promises` (such as SQLite's migration 007, which keeps the `promise_tags` side
table) see each row exactly as they see the server's inserts; nothing bypasses SQL.

- The schema comes from `python -m resonate migrate up` with the run's store flags on an empty
  database (SQLite file or PostgreSQL database).
- Rows: id `seed-<n>` (n = 0..N-1), tags `{"resonate:root": "root-<n//10>", "resonate:invoke":
  "default"}` (so each root value is held by 10 promises), param data a 43-byte JSON; every 5th
  promise PENDING with a timeout a year ahead, the others RESOLVED with a value, completedOn and
  a timeout an hour after their creation; createdOn spread over the milliseconds before the seed.
  No tasks are created for them (a real `resonate:invoke` promise would have an invoke task):
  the promises table and its indexes are what grows.
- SQLite: `WITH RECURSIVE seq(n) ... INSERT INTO promises ... SELECT ... FROM seq`, 500,000 rows
  per transaction, with `PRAGMA synchronous=OFF` and a large page cache on the seeding connection
  only (the server opens its own with its configured synchronous=FULL); then a WAL checkpoint.
  The server's own statistics policy is kept (no ANALYZE: the server does not run one).
  Cached as `sqlite-n<N>-v<version>-<hash>.db`; each run copies it to its temp directory.
- PostgreSQL: a template database `resonate_scale_<dir>_n<N>_v<version>_<hash>` (<dir>: a hash
  of the cache directory) created from template0,
  migrated, filled by `INSERT INTO promises ... SELECT ... FROM generate_series(a, b)` in
  500,000-row transactions, then `VACUUM ANALYZE` (what autovacuum would reach on a database
  that has been running). Each run gets `CREATE DATABASE ... TEMPLATE <it> STRATEGY FILE_COPY`,
  dropped afterwards. A `postgres-n<N>-v<version>-<hash>.json` marker in the cache directory
  says the template is complete (written last).

    python benchmarks/scale.py --quick --store sqlite             # CI smoke: under a minute
    python benchmarks/scale.py --store both --sizes 0,1000000
    python benchmarks/scale.py --store sqlite --sizes 0,1000000,5000000 --json > scale.json

Nothing here asserts speed; the exit status is 1 only when a run failed or saw errors.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import random
import re
import resource
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import promises as bench  # benchmarks/promises.py, next to this file

REPO_ROOT = bench.REPO_ROOT
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "resonate-bench"
SEED_CHUNK = 500_000
PENDING_EVERY = 5  # every 5th seeded promise is PENDING
ROOT_FANOUT = 10  # promises per resonate:root value
YEAR_MS = 365 * 24 * bench.HOUR_MS
PARAM_BYTES = b'{"func":"bench","args":[1,2,3],"kwargs":{}}'
VALUE_BYTES = b'{"result":42}'
POLL_GROUP = "scale"
FIXTURE_ROOT = "fixture-root"  # the root of the promises created over HTTP at every size
QUICK = {
    "sizes": "0,20000",
    "warmup": 0.5,
    "duration": 2.0,
    "reads": 100,
    "searches": 10,
    "search_budget": 3.0,
    "poll_connections": 100,
    "poll_tasks": 50,
}
FULL = {
    "sizes": "0,1000000",
    "warmup": 2.0,
    "duration": 10.0,
    "reads": 300,
    "searches": 30,
    "search_budget": 20.0,
    "poll_connections": 1000,
    "poll_tasks": 300,
}


def log(message: str) -> None:
    bench.log(message)


# --------------------------------------------------------------------------------------------
# Seeded stores.


def migrations_key(store: str) -> tuple[int, str]:
    """(number of migrations, short hash of their files) of one store's schema."""
    folder = REPO_ROOT / "resonate" / "store" / store / "migrations"
    files = sorted(folder.glob("*.sql"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return len(files), digest.hexdigest()[:10]


def migrate_up(store_args: list[str]) -> None:
    command = [sys.executable, "-m", "resonate", "migrate", "up", *store_args]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"`resonate migrate up` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


@dataclass
class SeedInfo:
    size: int
    schema_version: int
    schema_hash: str
    seed_seconds: float  # how long building the cache entry took (migrate + insert + finish)
    seeded_at: str
    cached: bool  # True: reused from the cache in this run


class ScaleStore(abc.ABC):
    """One backend: builds seeded databases once (cached) and hands each run a fresh copy."""

    name: str
    profile: bench.StoreProfile

    def __init__(self, options: argparse.Namespace, pending_every: int = PENDING_EVERY) -> None:
        self.options = options
        self.cache_dir: Path = options.cache_dir
        self.version, self.hash = migrations_key(self.name)
        # Every pending_every-th seeded promise is PENDING; 0: all completed (retention.py).
        self.pending_every = pending_every
        self.variant = "" if pending_every == PENDING_EVERY else f"-p{pending_every}"

    def key(self, size: int) -> str:
        return f"{self.name}{self.variant}-n{size}-v{self.version}-{self.hash}"

    def marker(self, size: int) -> Path:
        return self.cache_dir / f"{self.key(size)}.json"

    def prepare(self, size: int) -> SeedInfo:
        """The cache entry for `size`, built if missing (or if `--reseed`)."""
        marker = self.marker(size)
        if marker.exists() and self.entry_exists(size) and not self.options.reseed:
            info = SeedInfo(**json.loads(marker.read_text()) | {"cached": True})
            log(
                f"{self.name} N={size:,}: cached {self.key(size)} "
                f"(seeded in {info.seed_seconds:.1f} s)"
            )
            return info
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        self.drop_stale(size)
        log(f"{self.name} N={size:,}: seeding {self.key(size)} ...")
        started = time.monotonic()
        self.build(size)
        info = SeedInfo(
            size=size,
            schema_version=self.version,
            schema_hash=self.hash,
            seed_seconds=round(time.monotonic() - started, 1),
            seeded_at=bench.machine()["date"],
            cached=False,
        )
        record = {k: v for k, v in info.__dict__.items() if k != "cached"}
        marker.write_text(json.dumps(record, indent=2) + "\n")
        log(f"{self.name} N={size:,}: seeded in {info.seed_seconds:.1f} s")
        return info

    def drop_stale(self, size: int) -> None:
        """Remove entries of the same store and size built for another schema."""
        for old in self.cache_dir.glob(f"{self.name}{self.variant}-n{size}-v*.json"):
            if old.stem != self.key(size):
                self.remove_entry(old.stem)
                old.unlink(missing_ok=True)
                log(f"  removed stale cache entry {old.stem}")

    # Per backend.
    @abc.abstractmethod
    def entry_exists(self, size: int) -> bool: ...

    @abc.abstractmethod
    def build(self, size: int) -> None: ...

    @abc.abstractmethod
    def remove_entry(self, key: str) -> None: ...

    @abc.abstractmethod
    def checkout(self, size: int, workdir: Path) -> None:
        """A fresh copy of the seeded store of `size` for one run in workdir."""
        ...

    def release(self, workdir: Path) -> None:
        return None

    @abc.abstractmethod
    def disk_bytes(self, workdir: Path) -> int | None: ...

    def server_args(self, workdir: Path) -> list[str]:
        return self.profile.ours_args(workdir)

    def database_pids(self, workdir: Path) -> list[int]:
        return self.profile.database_pids(workdir)


def seed_values(size: int, pending_every: int = PENDING_EVERY) -> dict[str, Any]:
    now = bench.now_ms()
    return {
        "base": now - size - 24 * bench.HOUR_MS,  # createdOn of seed-0; seed-n is base + n
        "far": now + YEAR_MS,
        "hour": bench.HOUR_MS,
        "every": pending_every,
        "fanout": ROOT_FANOUT,
    }


def chunks(size: int) -> Iterator[tuple[int, int]]:
    for first in range(0, size, SEED_CHUNK):
        yield first, min(size, first + SEED_CHUNK) - 1


SQLITE_SEED = """
WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n < :last)
INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, timeout,
                      idempotency_key_for_create, idempotency_key_for_complete, tags,
                      created_on, completed_on)
SELECT 'seed-' || n,
       CASE WHEN n % NULLIF(:every, 0) = 0 THEN 1 ELSE 2 END,
       NULL, :param, NULL,
       CASE WHEN n % NULLIF(:every, 0) = 0 THEN NULL ELSE :value END,
       CASE WHEN n % NULLIF(:every, 0) = 0 THEN :far ELSE :base + n + :hour END,
       NULL, NULL,
       '{"resonate:root":"root-' || (n / :fanout) || '","resonate:invoke":"default"}',
       :base + n,
       CASE WHEN n % NULLIF(:every, 0) = 0 THEN NULL ELSE :base + n + 5 END
FROM seq
"""


class SqliteScale(ScaleStore):
    name = "sqlite"

    def __init__(self, options: argparse.Namespace, pending_every: int = PENDING_EVERY) -> None:
        super().__init__(options, pending_every)
        self.profile = bench.SqliteProfile()

    def path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.db"

    def entry_exists(self, size: int) -> bool:
        return self.path(self.key(size)).exists()

    def remove_entry(self, key: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path(key)}{suffix}").unlink(missing_ok=True)

    def build(self, size: int) -> None:
        final = self.path(self.key(size))
        partial = final.with_suffix(".partial")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        migrate_up(["--aio-store-sqlite-path", str(partial)])
        conn = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")  # this connection only: seeding
            conn.execute("PRAGMA cache_size=-1048576")  # 1 GiB of page cache
            conn.execute("PRAGMA temp_store=MEMORY")
            values = seed_values(size, self.pending_every) | {
                "param": PARAM_BYTES,
                "value": VALUE_BYTES,
            }
            for first, last in chunks(size):
                started = time.monotonic()
                conn.execute("BEGIN")
                conn.execute(SQLITE_SEED, values | {"first": first, "last": last})
                conn.execute("COMMIT")
                log(f"  rows {first:,}..{last:,} in {time.monotonic() - started:.1f} s")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (count,) = conn.execute("SELECT count(*) FROM promises").fetchone()
            if count != size:
                raise RuntimeError(f"seeded {count} promises, expected {size}")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        partial.rename(final)

    def checkout(self, size: int, workdir: Path) -> None:
        started = time.monotonic()
        shutil.copyfile(self.path(self.key(size)), workdir / "bench.db")
        log(f"  copied the seeded database in {time.monotonic() - started:.1f} s")

    def disk_bytes(self, workdir: Path) -> int | None:
        return sum(
            path.stat().st_size
            for suffix in ("", "-wal", "-shm")
            if (path := Path(f"{workdir / 'bench.db'}{suffix}")).exists()
        )


POSTGRES_SEED = """
INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, timeout,
                      idempotency_key_for_create, idempotency_key_for_complete, tags,
                      created_on, completed_on)
SELECT 'seed-' || n,
       CASE WHEN n % NULLIF($3, 0) = 0 THEN 1 ELSE 2 END,
       NULL, $4::bytea, NULL,
       CASE WHEN n % NULLIF($3, 0) = 0 THEN NULL ELSE $5::bytea END,
       CASE WHEN n % NULLIF($3, 0) = 0 THEN $6 ELSE $7 + n + $8 END,
       NULL, NULL,
       jsonb_build_object('resonate:root', 'root-' || (n / $9), 'resonate:invoke', 'default'),
       $7 + n,
       CASE WHEN n % NULLIF($3, 0) = 0 THEN NULL ELSE $7 + n + 5 END
FROM generate_series($1::bigint, $2::bigint) AS n
"""


class PostgresRunProfile(bench.PostgresProfile):
    """promises.py's PostgreSQL profile (flags, teardown, the database's processes for CPU),
    with each run's database copied from a seeded template instead of template0."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self.template = "template0"

    def setup(self, workdir: Path, options: argparse.Namespace) -> None:
        database = self._database(workdir)
        bench.run_sql(
            self._dsn,
            f'DROP DATABASE IF EXISTS "{database}"',
            f'CREATE DATABASE "{database}" TEMPLATE "{self.template}" STRATEGY FILE_COPY',
        )

    def database(self, workdir: Path) -> str:
        return self._database(workdir)


class PostgresScale(ScaleStore):
    name = "postgres"

    def __init__(self, options: argparse.Namespace, pending_every: int = PENDING_EVERY) -> None:
        super().__init__(options, pending_every)
        self.dsn: str = options.dsn
        self.profile = PostgresRunProfile(self.dsn)

    def template(self, key: str) -> str:
        """The template database of a cache entry; the cache directory is part of its name,
        so two cache directories never share (and drop) each other's templates."""
        where = hashlib.sha256(str(self.cache_dir.resolve()).encode()).hexdigest()[:6]
        return f"resonate_scale_{where}_" + key.removeprefix("postgres-").replace("-", "_")

    def entry_exists(self, size: int) -> bool:
        name = self.template(self.key(size))
        rows = bench.run_sql(self.dsn, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        return bool(rows[0])

    def remove_entry(self, key: str) -> None:
        bench.run_sql(self.dsn, f'DROP DATABASE IF EXISTS "{self.template(key)}" WITH (FORCE)')

    def build(self, size: int) -> None:
        import asyncpg

        name = self.template(self.key(size))
        bench.run_sql(
            self.dsn,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE template0',
        )
        url = bench.with_database(self.dsn, name)
        migrate_up(["--aio-store-postgres-enable", "--aio-store-postgres-url", url])
        values = seed_values(size, self.pending_every)

        async def fill() -> int:
            conn = await asyncpg.connect(url, timeout=10)
            try:
                await conn.execute("SET synchronous_commit = off")  # this session only
                for first, last in chunks(size):
                    started = time.monotonic()
                    await conn.execute(
                        POSTGRES_SEED,
                        first,
                        last,
                        self.pending_every,
                        PARAM_BYTES,
                        VALUE_BYTES,
                        values["far"],
                        values["base"],
                        values["hour"],
                        ROOT_FANOUT,
                        timeout=3600,
                    )
                    log(f"  rows {first:,}..{last:,} in {time.monotonic() - started:.1f} s")
                started = time.monotonic()
                await conn.execute("VACUUM ANALYZE", timeout=3600)
                await conn.execute("CHECKPOINT", timeout=3600)
                log(f"  VACUUM ANALYZE + CHECKPOINT in {time.monotonic() - started:.1f} s")
                return int(await conn.fetchval("SELECT count(*) FROM promises"))
            finally:
                await conn.close()

        count = asyncio.run(fill())
        if count != size:
            raise RuntimeError(f"seeded {count} promises, expected {size}")

    def checkout(self, size: int, workdir: Path) -> None:
        started = time.monotonic()
        self.profile.template = self.template(self.key(size))
        self.profile.setup(workdir, self.options)
        log(f"  created the run database from its template in {time.monotonic() - started:.1f} s")

    def release(self, workdir: Path) -> None:
        self.profile.teardown(workdir)

    def disk_bytes(self, workdir: Path) -> int | None:
        with contextlib.suppress(Exception):
            name = self.profile.database(workdir)
            rows = bench.run_sql(self.dsn, f"SELECT pg_database_size('{name}')")
            return int(rows[0][0][0])
        return None


STORES: dict[str, type[ScaleStore]] = {"sqlite": SqliteScale, "postgres": PostgresScale}


# --------------------------------------------------------------------------------------------
# Server and measurements.


def rss_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


@dataclass
class Running:
    server: bench.Server
    url: str
    poll_port: int
    metrics_port: int


@contextlib.contextmanager
def running_server(
    store: ScaleStore, workdir: Path, options: argparse.Namespace, extra: Sequence[str] = ()
) -> Iterator[Running]:
    host, port, poll_port = "127.0.0.1", bench.free_port(), bench.free_port()
    metrics_port = bench.free_port()
    url = f"http://{host}:{port}"
    command = [sys.executable, "-m", "resonate", "serve", "--api-http-addr", f"{host}:{port}"]
    command += ["--metrics-addr", f"{host}:{metrics_port}"]
    command += ["--aio-poll-addr", f"{host}:{poll_port}", *store.server_args(workdir), *extra]
    command += ["--api-grpc-addr", f"{host}:{bench.free_port()}"]
    for arg in options.ours_arg:
        command += shlex.split(arg)
    server = bench.start_server(command, url, workdir / "server.log")
    try:
        started = time.monotonic()
        bench.wait_ready(server, options.ready_timeout)
        log(f"  server ready in {time.monotonic() - started:.1f} s (pid {server.pid})")
        bench.preflight(url, check_bodies=True)
        yield Running(server, url, poll_port, metrics_port)
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"server exited with status {server.process.returncode}")
    except BaseException as error:
        tail = server.log_tail()
        if tail and not isinstance(error, KeyboardInterrupt):
            log("  server log (tail):\n    " + tail.replace("\n", "\n    "))
        raise
    finally:
        server.stop()


class KeepAlive:
    """Sequential timed requests over one keep-alive connection (http.client)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes, int]:
        """(status, body, elapsed ns); status 0 when the connection failed."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
            started = time.perf_counter_ns()
            try:
                self._conn.request("GET", path)
                response = self._conn.getresponse()
                body = response.read()
                return response.status, body, time.perf_counter_ns() - started
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    return 0, b"", time.perf_counter_ns() - started
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Timed:
    """Latencies of one kind of request."""

    samples: array[int] = field(default_factory=lambda: array("q"))
    errors: dict[str, int] = field(default_factory=dict)
    rows: int | None = None  # promises in the first answer's page (searches)

    def add(self, status: int, elapsed_ns: int, ok: tuple[int, ...] = (200,)) -> None:
        self.samples.append(elapsed_ns)
        if status not in ok:
            key = str(status or "conn")
            self.errors[key] = self.errors.get(key, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "n": len(self.samples),
            "p50_ms": bench.percentile_ms(self.samples, 0.50),
            "p99_ms": bench.percentile_ms(self.samples, 0.99),
            "max_ms": max(self.samples) / 1e6 if self.samples else None,
            "rows": self.rows,
            "errors": self.errors,
        }


def seed_id(size: int, rng: random.Random) -> str:
    return f"seed-{rng.randrange(size)}"


def selective_path(size: int, rng: random.Random) -> str:
    """A search for one resonate:root value held by 10 promises: a random seeded root, or at
    N=0 the fixture's."""
    root = f"root-{rng.randrange(size // ROOT_FANOUT)}" if size >= ROOT_FANOUT else FIXTURE_ROOT
    return "/promises?" + urllib.parse.urlencode({"id": "*", "tags[resonate:root]": root})


SEARCHES: dict[str, Callable[[int, random.Random], str]] = {
    "search_selective": selective_path,
    "search_tag_all": lambda size, rng: (
        "/promises?" + urllib.parse.urlencode({"id": "*", "tags[resonate:invoke]": "default"})
    ),
    "search_state_pending": lambda size, rng: "/promises?id=*&state=pending",
}


def time_reads(url: str, size: int, fixture: list[str], count: int) -> Timed:
    rng, client, timed = random.Random(1), KeepAlive(url), Timed()
    try:
        for _ in range(count):
            promise_id = seed_id(size, rng) if size else rng.choice(fixture)
            status, _, elapsed = client.get(f"/promises/{urllib.parse.quote(promise_id, safe='')}")
            timed.add(status, elapsed)
    finally:
        client.close()
    return timed


def time_search(url: str, size: int, kind: str, count: int, budget_s: float) -> Timed:
    rng, client, timed = random.Random(2), KeepAlive(url), Timed()
    deadline = time.monotonic() + budget_s
    try:
        while len(timed.samples) < count and (
            len(timed.samples) < 3 or time.monotonic() < deadline
        ):
            status, body, elapsed = client.get(SEARCHES[kind](size, rng))
            timed.add(status, elapsed)
            if timed.rows is None and status == 200:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    timed.rows = len(json.loads(body)["promises"])
    finally:
        client.close()
    return timed


class BackgroundSearches(threading.Thread):
    """Selective searches back to back, one in flight, while the load runs."""

    def __init__(self, url: str, size: int) -> None:
        super().__init__(daemon=True)
        self._url, self._size = url, size
        self._stop_event = threading.Event()
        self.timed = Timed()

    def run(self) -> None:
        rng, client = random.Random(3), KeepAlive(self._url)
        try:
            while not self._stop_event.is_set():
                status, _, elapsed = client.get(selective_path(self._size, rng))
                self.timed.add(status, elapsed)
        finally:
            client.close()

    def stop(self) -> Timed:
        self._stop_event.set()
        self.join(timeout=180)
        return self.timed


def load(
    running: Running, store: ScaleStore, workdir: Path, options: argparse.Namespace
) -> dict[str, Any]:
    driver = argparse.Namespace(
        connections=options.connections,
        driver_procs=1,
        client="raw",
        warmup=options.warmup,
        duration=options.duration,
    )
    pids = (lambda: store.database_pids(workdir)) if store.name == "postgres" else None
    samples, cpu = bench.run_load(running.url, running.server.pid, driver, pids)
    result = bench.summarise("ours", 1, samples, cpu, driver)
    keys = (
        "pairs_per_s",
        "requests_per_s",
        "pair_p50_ms",
        "pair_p99_ms",
        "create_p50_ms",
        "create_p99_ms",
        "complete_p50_ms",
        "complete_p99_ms",
        "server_cpu_us_per_request",
        "database_cpu_us_per_request",
        "driver_cpu_percent",
        "other_processes_cpu_percent",
        "errors",
        "errors_outside_window",
        "unfinished",
        "warnings",
    )
    out = {key: getattr(result, key) for key in keys}
    out["flagged"] = result.flagged
    return out


def create_fixture(url: str, token: str) -> list[str]:
    """A few promises created over HTTP, so that N=0 has something to read."""
    ids = []
    for index in range(ROOT_FANOUT):
        promise_id = f"fixture-{token}-{index}"
        body = bench.create_body(promise_id, bench.now_ms())
        body["tags"] = {"resonate:root": FIXTURE_ROOT}
        status, answer = bench.http_call(url, "POST", "/promises", body)
        if status != 201:
            raise RuntimeError(f"fixture create: expected 201, got {status}: {answer}")
        ids.append(promise_id)
    return ids


def measure_size(
    store: ScaleStore, size: int, options: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    seed = store.prepare(size)
    workdir = tmp / f"{store.name}-{size}"
    workdir.mkdir()
    out: dict[str, Any] = {"size": size, "seed": seed.__dict__}
    if options.wait_idle > 0:
        bench.wait_for_idle(options.wait_idle)
    store.checkout(size, workdir)
    try:
        out["disk_bytes_before"] = store.disk_bytes(workdir)
        with running_server(store, workdir, options) as running:
            pid = running.server.pid
            out["rss_start"] = rss_bytes(pid)
            fixture = create_fixture(running.url, secrets.token_hex(3))
            log(f"  reads: {options.reads} x GET /promises/{{id}}")
            out["read"] = time_reads(running.url, size, fixture, options.reads).summary()
            for kind in SEARCHES:
                timed = time_search(
                    running.url, size, kind, options.searches, options.search_budget
                )
                out[kind] = timed.summary()
                log(
                    f"  {kind}: n={len(timed.samples)} p50 {out[kind]['p50_ms']:.2f} ms, "
                    f"p99 {out[kind]['p99_ms']:.2f} ms, rows {timed.rows}"
                )
            out["rss_after_reads"] = rss_bytes(pid)
            log("  load: create+complete")
            out["load"] = load(running, store, workdir, options)
            log(f"    {out['load']['pairs_per_s']:.0f} pairs/s")
            log("  load: create+complete with concurrent selective searches")
            searches = BackgroundSearches(running.url, size)
            searches.start()
            try:
                out["load_with_searches"] = load(running, store, workdir, options)
            finally:
                out["searches_during_load"] = searches.stop().summary()
            log(
                f"    {out['load_with_searches']['pairs_per_s']:.0f} pairs/s, "
                f"{out['searches_during_load']['n']} searches"
            )
            out["rss_end"] = rss_bytes(pid)
            out["disk_bytes_after"] = store.disk_bytes(workdir)
    except Exception as error:  # one failed size should not lose the others
        out["failure"] = f"{type(error).__name__}: {error}"
        log(f"  FAILED: {out['failure']}")
    finally:
        store.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# Poll (SSE) connections.


def raise_nofile(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to `needed` if it is lower; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    log(f"  raised the open-files soft limit from {soft} to {target}")
    return target


POLL_ID = re.compile(rb"scale-poll-[0-9a-f]+-\d+")


async def open_stream(
    host: str, port: int, worker: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /{POLL_GROUP}/{worker} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise RuntimeError(f"poll stream {worker}: {head.splitlines()[0]!r}")
    return reader, writer


async def poll_run(running: Running, connections: int, tasks: int) -> dict[str, Any]:
    host = "127.0.0.1"
    parsed = urllib.parse.urlsplit(running.url)
    pid = running.server.pid
    waiters: dict[bytes, asyncio.Future[int]] = {}
    stray = 0

    async def read(reader: asyncio.StreamReader) -> None:
        nonlocal stray
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    found = POLL_ID.search(line)
                    waiter = waiters.pop(found.group(0), None) if found else None
                    if waiter is not None and not waiter.done():
                        waiter.set_result(time.perf_counter_ns())
                    else:
                        stray += 1

    client = bench.RawClient(host, parsed.port or 80)
    api = await client.connect()
    token = secrets.token_hex(3)
    sequence = 0

    async def deliver(worker_index: int) -> tuple[int, int, int]:
        """Create one promise routed to stream worker_index; (status, create ns, delivery ns)."""
        nonlocal sequence
        promise_id = f"scale-poll-{token}-{sequence}"
        sequence += 1
        body = bench.create_body(promise_id, bench.now_ms())
        body["tags"] = {"resonate:invoke": f"poll://any@{POLL_GROUP}/w{worker_index}"}
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        waiters[promise_id.encode()] = waiter
        started = time.perf_counter_ns()
        status = await api.request(b"POST", b"/promises", json.dumps(body).encode())
        created = time.perf_counter_ns()
        try:
            arrived = await asyncio.wait_for(waiter, 15)
        except TimeoutError:
            waiters.pop(promise_id.encode(), None)
            return status, created - started, -1
        return status, created - started, arrived - started

    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    readers: list[asyncio.Task[None]] = []
    out: dict[str, Any] = {"connections": connections, "tasks": tasks}
    try:
        # Warm the paths once (one stream, one delivery), then measure memory.
        reader, writer = await open_stream(host, running.poll_port, "w0")
        readers.append(asyncio.create_task(read(reader)))
        streams.append((reader, writer))
        for _ in range(3):
            await deliver(0)
        await asyncio.sleep(0.5)
        out["rss_before"] = rss_bytes(pid)
        started = time.monotonic()
        for first in range(1, connections, 100):
            batch = await asyncio.gather(
                *(
                    open_stream(host, running.poll_port, f"w{i}")
                    for i in range(first, min(connections, first + 100))
                )
            )
            for reader, writer in batch:
                readers.append(asyncio.create_task(read(reader)))
                streams.append((reader, writer))
        out["connect_seconds"] = round(time.monotonic() - started, 2)
        await asyncio.sleep(1.0)
        out["rss_after"] = rss_bytes(pid)
        if out["rss_before"] is not None and out["rss_after"] is not None and connections > 1:
            out["bytes_per_connection"] = (out["rss_after"] - out["rss_before"]) / (connections - 1)
        rng = random.Random(4)
        create, delivery = Timed(), Timed()
        lost = 0
        for _ in range(tasks):
            status, create_ns, delivery_ns = await deliver(rng.randrange(connections))
            create.add(status, create_ns, ok=(201,))
            if delivery_ns < 0:
                lost += 1
            else:
                delivery.samples.append(delivery_ns)
        out["create"] = create.summary()
        out["delivery"] = delivery.summary()
        out["lost"] = lost
        out["stray"] = stray
        out["rss_end"] = rss_bytes(pid)
        out["open_at_end"] = sum(1 for task in readers if not task.done())
    finally:
        api.close()
        for _, writer in streams:
            writer.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return out


def measure_poll(store: ScaleStore, options: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    connections = options.poll_connections
    limit = raise_nofile(connections + 256)
    if limit < connections + 64:
        connections = max(2, limit - 64)
        log(f"  open-files limit {limit}: only {connections} poll connections")
    store.prepare(0)
    workdir = tmp / f"{store.name}-poll"
    workdir.mkdir()
    store.checkout(0, workdir)
    extra = ["--aio-poll-max-connections", str(connections + 16)]
    if options.wait_idle > 0:
        bench.wait_for_idle(options.wait_idle)
    log(f"{store.name}: {connections} poll connections, {options.poll_tasks} deliveries")
    try:
        with running_server(store, workdir, options, extra) as running:
            return asyncio.run(poll_run(running, connections, options.poll_tasks))
    except Exception as error:
        log(f"  FAILED: {type(error).__name__}: {error}")
        return {"connections": connections, "failure": f"{type(error).__name__}: {error}"}
    finally:
        store.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Report.


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def pair(summary: dict[str, Any] | None, a: str = "p50_ms", b: str = "p99_ms") -> str:
    if not summary:
        return "-"
    return f"{ms(summary.get(a))} / {ms(summary.get(b))}"


def search_cell(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    errors = sum(summary["errors"].values())
    extra = f"; {errors} errors" if errors else ""
    rows = "" if summary["rows"] is None else f", rows {summary['rows']}"
    return f"{pair(summary)} (n={summary['n']}{rows}{extra})"


def errors_of(run: dict[str, Any]) -> str:
    if run.get("failure"):
        return "FAILED: " + run["failure"].splitlines()[0][:120]
    counts: dict[str, int] = {}
    for kind in ("read", *SEARCHES, "searches_during_load"):
        for status, n in (run.get(kind) or {}).get("errors", {}).items():
            counts[f"{kind}:{status}"] = counts.get(f"{kind}:{status}", 0) + n
    for kind in ("load", "load_with_searches"):
        result = run.get(kind) or {}
        for name, n in (result.get("errors") or {}).items():
            counts[f"{kind}:{name}"] = counts.get(f"{kind}:{name}", 0) + n
        for name, n in (result.get("errors_outside_window") or {}).items():
            counts[f"{kind}(outside):{name}"] = counts.get(f"{kind}(outside):{name}", 0) + n
        if result.get("unfinished"):
            counts[f"{kind}:unfinished"] = result["unfinished"]
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "0"


def load_cell(result: dict[str, Any] | None, key: str, pattern: str = "{:,.0f}") -> str:
    if not result or result.get(key) is None:
        return "-"
    return pattern.format(result[key])


def store_table(name: str, report: dict[str, Any]) -> list[str]:
    runs: list[dict[str, Any]] = report["sizes"]
    lines = [
        f"### {name} (schema v{report['schema_version']}, migrations {report['schema_hash']})",
        "",
        "| metric | " + " | ".join(f"N={run['size']:,}" for run in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(run) for run in runs) + " |")

    def seed_cell(run: dict[str, Any]) -> str:
        seed = run["seed"]
        return f"{seed['seed_seconds']:.1f} s" + (" (cached)" if seed["cached"] else "")

    row("seeding time (migrate + insert)", seed_cell)
    row(
        "database size MiB (start / end)",
        lambda r: f"{mib(r.get('disk_bytes_before'))} / {mib(r.get('disk_bytes_after'))}",
    )
    row("pairs/s (create+complete)", lambda r: load_cell(r.get("load"), "pairs_per_s"))
    row("create p50 / p99 ms", lambda r: pair(r.get("load"), "create_p50_ms", "create_p99_ms"))
    row(
        "complete p50 / p99 ms", lambda r: pair(r.get("load"), "complete_p50_ms", "complete_p99_ms")
    )
    row("pair p99 ms", lambda r: ms((r.get("load") or {}).get("pair_p99_ms")))
    row("server CPU µs/request", lambda r: load_cell(r.get("load"), "server_cpu_us_per_request"))
    if name == "postgres":
        row(
            "database CPU µs/request",
            lambda r: load_cell(r.get("load"), "database_cpu_us_per_request"),
        )
    row("GET /promises/{id} p50 / p99 ms", lambda r: pair(r.get("read")))
    row("search root=<10 hits> p50 / p99 ms", lambda r: search_cell(r.get("search_selective")))
    row("search invoke=default (all) p50 / p99 ms", lambda r: search_cell(r.get("search_tag_all")))
    row("search state=pending p50 / p99 ms", lambda r: search_cell(r.get("search_state_pending")))
    row(
        "pairs/s with concurrent searches",
        lambda r: load_cell(r.get("load_with_searches"), "pairs_per_s"),
    )
    row(
        "create p50 / p99 ms with concurrent searches",
        lambda r: pair(r.get("load_with_searches"), "create_p50_ms", "create_p99_ms"),
    )
    row(
        "searches during that load p50 / p99 ms",
        lambda r: search_cell(r.get("searches_during_load")),
    )
    row(
        "server RSS MiB (start / after reads / end)",
        lambda r: (
            f"{mib(r.get('rss_start'))} / {mib(r.get('rss_after_reads'))} / {mib(r.get('rss_end'))}"
        ),
    )
    row(
        "other processes CPU % (load windows)",
        lambda r: "{} / {}".format(
            load_cell(r.get("load"), "other_processes_cpu_percent"),
            load_cell(r.get("load_with_searches"), "other_processes_cpu_percent"),
        ),
    )
    row("errors", errors_of)
    poll = report.get("poll")
    if poll:
        lines += ["", f"Poll (SSE), {name}, empty database:", ""]
        if poll.get("failure"):
            lines.append(f"FAILED: {poll['failure']}")
        else:
            per = poll.get("bytes_per_connection")
            lines += [
                "| connections | RSS before / after MiB | KiB per connection "
                "| create→delivery p50 / p99 ms | create p50 / p99 ms | lost |",
                "| ---: | ---: | ---: | ---: | ---: | ---: |",
                f"| {poll['connections']:,} | {mib(poll.get('rss_before'))} / "
                f"{mib(poll.get('rss_after'))} | {'-' if per is None else f'{per / 1024:.1f}'} "
                f"| {pair(poll.get('delivery'))} (n={poll['delivery']['n']}) "
                f"| {pair(poll.get('create'))} | {poll.get('lost')} |",
            ]
    return lines


def git_state() -> dict[str, Any]:
    def run(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {"head": run("log", "-1", "--format=%h %s")[:100], "dirty": run("status", "--short")}


def uvloop_version() -> str | None:
    """uvloop's version if importable (`resonate serve` may then run on it by default)."""
    try:
        import uvloop
    except ImportError:
        return None
    return str(getattr(uvloop, "__version__", "?"))


# --------------------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options this script shares with benchmarks/retention.py: the seed cache, the
    PostgreSQL server, how servers are run, and the report's form."""
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="seeded databases are kept here (~/.cache/resonate-bench)",
    )
    parser.add_argument("--reseed", action="store_true", help="rebuild the cache entries used")
    parser.add_argument(
        "--dsn",
        default=bench.DEFAULT_POSTGRES_DSN,
        help="a database on the PostgreSQL server ($RESONATE_TEST_POSTGRES_DSN, else "
        "postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each server run, wait up to this long for the box to be idle (0: off)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=600.0, help="seconds to /readyz (600)"
    )
    parser.add_argument(
        "--ours-arg", action="append", default=[], help="extra `resonate serve` arguments"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--json-file", type=Path, help="also write the JSON report to this file")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="How the server's cost grows with the number of promises stored."
    )
    parser.add_argument(
        "--store", choices=["sqlite", "postgres", "both"], default="sqlite", help="(sqlite)"
    )
    parser.add_argument(
        "--sizes", help=f"comma-separated N (default {FULL['sizes']}; --quick {QUICK['sizes']})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, 2 s windows, 100 poll connections: a CI smoke run",
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="build the cache entries of --sizes and exit"
    )
    parser.add_argument("--connections", type=int, default=64, help="load driver connections (64)")
    parser.add_argument("--warmup", type=float, help="load warmup seconds (2; quick 0.5)")
    parser.add_argument("--duration", type=float, help="load window seconds (10; quick 2)")
    parser.add_argument("--reads", type=int, help="GET /promises/{id} requests (300; quick 100)")
    parser.add_argument("--searches", type=int, help="requests per search kind (30; quick 10)")
    parser.add_argument(
        "--search-budget", type=float, help="seconds per search kind, at least 3 requests (20)"
    )
    parser.add_argument(
        "--poll-connections", type=int, help="poll streams held open (1000; quick 100; 0: skip)"
    )
    parser.add_argument("--poll-tasks", type=int, help="deliveries timed (300; quick 50)")
    add_run_arguments(parser)
    options = parser.parse_args(argv)
    defaults = QUICK if options.quick else FULL
    for key, value in defaults.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    try:
        options.sizes = [int(part.replace("_", "")) for part in options.sizes.split(",") if part]
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if not options.sizes or min(options.sizes) < 0:
        parser.error("--sizes needs at least one size >= 0")
    options.cache_dir = options.cache_dir.expanduser()
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    names = ["sqlite", "postgres"] if options.store == "both" else [options.store]
    report: dict[str, Any] = {
        "machine": bench.machine() | {"uvloop_installed": uvloop_version()},
        "git": git_state(),
        "config": {
            key: getattr(options, key)
            for key in (
                "sizes",
                "quick",
                "connections",
                "warmup",
                "duration",
                "reads",
                "searches",
                "search_budget",
                "poll_connections",
                "poll_tasks",
            )
        }
        | {"cache_dir": str(options.cache_dir)},
        "stores": {},
    }
    if options.seed_only:
        for name in names:
            store = STORES[name](options)
            for size in options.sizes:
                store.prepare(size)
        return 0
    failed = False
    with tempfile.TemporaryDirectory(prefix="resonate-scale-") as tmp:
        for name in names:
            store = STORES[name](options)
            result: dict[str, Any] = {
                "schema_version": store.version,
                "schema_hash": store.hash,
                "sizes": [],
            }
            report["stores"][name] = result
            for size in options.sizes:
                log(f"== {name}, N={size:,}")
                try:
                    run = measure_size(store, size, options, Path(tmp))
                except Exception as error:  # seeding failed
                    log(f"  FAILED: {type(error).__name__}: {error}")
                    run = {
                        "size": size,
                        "seed": {"seed_seconds": float("nan"), "cached": False},
                        "failure": f"{type(error).__name__}: {error}",
                    }
                result["sizes"].append(run)
                failed |= bool(run.get("failure")) or errors_of(run) != "0"
            if options.poll_connections > 0:
                result["poll"] = measure_poll(store, options, Path(tmp))
                poll = result["poll"]
                failed |= bool(poll.get("failure") or poll.get("lost"))
    if options.json_file:
        options.json_file.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if options.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        machine = report["machine"]
        print(
            f"## Scale: {machine['cpus']} CPUs, {machine['memory_gib']} GiB, Python "
            f"{machine['python']}, SQLite {machine['sqlite']}, uvloop installed: "
            f"{machine['uvloop_installed'] or 'no'}, {machine['date']}"
        )
        print(f"git: {report['git']['head']}" + (" (dirty)" if report["git"]["dirty"] else ""))
        config = report["config"]
        print(
            f"load: {config['connections']} connections, {config['warmup']:g} s warmup + "
            f"{config['duration']:g} s; reads {config['reads']}, searches up to "
            f"{config['searches']} per kind ({config['search_budget']:g} s budget)"
        )
        for name, result in report["stores"].items():
            print()
            print("\n".join(store_table(name, result)))
        if failed:
            print("\nRUN FLAGGED: failures or errors above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
