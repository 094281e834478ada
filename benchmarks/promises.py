"""Create+complete throughput of our server against a minimal baseline, measured in one run.

A pair is `POST /promises` (expects 201) then `PATCH /promises/<id>` resolving it (expects
201), driven over keep-alive HTTP/1.1 by `--connections` concurrent workers. Each target
server is started fresh (temp database, free loopback port), warmed up, measured for
`--duration` seconds and stopped; targets run one after the other, never at the same time,
and alternate order between rounds. See docs/performance.md.

    python benchmarks/promises.py                        # baseline then ours, 10 s each
    python benchmarks/promises.py --rounds 3 --json      # B,O / O,B / B,O; medians
    python benchmarks/promises.py --only baseline
    python benchmarks/promises.py --store postgres --rounds 3   # vs baseline_postgres.py
    python benchmarks/promises.py --server-url http://127.0.0.1:8001 --server-pid 1234 --only ours
    python benchmarks/promises.py --driver-check         # the load driver's own ceiling
    python benchmarks/promises.py --loop asyncio         # both servers on asyncio's loop

Load driver design. The box has two cores and the server under test takes one, so the driver
has about one core. Python HTTP clients are CPU-heavy: aiohttp's client costs about 75 us of
CPU per request here, about what the baseline server spends answering it, and with it the
baseline measured 40% fewer pairs/s. The default driver is therefore a small HTTP/1.1 client
on `asyncio.Protocol` (one keep-alive connection per worker, requests built from byte
templates, responses framed by Content-Length or chunked, bodies not parsed): 12-25 us per
request, about 80k requests/s on one core against a trivial server, so it stays near a third
of a core busy against the baseline. More driver processes (`--driver-procs`) do not add a core
that is not there: two processes measured lower than one (they contend with the server).
`--driver-check` measures the driver's ceiling against a trivial canned-response server, every
run reports driver CPU, and a busy driver is warned about. `--client aiohttp` stays as a
cross-check of the raw client.

Event loop. Both servers run on the same loop, `--loop` (default: uvloop where it is installed,
as `resonate serve` does by default): ours is given `--uvloop` or `--no-uvloop`, the baseline
`--loop`.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import base64
import contextlib
import datetime
import http.client
import importlib.util
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import secrets
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE_SQLITE = Path(__file__).resolve().parent / "baseline_sqlite.py"
BASELINE_POSTGRES = Path(__file__).resolve().parent / "baseline_postgres.py"
DEFAULT_POSTGRES_DSN = os.environ.get(
    "RESONATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Both targets run on the same event loop (--loop): ours through its `uvloop` option, the
# baseline through its --loop. By default the loop ours runs on by default: uvloop where installed.
LOOPS = ("asyncio", "uvloop")
DEFAULT_LOOP = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
POSTGRES_POOL_SIZE = 10  # aio.store.postgres.poolSize default; the baseline's pool too
PARAM_DATA = base64.b64encode(b'{"func":"bench","args":[1,2,3],"kwargs":{}}').decode()
VALUE_DATA = base64.b64encode(b'{"result":42}').decode()
HOUR_MS = 3_600_000
# Driver CPU share of its cores above which it is said to shape the result: a closed-loop
# driver that is busy half the time already adds its own queueing to every request (seen with
# the aiohttp client: 70% busy, baseline pairs/s down 40%).
DRIVER_BUSY = 0.5
OTHERS_BUSY = 0.2  # CPU of unrelated processes during a window, in cores, worth a warning
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Stores: how to start our server and the matching baseline for one storage backend.


class StoreProfile(abc.ABC):
    """One backend: the store flags for `resonate serve`, the baseline's command line, and the
    fresh store each run starts on."""

    name: str

    def setup(self, workdir: Path, options: argparse.Namespace) -> None:
        """Create the fresh store of one run (before its server starts)."""
        return None

    def teardown(self, workdir: Path) -> None:
        """Remove the store of one run (after its server stopped)."""
        return None

    def database_pids(self, workdir: Path) -> list[int]:
        """Processes outside the server that do its storage work (a database server), whose
        CPU is reported apart from the neighbours'."""
        return []

    def describe(self, options: argparse.Namespace) -> dict[str, Any]:
        """Versions and settings of the backend, for the report."""
        return {}

    @abc.abstractmethod
    def ours_args(self, workdir: Path) -> list[str]:
        """Store flags for `resonate serve`, on a fresh store inside workdir."""

    @abc.abstractmethod
    def baseline_command(self, workdir: Path, host: str, port: int) -> list[str]:
        """Command line of the baseline server, on a fresh store inside workdir."""


class SqliteProfile(StoreProfile):
    name = "sqlite"

    def ours_args(self, workdir: Path) -> list[str]:
        return ["--aio-store-sqlite-path", str(workdir / "bench.db")]

    def baseline_command(self, workdir: Path, host: str, port: int) -> list[str]:
        command = [sys.executable, str(BASELINE_SQLITE), "--host", host, "--port", str(port)]
        return [*command, "--db", str(workdir / "baseline.db")]


def run_sql(dsn: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """Run statements one by one outside any transaction (CREATE/DROP DATABASE need that);
    the rows of each."""
    import asyncpg  # only the postgres profile needs it

    async def run() -> list[list[tuple[Any, ...]]]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [[tuple(row) for row in await conn.fetch(sql)] for sql in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def with_database(dsn: str, database: str) -> str:
    """The DSN with its database replaced."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))


class PostgresProfile(StoreProfile):
    """A fresh database per run on the server at `--dsn` (created from its maintenance database,
    dropped after the run); the baseline is benchmarks/baseline_postgres.py on a pool of the
    same size as ours."""

    name = "postgres"

    def __init__(self) -> None:
        self._dsn = DEFAULT_POSTGRES_DSN
        self._token = secrets.token_hex(3)

    def _database(self, workdir: Path) -> str:
        return f"resonate_bench_{self._token}_{workdir.name.replace('-', '_')}"

    def _url(self, workdir: Path) -> str:
        return with_database(self._dsn, self._database(workdir))

    def setup(self, workdir: Path, options: argparse.Namespace) -> None:
        self._dsn = options.dsn
        database = self._database(workdir)
        # template0: CREATE DATABASE fails while anyone is connected to its template, and test
        # suites on a shared box connect to template1 now and then.
        run_sql(
            self._dsn,
            f'DROP DATABASE IF EXISTS "{database}"',
            f'CREATE DATABASE "{database}" TEMPLATE template0',
        )

    def teardown(self, workdir: Path) -> None:
        try:
            run_sql(self._dsn, f'DROP DATABASE IF EXISTS "{self._database(workdir)}" WITH (FORCE)')
        except Exception as error:  # a leftover database is not worth failing the run
            log(f"  could not drop database {self._database(workdir)}: {error}")

    def database_pids(self, workdir: Path) -> list[int]:
        """The backends connected to this run's database and the cluster's own processes
        (WAL writer, checkpointer, …), plus the postmaster: PostgreSQL's work for the run.
        Backends that connect during the window are not counted (the pools are full by then)."""
        rows = run_sql(
            self._dsn,
            "SELECT pid FROM pg_stat_activity WHERE (datname = "
            f"'{self._database(workdir)}' OR backend_type <> 'client backend')"
            " AND pid <> pg_backend_pid()",
        )[0]
        pids = [int(pid) for (pid,) in rows]
        with contextlib.suppress(OSError, IndexError, ValueError):
            if pids:  # the postmaster: the parent of any of them
                stat = Path(f"/proc/{pids[0]}/stat").read_text()
                pids.append(int(stat.rpartition(")")[2].split()[1]))
        return sorted(set(pids))

    def describe(self, options: argparse.Namespace) -> dict[str, Any]:
        names = ("server_version", "synchronous_commit", "fsync", "wal_sync_method")
        try:
            rows = run_sql(options.dsn, *(f"SHOW {name}" for name in names))
        except Exception as error:
            return {"postgres": f"unavailable: {error}"}
        return {f"postgres_{name}": found[0][0] for name, found in zip(names, rows, strict=True)}

    def ours_args(self, workdir: Path) -> list[str]:
        return [
            "--aio-store-postgres-enable",
            "--aio-store-postgres-url",
            self._url(workdir),
            "--aio-store-postgres-pool-size",
            str(POSTGRES_POOL_SIZE),
        ]

    def baseline_command(self, workdir: Path, host: str, port: int) -> list[str]:
        command = [sys.executable, str(BASELINE_POSTGRES), "--host", host, "--port", str(port)]
        return [*command, "--dsn", self._url(workdir), "--pool-size", str(POSTGRES_POOL_SIZE)]


STORES: dict[str, StoreProfile] = {"sqlite": SqliteProfile(), "postgres": PostgresProfile()}


# --------------------------------------------------------------------------------------------
# Server processes.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    pid: int | None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(command: list[str], url: str, log_path: Path) -> Server:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
    return Server(url=url, pid=process.pid, process=process, log_path=log_path)


def http_call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        connection.close()


def wait_ready(server: Server, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"server exited with status {server.process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            # /readyz (store reachable, schema migrated) where the server has it.
            if http_call(server.url, "GET", "/healthz")[0] == 200 and http_call(
                server.url, "GET", "/readyz"
            )[0] in (200, 404, 405):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"GET /healthz and /readyz not ready within {deadline_s:g} s")
        time.sleep(0.1)


def preflight(url: str, check_bodies: bool) -> None:
    """One pair before measuring, so that an incompatible server fails loudly, not as 100%
    errors."""
    promise_id = f"preflight-{secrets.token_hex(4)}"
    status, body = http_call(url, "POST", "/promises", create_body(promise_id, now_ms()))
    if status != 201:
        raise RuntimeError(f"preflight create: expected 201, got {status}: {body}")
    if check_bodies and (body.get("id"), body.get("state")) != (promise_id, "PENDING"):
        raise RuntimeError(f"preflight create: unexpected promise {body}")
    status, body = http_call(url, "PATCH", f"/promises/{promise_id}", COMPLETE_BODY)
    if status != 201:
        raise RuntimeError(f"preflight complete: expected 201, got {status}: {body}")
    if check_bodies and (body.get("state"), body.get("value")) != (
        "RESOLVED",
        {"data": VALUE_DATA},
    ):
        raise RuntimeError(f"preflight complete: unexpected promise {body}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create_body(promise_id: str, created_ms: int) -> dict[str, Any]:
    return {
        "id": promise_id,
        "timeout": created_ms + HOUR_MS,
        "param": {"headers": {}, "data": PARAM_DATA},
        "tags": {},
    }


COMPLETE_BODY = {"state": "RESOLVED", "value": {"data": VALUE_DATA}}


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc.


def process_tree_cpu_seconds(pid: int) -> float | None:
    """utime+stime of pid and its live descendants (all threads), or None if pid is gone."""
    parents: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = int(fields[11]) + int(fields[12])
    if pid not in times:
        return None
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += times.get(current, 0)
        pending.extend(parents.get(current, []))
    return total / CLOCK_TICKS


def box_busy_cores(interval_s: float = 1.0) -> float:
    """CPU in use on the whole box over interval_s, in cores."""

    def busy() -> int:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks[0:3]) + sum(ticks[5:8])

    before = busy()
    time.sleep(interval_s)
    return (busy() - before) / CLOCK_TICKS / interval_s


def wait_for_idle(limit_s: float, threshold_cores: float = OTHERS_BUSY) -> None:
    """On a shared box, give a neighbour's burst (a test suite, a build) time to pass."""
    started = time.monotonic()
    load = box_busy_cores()
    if load <= threshold_cores:
        return
    log(f"  box busy ({load:.2f} cores): waiting up to {limit_s:g} s for it to go idle")
    while (load := box_busy_cores()) > threshold_cores:
        if time.monotonic() - started > limit_s:
            log(f"  box still busy ({load:.2f} cores): running anyway")
            return
    log(f"  box idle after {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------------------------
# HTTP clients used by the driver processes.


class Connection(Protocol):
    usable: bool

    async def request(self, method: bytes, path: bytes, body: bytes) -> int: ...

    def close(self) -> None: ...


class RawHttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight, status code only."""

    def __init__(self, host_header: bytes) -> None:
        self._host_header = host_header
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self.usable = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport, self.usable = transport, True

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed by server"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None:
            self._parse_response()

    def _parse_response(self) -> None:
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(buffer[:head_end]).lower()
        end = body_start = head_end + 4
        length_at = head.find(b"\r\ncontent-length:")
        if length_at >= 0:
            line_end = head.find(b"\r\n", length_at + 2)
            end = body_start + int(head[length_at + 17 : line_end if line_end > 0 else None])
            if len(buffer) < end:
                return
        elif b"chunked" in head:
            end = chunked_body_end(buffer, body_start)
            if end < 0:
                return
        elif not head.startswith((b"http/1.1 204", b"http/1.1 304")):
            self.usable = False  # framed by closing the connection: not worth supporting
        if b"\r\nconnection: close" in head:
            self.usable = False
        status = int(buffer[9:12])
        del buffer[:end]
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    async def request(self, method: bytes, path: bytes, body: bytes) -> int:
        assert self._transport is not None
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._transport.write(
            b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (method, path, self._host_header, len(body), body)
        )
        return await waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def chunked_body_end(buffer: bytearray, position: int) -> int:
    """Offset just past a chunked body starting at position, or -1 if not all received."""
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        if size == 0:
            if buffer[line_end + 2 : line_end + 4] == b"\r\n":
                return line_end + 4
            trailers_end = buffer.find(b"\r\n\r\n", line_end)
            return -1 if trailers_end < 0 else trailers_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return -1


class Client(abc.ABC):
    @abc.abstractmethod
    async def connect(self) -> Connection: ...

    async def close(self) -> None:
        return None


class RawClient(Client):
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._host_header = f"{host}:{port}".encode()

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: RawHttpConnection(self._host_header), self._host, self._port
        )
        return connection


class AiohttpConnection:
    def __init__(self, session: Any, base_url: str) -> None:
        self._session, self._base, self.usable = session, base_url, True

    async def request(self, method: bytes, path: bytes, body: bytes) -> int:
        url = self._base + path.decode()
        async with self._session.request(method.decode(), url, data=body) as response:
            await response.read()
            return int(response.status)

    def close(self) -> None:
        return None  # the session's pool owns the sockets


class AiohttpClient(Client):
    """Cross-check for the raw client: one pooled session shared by every worker."""

    def __init__(self, base_url: str, connections: int) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            headers={"Content-Type": "application/json"},
        )
        self._connection = AiohttpConnection(self._session, base_url.rstrip("/"))

    async def connect(self) -> Connection:
        return self._connection

    async def close(self) -> None:
        await self._session.close()


# --------------------------------------------------------------------------------------------
# Driver processes.


@dataclass
class DriverConfig:
    url: str
    client: str
    connections: int
    id_prefix: str
    grace_s: float


@dataclass
class DriverSamples:
    """What one driver process saw. Latencies are perf_counter_ns deltas of requests that
    completed inside the measured window."""

    pair_ns: array[int] = field(default_factory=lambda: array("q"))
    create_ns: array[int] = field(default_factory=lambda: array("q"))
    complete_ns: array[int] = field(default_factory=lambda: array("q"))
    requests: int = 0  # completed in the window, any status
    errors: Counter[str] = field(default_factory=Counter)  # in the window
    errors_outside: Counter[str] = field(default_factory=Counter)  # warmup and tail
    unfinished: int = 0  # requests still in flight `grace_s` after the window

    def merge(self, other: DriverSamples) -> None:
        self.pair_ns.extend(other.pair_ns)
        self.create_ns.extend(other.create_ns)
        self.complete_ns.extend(other.complete_ns)
        self.requests += other.requests
        self.errors.update(other.errors)
        self.errors_outside.update(other.errors_outside)
        self.unfinished += other.unfinished


class LoadWorker:
    def __init__(
        self, client: Client, samples: DriverSamples, name: str, window: tuple[int, int, int]
    ) -> None:
        self._client, self._samples, self._name = client, samples, name
        self._start_ns, self._warm_end_ns, self._end_ns = window

    def _account(self, kind: str, status: int, started: int, finished: int) -> bool:
        """Record one answered request (status 0: the connection dropped it); True if it had
        the expected status."""
        if self._warm_end_ns <= finished <= self._end_ns:
            self._samples.requests += 1
            (self._samples.create_ns if kind == "create" else self._samples.complete_ns).append(
                finished - started
            )
        if status == 201:
            return True
        self._count_error(f"{kind}:{status or 'conn'}", finished)
        return False

    def _count_error(self, name: str, when: int) -> None:
        in_window = self._warm_end_ns <= when <= self._end_ns
        (self._samples.errors if in_window else self._samples.errors_outside)[name] += 1

    async def run(self) -> None:
        clock, end, samples = time.perf_counter_ns, self._end_ns, self._samples
        connection: Connection | None = None
        # The create body is these bytes around the id: building it is one concatenation.
        timeout = now_ms() + HOUR_MS
        create_head = b'{"id":"'
        create_tail = f'","timeout":{timeout},"param":{{"headers":{{}},"data":"{PARAM_DATA}"}},'
        create_tail_bytes = (create_tail + '"tags":{}}').encode()
        complete = json.dumps(COMPLETE_BODY, separators=(",", ":")).encode()
        await asyncio.sleep(max(0, self._start_ns - clock()) / 1e9)
        sequence = 0
        try:
            while (started := clock()) < end:
                if connection is None or not connection.usable:
                    if connection is not None:
                        connection.close()
                    try:
                        connection = await self._client.connect()
                    except OSError:
                        connection = None
                        self._count_error("connect", clock())
                        await asyncio.sleep(0.01)
                        continue
                promise_id = f"{self._name}-{sequence}".encode()
                sequence += 1
                try:
                    status = await connection.request(
                        b"POST", b"/promises", create_head + promise_id + create_tail_bytes
                    )
                except (ConnectionError, OSError):
                    status = 0
                created = clock()
                if not self._account("create", status, started, created):
                    continue
                try:
                    status = await connection.request(
                        b"PATCH", b"/promises/" + promise_id, complete
                    )
                except (ConnectionError, OSError):
                    status = 0
                completed = clock()
                if self._account("complete", status, created, completed) and (
                    self._warm_end_ns <= completed <= end
                ):
                    samples.pair_ns.append(completed - started)
        finally:
            if connection is not None:
                connection.close()


async def drive(config: DriverConfig, pipe: multiprocessing.connection.Connection) -> None:
    parsed = urllib.parse.urlsplit(config.url)
    client: Client = (
        AiohttpClient(config.url, config.connections)
        if config.client == "aiohttp"
        else RawClient(parsed.hostname or "127.0.0.1", parsed.port or 80)
    )
    pipe.send("ready")
    # Deadlines arrive on the CLOCK_MONOTONIC scale shared by every process; perf_counter may
    # have another origin, so shift them once.
    start, warm_end, end = pipe.recv()
    shift = time.perf_counter_ns() - time.monotonic_ns()
    window = (start + shift, warm_end + shift, end + shift)
    samples = DriverSamples()
    workers = [
        asyncio.create_task(
            LoadWorker(client, samples, f"{config.id_prefix}-{index}", window).run()
        )
        for index in range(config.connections)
    ]
    done, pending = await asyncio.wait(
        workers, timeout=(end - time.monotonic_ns()) / 1e9 + config.grace_s
    )
    samples.unfinished = len(pending)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            samples.errors_outside[f"driver:{task.exception()!r}"] += 1
    await client.close()
    pipe.send(samples)


def driver_process(config: DriverConfig, pipe: multiprocessing.connection.Connection) -> None:
    asyncio.run(drive(config, pipe))


@dataclass
class CpuSnapshot:
    server_s: float | None
    drivers_s: float
    database_s: dict[int, float]  # per database process (PostgreSQL), by pid
    box_busy_s: float
    box_steal_s: float
    wall_s: float


@dataclass
class CpuWindow:
    server_s: float | None
    drivers_s: float
    database_s: float | None  # the database server's processes (PostgreSQL); None: none
    others_s: float | None  # every other process on the box: the noise of a shared machine
    steal_s: float
    wall_s: float


def run_load(
    url: str,
    server_pid: int | None,
    options: argparse.Namespace,
    database_pids: Callable[[], list[int]] | None = None,
) -> tuple[DriverSamples, CpuWindow]:
    context = multiprocessing.get_context("spawn")
    token = secrets.token_hex(3)
    per_process = [
        options.connections // options.driver_procs
        + (1 if index < options.connections % options.driver_procs else 0)
        for index in range(options.driver_procs)
    ]
    pipes, processes = [], []
    for index, connections in enumerate(per_process):
        parent_end, child_end = context.Pipe()
        config = DriverConfig(url, options.client, connections, f"b{token}-{index}", 10.0)
        process = context.Process(target=driver_process, args=(config, child_end), daemon=True)
        process.start()
        pipes.append(parent_end)
        processes.append(process)
    try:
        for pipe in pipes:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("driver process did not start")
        start = time.monotonic_ns() + 100_000_000
        warm_end = start + int(options.warmup * 1e9)
        end = warm_end + int(options.duration * 1e9)
        for pipe in pipes:
            pipe.send((start, warm_end, end))
        # Listing the database's processes takes a query: done just before the window.
        time.sleep(max(0, warm_end - 500_000_000 - time.monotonic_ns()) / 1e9)
        db_pids = database_pids() if database_pids is not None else []
        time.sleep(max(0, warm_end - time.monotonic_ns()) / 1e9)
        before = snapshot_cpu(server_pid, processes, db_pids)
        time.sleep(max(0, end - time.monotonic_ns()) / 1e9)
        after = snapshot_cpu(server_pid, processes, db_pids)
        samples = DriverSamples()
        for pipe in pipes:
            if not pipe.poll(60):
                raise RuntimeError("driver process did not report")
            samples.merge(pipe.recv())
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    server_s = others_s = database_s = None
    if before.server_s is not None and after.server_s is not None:
        server_s = after.server_s - before.server_s
    drivers_s = after.drivers_s - before.drivers_s
    if db_pids:
        database_s = sum(
            after.database_s[pid] - before.database_s[pid]
            for pid in before.database_s
            if pid in after.database_s
        )
    if server_s is not None:
        others_s = max(
            0.0,
            after.box_busy_s - before.box_busy_s - server_s - drivers_s - (database_s or 0.0),
        )
    steal_s = after.box_steal_s - before.box_steal_s
    wall_s = after.wall_s - before.wall_s
    return samples, CpuWindow(server_s, drivers_s, database_s, others_s, steal_s, wall_s)


def process_cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """utime+stime of each live pid (not its children), by pid."""
    found: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def snapshot_cpu(
    server_pid: int | None,
    drivers: Sequence[multiprocessing.process.BaseProcess],
    database_pids: Sequence[int] = (),
) -> CpuSnapshot:
    wall = time.monotonic()
    server = None if server_pid is None else process_tree_cpu_seconds(server_pid)
    driver_total = 0.0
    for process in drivers:
        if process.pid is not None:
            driver_total += process_tree_cpu_seconds(process.pid) or 0.0
    # First line of /proc/stat: user nice system idle iowait irq softirq steal ... (ticks).
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(ticks[0:3]) + sum(ticks[5:7])
    database = process_cpu_seconds(database_pids)
    return CpuSnapshot(
        server, driver_total, database, busy / CLOCK_TICKS, ticks[7] / CLOCK_TICKS, wall
    )


# --------------------------------------------------------------------------------------------
# Statistics and reporting.


def percentile_ms(samples: array[int], fraction: float) -> float | None:
    """Nearest-rank percentile over all samples, in milliseconds."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] / 1e6


@dataclass
class Result:
    target: str
    round: int
    pairs_per_s: float = 0.0
    requests_per_s: float = 0.0
    pair_p50_ms: float | None = None
    pair_p99_ms: float | None = None
    create_p50_ms: float | None = None
    create_p99_ms: float | None = None
    complete_p50_ms: float | None = None
    complete_p99_ms: float | None = None
    server_cpu_us_per_request: float | None = None
    server_cpu_percent: float | None = None
    database_cpu_us_per_request: float | None = None
    database_cpu_percent: float | None = None
    server_and_database_cpu_us_per_request: float | None = None
    driver_cpu_us_per_request: float | None = None
    driver_cpu_percent: float | None = None
    driver_ceiling_requests_per_s: float | None = None
    other_processes_cpu_percent: float | None = None
    steal_cpu_percent: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    errors_outside_window: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    failure: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.failure or self.errors or self.errors_outside_window or self.unfinished)


def summarise(
    target: str,
    round_index: int,
    samples: DriverSamples,
    cpu: CpuWindow,
    options: argparse.Namespace,
) -> Result:
    duration = options.duration
    result = Result(target=target, round=round_index)
    result.pairs_per_s = len(samples.pair_ns) / duration
    result.requests_per_s = samples.requests / duration
    result.pair_p50_ms = percentile_ms(samples.pair_ns, 0.50)
    result.pair_p99_ms = percentile_ms(samples.pair_ns, 0.99)
    result.create_p50_ms = percentile_ms(samples.create_ns, 0.50)
    result.create_p99_ms = percentile_ms(samples.create_ns, 0.99)
    result.complete_p50_ms = percentile_ms(samples.complete_ns, 0.50)
    result.complete_p99_ms = percentile_ms(samples.complete_ns, 0.99)
    result.errors = dict(samples.errors)
    result.errors_outside_window = dict(samples.errors_outside)
    result.unfinished = samples.unfinished
    if samples.requests:
        if cpu.server_s is not None:
            result.server_cpu_us_per_request = cpu.server_s / samples.requests * 1e6
            result.server_cpu_percent = cpu.server_s / cpu.wall_s * 100
        if cpu.database_s is not None:
            result.database_cpu_us_per_request = cpu.database_s / samples.requests * 1e6
            result.database_cpu_percent = cpu.database_s / cpu.wall_s * 100
            if result.server_cpu_us_per_request is not None:
                result.server_and_database_cpu_us_per_request = (
                    result.server_cpu_us_per_request + result.database_cpu_us_per_request
                )
        result.driver_cpu_us_per_request = cpu.drivers_s / samples.requests * 1e6
        result.driver_cpu_percent = cpu.drivers_s / cpu.wall_s * 100
        if cpu.drivers_s > 0:
            # What the driver could push if it had its cores to itself at this cost/request.
            result.driver_ceiling_requests_per_s = (
                options.driver_procs * 1e6 / (result.driver_cpu_us_per_request)
            )
        if target != "trivial" and cpu.drivers_s / cpu.wall_s > DRIVER_BUSY * min(
            options.driver_procs, os.cpu_count() or 1
        ):
            result.warnings.append(
                f"driver CPU {result.driver_cpu_percent:.0f}%: the driver may limit the result"
            )
    else:
        result.warnings.append("no request completed in the measured window")
    result.steal_cpu_percent = cpu.steal_s / cpu.wall_s * 100
    if cpu.others_s is not None:
        result.other_processes_cpu_percent = cpu.others_s / cpu.wall_s * 100
        if result.other_processes_cpu_percent > OTHERS_BUSY * 100:
            result.warnings.append(
                f"other processes used {result.other_processes_cpu_percent:.0f}% of a core "
                "during the window: the box was shared, compare rounds with care"
            )
    return result


def run_target(target: str, round_index: int, options: argparse.Namespace, workdir: Path) -> Result:
    """One run on a fresh store: set it up, start the server, measure, stop, remove the store."""
    store = STORES[options.store]
    if target == "trivial" or (target == "ours" and options.server_url):
        return run_server(target, round_index, options, workdir)
    try:
        store.setup(workdir, options)
    except Exception as exc:
        return Result(target=target, round=round_index, failure=f"store setup failed: {exc}")
    try:
        return run_server(target, round_index, options, workdir)
    finally:
        store.teardown(workdir)


def run_server(target: str, round_index: int, options: argparse.Namespace, workdir: Path) -> Result:
    store = STORES[options.store]
    host = "127.0.0.1"
    port = free_port()
    url = f"http://{host}:{port}"
    if options.wait_idle > 0:
        wait_for_idle(options.wait_idle)
    server: Server
    if target == "ours" and options.server_url:
        server = Server(url=options.server_url, pid=options.server_pid)
    elif target == "ours":
        command = [sys.executable, "-m", "resonate", "serve", "--api-http-addr", f"{host}:{port}"]
        command += ["--metrics-addr", f"{host}:{free_port()}", *store.ours_args(workdir)]
        # The poll listener on a free port too: its default :8002 may be taken on a shared box.
        command += ["--aio-poll-addr", f"{host}:{free_port()}"]
        command += ["--api-grpc-addr", f"{host}:{free_port()}"]  # on by default, idle here
        command += ["--uvloop" if options.loop == "uvloop" else "--no-uvloop"]
        command += [arg for extra in options.ours_arg for arg in shlex.split(extra)]
        server = start_server(command, url, workdir / "ours.log")
    elif target == "baseline":
        command = [*store.baseline_command(workdir, host, port), "--loop", options.loop]
        server = start_server(command, url, workdir / "baseline.log")
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-trivial", str(port)]
        server = start_server(command, url, workdir / "trivial.log")
    log(f"round {round_index}: {target}: {shlex.join(command) if server.process else server.url}")
    try:
        wait_ready(server, options.ready_timeout)
        preflight(server.url, check_bodies=target != "trivial")
        database_pids = None
        if target != "trivial" and not (target == "ours" and options.server_url):
            database_pids = partial(store.database_pids, workdir)
        samples, cpu = run_load(server.url, server.pid, options, database_pids)
        result = summarise(target, round_index, samples, cpu, options)
        if server.process is not None and server.process.poll() is not None:
            result.failure = "server exited during the run"
        elif server.pid is not None and cpu.server_s is None:
            result.failure = f"server pid {server.pid} not found at the end of the window"
    except (RuntimeError, OSError, http.client.HTTPException, ValueError) as exc:
        failure, tail = str(exc), server.log_tail()
        if tail:
            failure += "\n  server log (tail):\n    " + tail.replace("\n", "\n    ")
        result = Result(target=target, round=round_index, failure=failure)
    finally:
        server.stop()
    return result


METRICS = [
    ("pairs/s", "pairs_per_s", "{:.0f}"),
    ("req/s", "requests_per_s", "{:.0f}"),
    ("pair p50 ms", "pair_p50_ms", "{:.2f}"),
    ("pair p99 ms", "pair_p99_ms", "{:.2f}"),
    ("create p50 ms", "create_p50_ms", "{:.2f}"),
    ("create p99 ms", "create_p99_ms", "{:.2f}"),
    ("complete p50 ms", "complete_p50_ms", "{:.2f}"),
    ("complete p99 ms", "complete_p99_ms", "{:.2f}"),
    ("server CPU us/req", "server_cpu_us_per_request", "{:.0f}"),
    ("server CPU %", "server_cpu_percent", "{:.0f}"),
    ("database CPU us/req", "database_cpu_us_per_request", "{:.0f}"),
    ("database CPU %", "database_cpu_percent", "{:.0f}"),
    ("server+db CPU us/req", "server_and_database_cpu_us_per_request", "{:.0f}"),
    ("driver CPU us/req", "driver_cpu_us_per_request", "{:.0f}"),
    ("driver CPU %", "driver_cpu_percent", "{:.0f}"),
    ("driver ceiling req/s", "driver_ceiling_requests_per_s", "{:.0f}"),
    ("other procs CPU %", "other_processes_cpu_percent", "{:.0f}"),
    ("steal CPU %", "steal_cpu_percent", "{:.0f}"),
]
RATIO_METRICS = [
    "pairs_per_s",
    "pair_p50_ms",
    "pair_p99_ms",
    "create_p50_ms",
    "complete_p50_ms",
    "server_cpu_us_per_request",
    "database_cpu_us_per_request",
    "server_and_database_cpu_us_per_request",
]


def medians(results: list[Result]) -> dict[str, dict[str, float | None]]:
    by_target: dict[str, dict[str, float | None]] = {}
    for target in dict.fromkeys(result.target for result in results):
        runs = [r for r in results if r.target == target and r.failure is None]
        by_target[target] = {}
        for _, key, _ in METRICS:
            values = [getattr(r, key) for r in runs if getattr(r, key) is not None]
            by_target[target][key] = statistics.median(values) if values else None
    return by_target


def ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in RATIO_METRICS:
        mine, base = ours.get(key), baseline.get(key)
        out[key] = mine / base if mine is not None and base else None
    return out


def round_ratios(results: list[Result]) -> list[dict[str, float | None]]:
    """ours/baseline within each round: the two runs closest in time, so the least exposed to
    a neighbour's load changing between them."""
    by_round: dict[int, dict[str, Result]] = {}
    for result in results:
        if result.failure is None:
            by_round.setdefault(result.round, {})[result.target] = result
    return [
        ratios(asdict(pair["ours"]), asdict(pair["baseline"]))
        for _, pair in sorted(by_round.items())
        if "ours" in pair and "baseline" in pair
    ]


def median_of(per_round: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in RATIO_METRICS:
        values = [value for r in per_round if (value := r[key]) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def format_value(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def print_report(
    results: list[Result],
    median: dict[str, dict[str, float | None]],
    ratio: dict[str, float | None],
) -> None:
    columns = [f"{r.target} r{r.round}" for r in results] + [f"{t} median" for t in median]
    if ratio:
        columns.append("ours/baseline")
    width = max(13, *(len(c) for c in columns))
    print(f"{'':22}" + "".join(f"{c:>{width + 2}}" for c in columns))
    for label, key, pattern in METRICS:
        cells = [format_value(getattr(r, key), pattern) for r in results]
        cells += [format_value(median[t][key], pattern) for t in median]
        if ratio:
            cells.append(format_value(ratio.get(key), "{:.2f}x") if key in ratio else "")
        print(f"{label:22}" + "".join(f"{c:>{width + 2}}" for c in cells))
    print(
        f"{'errors (window)':22}"
        + "".join(f"{sum(r.errors.values()):>{width + 2}}" for r in results)
    )
    for r in results:
        name = f"{r.target} round {r.round}"
        if r.failure:
            print(f"FAILED {name}: {r.failure}")
        if r.errors or r.errors_outside_window or r.unfinished:
            print(
                f"FLAGGED {name}: errors in window {r.errors}, outside window "
                f"{r.errors_outside_window}, unfinished at end {r.unfinished}"
            )
        for warning in r.warnings:
            print(f"WARNING {name}: {warning}")


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError, ValueError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "uvloop": _uvloop_version(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# Trivial server for --driver-check: answers every request with a canned promise, so that
# nearly all CPU on the box goes to the driver.


class TrivialHttpServer(asyncio.Protocol):
    BODY = (
        b'{"id":"x","state":"PENDING","param":{"data":"' + PARAM_DATA.encode() + b'"},'
        b'"value":{},"timeout":1795525302890,"createdOn":1795525302890}'
    )
    CREATED = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\nResonate-Version: 0\r\n\r\n%s" % (len(BODY), BODY)
    )
    OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n" + (
        b'{"status":"ok"}'
    )

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (head_end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self._buffer[:head_end]).lower()
            length_at = head.find(b"\r\ncontent-length:")
            length = 0
            if length_at >= 0:
                line_end = head.find(b"\r\n", length_at + 2)
                length = int(head[length_at + 17 : line_end if line_end > 0 else None])
            if len(self._buffer) < head_end + 4 + length:
                return
            del self._buffer[: head_end + 4 + length]
            assert self._transport is not None
            self._transport.write(self.OK if head.startswith(b"get ") else self.CREATED)


async def serve_trivial(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(TrivialHttpServer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------------------------


# --quick: a smoke run for CI (no figure of it is meaningful).
QUICK_DURATION = 1.0
QUICK_WARMUP = 0.3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Create+complete pairs/s of our server vs a minimal baseline, in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; order alternates")
    parser.add_argument("--store", choices=sorted(STORES), default="sqlite")
    parser.add_argument(
        "--dsn",
        default=DEFAULT_POSTGRES_DSN,
        help="--store postgres: a database on the PostgreSQL server, from which each run's fresh "
        "database is created and dropped ($RESONATE_TEST_POSTGRES_DSN when set)",
    )
    parser.add_argument("--server-url", help="benchmark this running server as 'ours'")
    parser.add_argument("--server-pid", type=int, help="pid of --server-url, for its CPU")
    parser.add_argument("--only", choices=["ours", "baseline"], help="run a single target")
    parser.add_argument(
        "--driver-check",
        action="store_true",
        help="measure only the driver against a trivial canned-response server",
    )
    parser.add_argument(
        "--ours-arg",
        action="append",
        default=[],
        help="extra arguments for `resonate serve` (repeatable, shell-split)",
    )
    parser.add_argument("--driver-procs", type=int, default=1, help="load driver processes")
    parser.add_argument("--client", choices=["raw", "aiohttp"], default="raw")
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default=DEFAULT_LOOP,
        help="event loop of both servers (ours: --uvloop / --no-uvloop; the baseline: --loop)",
    )
    parser.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to /healthz")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the box to be idle (shared machines)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON results on stdout")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_DURATION} s measured after {QUICK_WARMUP} s of warmup, one "
        "round, unless given (checks that everything runs; its figures mean nothing)",
    )
    parser.add_argument("--serve-trivial", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.quick:
        given = sys.argv[1:] if argv is None else argv
        if not any(arg.startswith("--duration") for arg in given):
            options.duration = QUICK_DURATION
        if not any(arg.startswith("--warmup") for arg in given):
            options.warmup = QUICK_WARMUP
    if options.connections < options.driver_procs or options.driver_procs < 1:
        parser.error("--connections must be >= --driver-procs >= 1")
    if options.server_pid and not options.server_url:
        parser.error("--server-pid needs --server-url")
    return options


def _uvloop_version() -> str | None:
    try:
        import uvloop
    except ImportError:
        return None
    return str(getattr(uvloop, "__version__", "?"))


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.serve_trivial:
        asyncio.run(serve_trivial(options.serve_trivial))
        return 0
    if options.driver_check:
        targets = ["trivial"]
    elif options.only:
        targets = [options.only]
    else:
        targets = ["baseline", "ours"]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="resonate-bench-") as tmp:
        for round_index in range(1, options.rounds + 1):
            order = targets if round_index % 2 else targets[::-1]
            for target in order:
                workdir = Path(tmp) / f"{target}-{round_index}"
                workdir.mkdir()
                results.append(run_target(target, round_index, options, workdir))
                outcome = results[-1]
                log(
                    f"  {target}: "
                    + ("FAILED" if outcome.failure else f"{outcome.pairs_per_s:.0f} pairs/s")
                )
    median = medians(results)
    ratio: dict[str, float | None] = {}
    if "ours" in median and "baseline" in median:
        ratio = ratios(median["ours"], median["baseline"])
    per_round = round_ratios(results)
    flagged = any(result.flagged for result in results)
    if options.json:
        config = {
            key: getattr(options, key)
            for key in ("duration", "warmup", "connections", "rounds", "store", "server_url")
        }
        if options.store == "postgres":
            parts = urllib.parse.urlsplit(options.dsn)
            if parts.password:  # never print it
                parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
            config["dsn"] = urllib.parse.urlunsplit(parts)
        config |= {
            "driver_procs": options.driver_procs,
            "client": options.client,
            "loop": options.loop,
        }
        report = {
            "machine": machine() | STORES[options.store].describe(options),
            "config": config,
            "results": [asdict(result) | {"flagged": result.flagged} for result in results],
            "median": median,
            "ratio_ours_over_baseline": ratio,
            "ratio_per_round": per_round,
            "median_of_round_ratios": median_of(per_round),
            "flagged": flagged,
        }
        print(json.dumps(report, indent=2))
    else:
        if options.server_url:
            print(f"event loop: {options.loop} for a baseline; ours runs as it was started")
        else:
            print(f"event loop: {options.loop} (both servers)")
        print_report(results, median, ratio)
        if len(per_round) > 1:
            for key in ("pairs_per_s", "server_cpu_us_per_request"):
                cells = " ".join(format_value(r[key], "{:.2f}") for r in per_round)
                middle = format_value(median_of(per_round)[key], "{:.2f}")
                print(f"ours/baseline {key} per round: {cells}; median {middle}")
        if flagged:
            print("RUN FLAGGED: errors or failures above; do not trust these figures as is.")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
