"""PostgreSQL restarting (or dropping connections) under load (issue 5): while the database is
away every request fails fast with 503 and the JSON error body (never a 500, never a hang past
the request timeout), /readyz answers 503; once it is back the same server process recovers on
its own, and no write it acknowledged (201) is lost.

Runs against a private cluster (tests/support/private_pg.py), never the shared one: it is
stopped, crashed and has its sessions killed. Skipped only when the PostgreSQL server binaries
are absent.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.private_pg import PrivatePostgres, missing_binaries
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.slow

FAR = 2**62
WRITERS = 8
CLIENT_TIMEOUT = 5.0  # well below the server's request timeout (10 s): a hang fails the test
TX_TIMEOUT = "2s"  # aio.store.postgres.txTimeout: how long an operation may wait for the database
OUTAGE = 2.0  # seconds the database stays down (at least): longer than READY_CACHE
READY_CACHE = 1.2  # /readyz caches its verdict for 1 s (routes.READY_CACHE_SECONDS), plus slack
WARMUP_ACKS = 40  # completions acknowledged before the database goes away
RECOVERY_ACKS = 40  # completions acknowledged after it is back
PHASE_DEADLINE = 15.0
STEADY_AFTER = 1.0  # seconds after the first post-restart 201 from which only 201s are fine
UNAVAILABLE = 50304  # Code.NOT_READY: "store unavailable"


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    reason = missing_binaries()
    if reason:
        pytest.skip(f"private PostgreSQL cluster: {reason}")
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_server(private_pg: PrivatePostgres, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path,
        extra_args=[
            "--aio-store-postgres-enable",
            "--aio-store-postgres-url",
            private_pg.dsn,
            "--aio-store-postgres-tx-timeout",
            TX_TIMEOUT,
        ],
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ---- load ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    op: str  # create | complete | readyz
    pid: str
    started: float
    elapsed: float
    status: int | None  # None: no answer within CLIENT_TIMEOUT, or a transport error
    body: Any
    error: str = ""

    def describe(self) -> str:
        shown = self.error or repr(self.body)[:300]
        return f"{self.op} {self.pid} -> {self.status} after {self.elapsed:.2f}s: {shown}"


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    created: set[str] = field(default_factory=set)  # create answered 201
    attempted: dict[str, dict[str, Any]] = field(default_factory=dict)  # completion sent
    completed: dict[str, dict[str, Any]] = field(default_factory=dict)  # completion answered 201

    async def send(
        self, client: httpx.AsyncClient, op: str, pid: str, method: str, url: str, **kw: Any
    ) -> Answer:
        started = time.monotonic()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as error:
            answer = Answer(op, pid, started, time.monotonic() - started, None, None, repr(error))
        else:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            answer = Answer(
                op, pid, started, time.monotonic() - started, response.status_code, body
            )
        self.answers.append(answer)
        return answer

    def writes(self) -> list[Answer]:
        return [a for a in self.answers if a.op != "readyz"]

    def readyz(self) -> list[Answer]:
        return [a for a in self.answers if a.op == "readyz"]

    def acks_since(self, since: float) -> int:
        return sum(
            1 for a in self.answers if a.op == "complete" and a.status == 201 and a.started > since
        )


async def writer(client: httpx.AsyncClient, prefix: str, load: Load, stop: asyncio.Event) -> None:
    """Creates and completes promises with unique ids, one after the other, until stopped. A
    503 is never retried with the same id: its write may or may not have been committed."""
    n = 0
    while not stop.is_set():
        pid = f"{prefix}-{n}"
        n += 1
        created = await load.send(
            client, "create", pid, "POST", "/promises", json={"id": pid, "timeout": FAR}
        )
        if created.status != 201:
            await asyncio.sleep(0.02)
            continue
        load.created.add(pid)
        state = ("RESOLVED", "REJECTED")[n % 2]
        expected = {"state": state, "value": {"data": base64.b64encode(pid.encode()).decode()}}
        load.attempted[pid] = expected
        done = await load.send(client, "complete", pid, "PATCH", f"/promises/{pid}", json=expected)
        if done.status == 201:
            load.completed[pid] = expected
        else:
            await asyncio.sleep(0.02)


async def poll_readyz(client: httpx.AsyncClient, load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await load.send(client, "readyz", "-", "GET", "/readyz")
        await asyncio.sleep(0.1)


async def until(predicate: Callable[[], bool], seconds: float, what: str, load: Load) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            recent = "\n".join(a.describe() for a in load.answers[-15:])
            raise AssertionError(
                f"timed out after {seconds}s waiting for {what}; last answers:\n{recent}"
            )
        await asyncio.sleep(0.05)


# ---- checks -------------------------------------------------------------------------------------


def context(server: ServerProcess, pg: PrivatePostgres) -> str:
    return (
        f"\n--- server log (tail) ---\n{server.log()[-6000:]}"
        f"\n--- postgres log (tail) ---\n{pg.log()[-3000:]}"
    )


def error_code(answer: Answer) -> int | None:
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, int) else None
    return None


def check_answers(load: Load, server: ServerProcess, pg: PrivatePostgres) -> None:
    """Every answer is 201 (writes) / 200 (readyz) or a fast 503 with the JSON error body."""
    ok = {"create": 201, "complete": 201, "readyz": 200}
    bad = [
        a
        for a in load.answers
        if a.status != ok[a.op] and (a.status != 503 or error_code(a) != UNAVAILABLE)
    ]
    assert not bad, (
        f"{len(bad)} answers neither {ok} nor 503/{UNAVAILABLE} JSON:\n"
        + "\n".join(a.describe() for a in bad[:20])
        + context(server, pg)
    )
    for a in load.answers:
        if a.status == 503:
            error = a.body["error"]
            assert error["message"] and error["details"], a.describe()
    slowest = max(load.answers, key=lambda a: a.elapsed)
    assert slowest.elapsed < CLIENT_TIMEOUT, slowest.describe()


def check_recovered(
    load: Load, restarted: float, server: ServerProcess, pg: PrivatePostgres
) -> None:
    """After the first 201 past the restart (plus a moment for requests already in flight),
    nothing but successes: the server recovered on its own."""
    assert server.process is not None and server.process.poll() is None, (
        "the server exited" + context(server, pg)
    )
    first = min(a.started for a in load.writes() if a.status == 201 and a.started > restarted)
    late_failures = [
        a for a in load.answers if a.started > first + STEADY_AFTER and a.status not in (200, 201)
    ]
    assert not late_failures, (
        "failures after recovery:\n"
        + "\n".join(a.describe() for a in late_failures[:20])
        + context(server, pg)
    )
    readyz = load.readyz()
    assert readyz and readyz[-1].status == 200, readyz[-1:]


async def check_nothing_acknowledged_lost(load: Load, server: ServerProcess) -> None:
    missing: list[str] = []
    wrong: list[tuple[str, Any, Any]] = []
    gate = asyncio.Semaphore(16)

    async def check(client: httpx.AsyncClient, pid: str) -> None:
        async with gate:
            response = await client.get(f"/promises/{pid}")
        if response.status_code != 200:
            missing.append(f"{pid}: {response.status_code} {response.text[:200]}")
            return
        body = response.json()
        got = {"state": body["state"], "value": body["value"]}
        if pid in load.completed:
            if got != load.completed[pid]:
                wrong.append((pid, got, load.completed[pid]))
        elif body["state"] != "PENDING" and got != load.attempted.get(pid):
            # A completion answered 503 may have committed (COMMIT sent, answer lost): then it is
            # the completion that was sent, and nothing else.
            wrong.append((pid, got, load.attempted.get(pid)))

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await asyncio.gather(*(check(client, pid) for pid in sorted(load.created)))
    assert missing == [], f"{len(missing)} acknowledged creates lost: {missing[:10]}"
    assert wrong == [], f"{len(wrong)} promises in the wrong state: {wrong[:10]}"


async def start_load(
    server: ServerProcess, load: Load, stop: asyncio.Event
) -> tuple[httpx.AsyncClient, list[asyncio.Task[None]]]:
    client = httpx.AsyncClient(
        base_url=server.url,
        timeout=CLIENT_TIMEOUT,
        limits=httpx.Limits(max_connections=WRITERS + 4),
    )
    prefix = f"r{time.monotonic_ns() % 10**9}"
    tasks = [
        asyncio.create_task(writer(client, f"{prefix}-w{i}", load, stop)) for i in range(WRITERS)
    ]
    tasks.append(asyncio.create_task(poll_readyz(client, load, stop)))
    await until(
        lambda: len(load.completed) >= WARMUP_ACKS and any(a.status == 200 for a in load.readyz()),
        PHASE_DEADLINE,
        "the warm-up writes",
        load,
    )
    return client, tasks


async def stop_load(
    client: httpx.AsyncClient, tasks: list[asyncio.Task[None]], stop: asyncio.Event
) -> None:
    stop.set()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), CLIENT_TIMEOUT * 2)
    finally:
        await client.aclose()


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_restart_under_load_answers_503_then_recovers_losing_nothing(
    private_pg: PrivatePostgres, pg_server: ServerProcess, mode: str
) -> None:
    """`pg_ctl stop -m fast` (sessions ended with FATAL 57P01, checkpoint) or `-m immediate`
    (a crash: WAL recovery at the next start), an outage of OUTAGE seconds, then start again."""
    load, stop = Load(), asyncio.Event()
    client, tasks = await start_load(pg_server, load, stop)
    pid_before = pg_server.process.pid if pg_server.process else None
    try:
        down = time.monotonic()
        await asyncio.to_thread(private_pg.stop, mode)
        stopped = time.monotonic()
        await until(
            lambda: (
                any(a.status == 503 and a.started > down for a in load.writes())
                and any(a.status == 503 and a.started > down for a in load.readyz())
            ),
            PHASE_DEADLINE,
            "writes and /readyz answering 503 while the database is down",
            load,
        )
        await asyncio.sleep(max(0.0, down + OUTAGE - time.monotonic()))  # the deliberate outage
        starting = time.monotonic()
        await asyncio.to_thread(private_pg.start)
        restarted = time.monotonic()
        await until(
            lambda: (
                load.acks_since(restarted) >= RECOVERY_ACKS
                and any(a.status == 200 and a.started > restarted for a in load.readyz())
            ),
            PHASE_DEADLINE,
            "writes and /readyz to succeed again after the restart",
            load,
        )
        await asyncio.sleep(STEADY_AFTER)  # the steady state checked below
    finally:
        await stop_load(client, tasks, stop)

    # Answered entirely while the database was down (pg_ctl stop had returned, start not begun).
    outage = [a for a in load.answers if stopped < a.started and a.started + a.elapsed < starting]
    assert any(a.status == 503 for a in outage)
    # /readyz caches its verdict for READY_CACHE seconds: a 200 may outlive the database by that.
    succeeded = [
        a.describe()
        for a in outage
        if a.status in (200, 201) and (a.op != "readyz" or a.started > stopped + READY_CACHE)
    ]
    assert not succeeded, f"answered with success while the database was down: {succeeded[:5]}"

    check_answers(load, pg_server, private_pg)
    check_recovered(load, restarted, pg_server, private_pg)
    assert pg_server.process is not None and pg_server.process.pid == pid_before
    await check_nothing_acknowledged_lost(load, pg_server)
    assert len(load.completed) >= WARMUP_ACKS + RECOVERY_ACKS


async def test_terminated_sessions_under_load_answer_503_then_recover(
    private_pg: PrivatePostgres, pg_server: ServerProcess
) -> None:
    """The database stays up but kills every server session (pg_terminate_backend), a few
    times over: each request answers 201 or a fast 503, the pool reconnects by itself."""
    load, stop = Load(), asyncio.Event()
    client, tasks = await start_load(pg_server, load, stop)
    killed = 0
    try:
        admin = await asyncpg.connect(private_pg.dsn)
        try:
            for _ in range(5):
                killed += await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'resonate' AND pid <> pg_backend_pid()"
                )
                mark = time.monotonic()
                await until(
                    lambda mark=mark: load.acks_since(mark) >= 10,
                    PHASE_DEADLINE,
                    "writes to succeed again after pg_terminate_backend",
                    load,
                )
        finally:
            await admin.close()
        last_kill = time.monotonic()
        await until(
            lambda: (
                load.acks_since(last_kill) >= RECOVERY_ACKS
                and any(a.status == 200 and a.started > last_kill for a in load.readyz())
            ),
            PHASE_DEADLINE,
            "steady successes after the last pg_terminate_backend",
            load,
        )
        await asyncio.sleep(STEADY_AFTER)
    finally:
        await stop_load(client, tasks, stop)

    assert killed >= 5, "no resonate session was terminated"
    check_answers(load, pg_server, private_pg)
    check_recovered(load, last_kill, pg_server, private_pg)
    await check_nothing_acknowledged_lost(load, pg_server)
