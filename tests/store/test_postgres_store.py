"""The PostgreSQL store (http-api.md §14, §15): the same Transaction semantics as the SQLite
store, guarded statements that hold under concurrency (and across two servers on one
database), migrations under an advisory lock, and clear failures when the database does not
answer.

Needs RESONATE_TEST_POSTGRES_DSN (CI: postgresql://postgres@127.0.0.1:5432/test); every test
gets a database of its own, created next to the one the DSN names and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from resonate.core.callback import Callback
from resonate.core.clock import INT64_MAX, ManualClock
from resonate.core.errors import Code, ResonateError
from resonate.core.lock import Lock, LockQuery
from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.routing import Router
from resonate.core.schedule import Schedule
from resonate.core.search import PromiseQuery, ScheduleQuery
from resonate.core.task import Task, TaskState, invoke_id
from resonate.server import callbacks, locks, promises, schedules, tasks
from resonate.server.config import Config
from resonate.store.base import Event, MigrationError, StoreUnavailable
from resonate.store.migrations import pending_message
from resonate.store.postgres.connection import postgres_dsn_and_options
from resonate.store.postgres.store import MAX_ATTEMPTS, STATEMENTS, PostgresStore
from resonate.store.postgres.transaction import like_pattern, promise_search
from resonate.store.sqlite.store import SqliteStore
from tests.support import pg
from tests.support.servers import ServerProcess

DSN = pg.DSN
FAR = 2**62
NOW = 1_700_000_000_000
LATEST = 10  # 001_initial_schema, 002_schedule_timezone, 003_complete_promise_function,
# 004_dashboard_indexes, 005_callbacks_by_promise_index, 006_protocol_2026,
# 007_promise_tag_search, 008_retention_index, 009_task_retention_index,
# 010_complete_by_primary_key


# ---- fixtures -----------------------------------------------------------------------------------


def server_address() -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(DSN)
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh, empty database; its DSN."""
    if not DSN:
        pytest.skip(pg.SKIP_REASON)
    dsn = await pg.create_database()
    try:
        yield dsn
    finally:
        await pg.drop_database(dsn)


class Recorder:
    """What the store reports: transactions (operations, status) and published events."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, str]] = []
        self.events: list[Event] = []

    def on_batch(self, operations: int, seconds: float, status: str) -> None:
        self.batches.append((operations, status))

    def on_events(self, events: Any) -> None:
        self.events.extend(events)


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def store(database: str, recorder: Recorder) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(
        database, pool_size=8, on_batch=recorder.on_batch, on_events=recorder.on_events
    )
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The reference: the PostgreSQL store must answer as the SQLite store does."""
    opened = SqliteStore(str(tmp_path / "reference.db"))
    await opened.open()
    yield opened
    await opened.close()


async def on_both(stores: tuple[Any, ...], operation: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    return [await each.run(operation) for each in stores]


# ---- records ------------------------------------------------------------------------------------


def promise(pid: str, tags: dict[str, str] | None = None, timeout: int = FAR) -> Promise:
    return Promise(pid, PromiseState.PENDING, Value(), Value(), timeout, None, None, tags or {}, 1)


def task(
    tid: str,
    root: str,
    state: TaskState = TaskState.INIT,
    *,
    expires_at: int = 0,
    timeout: int = FAR,
    counter: int = 1,
    process_id: str | None = None,
    ttl: int = 0,
) -> Task:
    return Task(
        id=tid,
        state=state,
        root_promise_id=root,
        recv={"type": "poll", "data": {"group": "g"}},
        message={"type": "invoke", "root": root, "leaf": root},
        timeout=timeout,
        counter=counter,
        process_id=process_id,
        ttl=ttl,
        expires_at=expires_at,
        created_on=NOW,
    )


def schedule(sid: str, next_run_time: int, tags: dict[str, str] | None = None) -> Schedule:
    return Schedule(
        id=sid,
        cron="* * * * *",
        promise_id="{{.id}}.{{.timestamp}}",
        promise_timeout=60_000,
        next_run_time=next_run_time,
        created_on=NOW,
        tags=tags or {},
    )


def insert_promises(*records: Promise) -> Callable[[Any], Awaitable[None]]:
    async def op(tx: Any) -> None:
        for record in records:
            assert await tx.insert_promise(record)

    return op


def insert_tasks(*records: Task) -> Callable[[Any], Awaitable[None]]:
    async def op(tx: Any) -> None:
        for record in records:
            assert await tx.insert_task(record)

    return op


async def get_promise(store: Any, pid: str) -> Promise | None:
    async def op(tx: Any) -> Promise | None:
        return await tx.get_promise(pid)

    result: Promise | None = await store.run(op)
    return result


# ---- migrations (§15) ---------------------------------------------------------------------------


async def test_a_fresh_database_is_migrated_at_open(database: str) -> None:
    store = PostgresStore(database)
    status = await store.open()
    await store.close()
    assert (status.current, status.latest) == (LATEST, LATEST)
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT id, name FROM migrations ORDER BY id")
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'schedules'"
        )
    finally:
        await conn.close()
    assert [(r["id"], r["name"]) for r in rows] == [
        (1, "initial_schema"),
        (2, "schedule_timezone"),
        (3, "complete_promise_function"),
        (4, "dashboard_indexes"),
        (5, "callbacks_by_promise_index"),
        (6, "protocol_2026"),
        (7, "promise_tag_search"),
        (8, "retention_index"),
        (9, "task_retention_index"),
        (10, "complete_by_primary_key"),
    ]
    assert "timezone" in {r["column_name"] for r in columns}


async def test_the_completion_function_reads_the_promise_by_primary_key(database: str) -> None:
    """Migration 010: the function's guarded UPDATE uses the primary key even in a generic
    plan on a table without statistics, never the pending-by-timeout index (which would walk
    every pending promise due later). The plan is read from auto_explain's messages."""
    store = PostgresStore(database)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(database)
    plans: list[str] = []
    conn.add_log_listener(lambda _conn, message: plans.append(str(message)))
    try:
        await conn.execute(
            "INSERT INTO promises (id, state, timeout, created_on)"
            " SELECT 'p' || n, 1, $1::bigint + n, 0 FROM generate_series(1, 200) AS n",
            NOW,
        )
        for statement in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET plan_cache_mode = force_generic_plan",
            "SET client_min_messages = log",
        ):
            await conn.execute(statement)
        for n in range(1, 8):  # past PL/pgSQL's custom plans, if generic ones were not forced
            row = await conn.fetchrow(
                "SELECT r_state"
                " FROM resonate_complete_promise($1, 2, NULL, NULL, NULL, $2, $2, $2)",
                f"p{n}",
                NOW,
            )
            assert row is not None and row["r_state"] == 2
    finally:
        await conn.close()
    updates = [plan for plan in plans if "Update on promises" in plan]
    assert len(updates) == 7, plans
    for plan in updates:
        assert "promises_pkey" in plan and "idx_promises_pending_timeout" not in plan, plan


async def test_pending_migrations_refuse_to_open_until_migrate_up(database: str) -> None:
    store = PostgresStore(database)
    await store.open(migrate_fresh=False)
    first = store.migrations[0]
    conn = await asyncpg.connect(database)
    try:  # a database an older server (knowing only 001) created
        await conn.execute(STATEMENTS["create_migrations_table"])
        await conn.execute(first.sql)
        await conn.execute(STATEMENTS["record_migration"], first.version, first.name, NOW)
    finally:
        await conn.close()
    assert [m.version for m in store.pending_migrations(1)] == list(range(2, LATEST + 1))
    await store.close()

    refused = PostgresStore(database)
    with pytest.raises(MigrationError) as raised:
        await refused.open()
    assert str(raised.value) == pending_message(1, LATEST)
    assert 'run "resonate migrate up"' in str(raised.value)

    migrating = PostgresStore(database)
    await migrating.open(migrate_fresh=False)
    applied = await migrating.migrate_up()
    assert [m.version for m in applied] == list(range(2, LATEST + 1))
    assert await migrating.migrate_up() == []
    await migrating.close()
    reopened = PostgresStore(database)
    assert (await reopened.open()).current == LATEST
    await reopened.close()


async def test_a_database_ahead_of_the_server_is_refused(
    store: PostgresStore, database: str
) -> None:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "INSERT INTO migrations (id, name, applied_on) VALUES ($1, 'future', 0)", LATEST + 1
        )
    finally:
        await conn.close()
    later = PostgresStore(database)
    with pytest.raises(MigrationError, match="newer than the latest") as raised:
        await later.open()
    assert str(raised.value) == pending_message(LATEST + 1, LATEST)
    migrating = PostgresStore(database)
    await migrating.open(migrate_fresh=False)
    with pytest.raises(MigrationError):
        await migrating.migrate_up()
    await migrating.close()


async def test_servers_starting_together_migrate_once(database: str) -> None:
    """The advisory lock: the second migration waits, then finds nothing left to apply."""
    stores = [PostgresStore(database, pool_size=2) for _ in range(4)]
    statuses = await asyncio.gather(*(s.open() for s in stores))
    for each in stores:
        await each.close()
    assert all(s.current == LATEST for s in statuses)
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM migrations") == LATEST
    finally:
        await conn.close()


def postgres_flags(database_dsn: str, *extra: str) -> list[str]:
    host, port, user = server_address()
    name = urllib.parse.urlsplit(database_dsn).path.lstrip("/")
    return [
        "--aio-store-postgres-enable",
        "--aio-store-postgres-host",
        host,
        "--aio-store-postgres-port",
        str(port),
        "--aio-store-postgres-database",
        name,
        "--aio-store-postgres-username",
        user,
        *extra,
    ]


def resonate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
    return subprocess.run(
        [sys.executable, "-m", "resonate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def test_migrate_commands_use_the_postgres_store(database: str) -> None:
    flags = postgres_flags(database)
    status = await asyncio.to_thread(resonate, "migrate", "status", *flags)
    assert status.returncode == 0, status.stderr
    assert "current version: 0" in status.stdout
    assert "pending: 001_initial_schema.sql" in status.stdout
    dry_run = await asyncio.to_thread(resonate, "migrate", "dry-run", *flags)
    assert "CREATE TABLE IF NOT EXISTS promises" in dry_run.stdout
    up = await asyncio.to_thread(resonate, "migrate", "up", *flags)
    assert up.returncode == 0, up.stderr
    assert "applied 002_schedule_timezone.sql" in up.stdout
    again = await asyncio.to_thread(resonate, "migrate", "status", *flags)
    assert f"current version: {LATEST}" in again.stdout and "no pending" in again.stdout


# ---- promises: races through the operations (§2, §14.3) ---------------------------------------


def run_request(
    store: PostgresStore,
    clock: ManualClock,
    request: promises.CreatePromise | promises.CompletePromise,
    shortcut: bool,
) -> Awaitable[promises.Outcome]:
    """A create or a completion as the HTTP routes run it (with the store shortcut), or as one
    transaction."""
    creates = isinstance(request, promises.CreatePromise)
    if shortcut:
        run: Any = promises.run_create_promise if creates else promises.run_complete_promise
        return cast(Awaitable[promises.Outcome], run(store, clock, request))
    operation: Any = promises.create_promise if creates else promises.complete_promise
    return store.run(partial(operation, clock=clock, request=request))


def resume_callback(
    clock: ManualClock, promise_id: str, root: str
) -> Callable[[Any], Awaitable[Any]]:
    """The operation registering a resume callback of ``root`` on ``promise_id``."""
    return partial(
        callbacks.create_callback,
        clock=clock,
        promise_id=promise_id,
        root_promise_id=root,
        recv="poll://any@g",
        timeout=FAR,
    )


WITH_AND_WITHOUT_SHORTCUT = pytest.mark.parametrize(
    "shortcut", [True, False], ids=["shortcut", "transaction"]
)


@WITH_AND_WITHOUT_SHORTCUT
async def test_concurrent_completes_have_exactly_one_winner(
    store: PostgresStore, shortcut: bool
) -> None:
    clock = ManualClock(NOW)
    created = await run_request(store, clock, promises.CreatePromise("p", FAR), shortcut)
    assert created.created

    def complete(i: int) -> Awaitable[promises.Outcome]:
        state = (PromiseState.RESOLVED, PromiseState.REJECTED)[i % 2]
        request = promises.CompletePromise("p", state, Value({"i": str(i)}, str(i).encode()))
        return run_request(store, clock, request, shortcut)

    results = await asyncio.gather(*(complete(i) for i in range(20)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, promises.Outcome) and r.created]
    assert len(winners) == 1
    losers = [r for r in results if not (isinstance(r, promises.Outcome) and r.created)]
    # Every loser saw the winner's completion (a 403, or a 200 answering with it).
    for loser in losers:
        if isinstance(loser, ResonateError):
            assert loser.code.http_status == 403
        else:
            assert loser.promise == winners[0].promise
    stored = await get_promise(store, "p")
    assert stored == winners[0].promise


@WITH_AND_WITHOUT_SHORTCUT
async def test_concurrent_creates_insert_once(store: PostgresStore, shortcut: bool) -> None:
    clock = ManualClock(NOW)
    request = promises.CreatePromise("same", FAR, idempotency_key="k")
    results = await asyncio.gather(
        *(run_request(store, clock, request, shortcut) for _ in range(20))
    )
    assert sum(r.created for r in results) == 1
    assert {r.promise.id for r in results} == {"same"}


@WITH_AND_WITHOUT_SHORTCUT
async def test_completion_fires_callbacks_registered_concurrently(
    store: PostgresStore, shortcut: bool
) -> None:
    """A registration racing a completion either lands before it (and becomes a task) or sees
    the promise completed; never a callback left behind on a completed promise. With the
    shortcut the completion is one call of the stored function, whose statements each take a
    fresh snapshot as the statements of a transaction do."""
    clock = ManualClock(NOW)
    for i in range(30):
        pid = f"race{i}"
        await store.run(insert_promises(promise(pid)))
        request = promises.CompletePromise(pid, PromiseState.RESOLVED)
        register = resume_callback(clock, pid, f"root{i}")
        completed, registration = await asyncio.gather(
            run_request(store, clock, request, shortcut), store.run(register)
        )
        assert completed.created

        async def leftovers(tx: Any, pid: str = pid, i: int = i) -> tuple[Any, Any]:
            return (
                await tx.get_callback(f"__resume:root{i}:{pid}"),
                await tx.get_task(f"__resume:root{i}:{pid}"),
            )

        callback, fired = await store.run(leftovers)
        assert callback is None
        if registration.created:
            assert fired is not None and fired.state is TaskState.INIT
        else:
            assert registration.callback is None
            assert registration.promise.state is PromiseState.RESOLVED


async def test_creates_and_completes_cost_one_round_trip_each(
    database: str, recorder: Recorder
) -> None:
    """The shortcuts send one statement each, outside a transaction (no BEGIN, no COMMIT),
    the completion's root tasks and callbacks included; what they do not settle falls back to
    the transactional operation."""
    sent: list[str] = []

    def verb(query: str) -> str:
        code = [line for line in query.splitlines() if not line.lstrip().startswith("--")]
        return " ".join(code).split()[0]

    async def log_queries(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda logged: sent.append(verb(logged.query)))

    store = PostgresStore(
        database,
        pool_size=1,
        connect_options={"init": log_queries},
        on_events=recorder.on_events,
    )
    await store.open()
    try:
        clock = ManualClock(NOW)
        create = promises.CreatePromise("leaf", FAR, idempotency_key="k")
        assert (await run_request(store, clock, create, shortcut=True)).created
        await store.run(resume_callback(clock, "leaf", "root"))
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        sent.clear()
        recorder.events.clear()
        complete = promises.CompletePromise("leaf", PromiseState.RESOLVED)
        assert (await run_request(store, clock, complete, shortcut=True)).created
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        assert sent == ["SELECT"]  # resonate_complete_promise
        assert recorder.events == [Event("promise", "resolved"), Event("task", "created")]

        async def fired(tx: Any) -> tuple[Any, Any]:
            return await tx.get_callback("__resume:root:leaf"), await tx.get_task(
                "__resume:root:leaf"
            )

        callback, task = await store.run(fired)
        assert callback is None and task is not None and task.state is TaskState.INIT

        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        sent.clear()  # a create of an existing id: the shortcut wrote nothing, then the
        again = await run_request(store, clock, create, shortcut=True)  # transaction answers
        assert not again.created and again.promise.state is PromiseState.RESOLVED
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        assert sent[:2] == ["INSERT", "BEGIN"] and sent[-1] == "COMMIT"

        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        sent.clear()  # a promise the router matches: with its invoke task, still one statement
        invoked = promises.CreatePromise("fn", FAR, tags={"resonate:invoke": "poll://any@g"})
        routed = await promises.run_create_promise(store, clock, invoked, Router())
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        assert sent == ["WITH"]  # insert_promise_and_invoke_task
        assert routed.created and routed.task is not None

        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        sent.clear()  # create-with-task: the invoke task is CLAIMED by the caller
        claimed = await promises.run_create_promise(
            store,
            clock,
            replace(invoked, id="fn2"),
            Router(),
            tasks.TaskClaim("worker", 30_000),
        )
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        assert sent == ["WITH"]
        assert claimed.task is not None and claimed.task.state is TaskState.CLAIMED

        async def stored_tasks(tx: Any) -> list[Any]:
            return [await tx.get_task(task.id) for task in (routed.task, claimed.task)]

        assert await store.run(stored_tasks) == [routed.task, claimed.task]

        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        sent.clear()  # a fenced request has no shortcut: the fence is checked in the transaction
        fenced = promises.CreatePromise("fenced", FAR, fence=promises.Fence("t", 1))
        with pytest.raises(ResonateError):
            await run_request(store, clock, fenced, shortcut=True)
        await asyncio.sleep(0)  # asyncpg logs a query one loop turn later
        assert sent[0] == "BEGIN"
    finally:
        await store.close()


async def test_a_promise_is_never_stored_without_its_invoke_task(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    """Should the invoke task's id exist already (it cannot: it derives from the new promise's
    id), the insert fails as a whole on both stores, through the shortcut or not."""
    clock = ManualClock(NOW)
    invoked = promises.CreatePromise("fn", FAR, tags={"resonate:invoke": "poll://any@g"})
    for each in (store, sqlite_store):
        await each.run(insert_tasks(task(invoke_id("fn"), "elsewhere")))
        with pytest.raises(ResonateError) as raised:
            await promises.run_create_promise(each, clock, invoked, Router())
        assert raised.value.code is Code.STORE_ERROR
        assert await get_promise(each, "fn") is None


async def test_lazy_timeout_and_fire_callbacks_match_sqlite(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    clock = ManualClock(NOW)
    both = (store, sqlite_store)
    await on_both(both, insert_promises(promise("t", timeout=NOW + 10)))
    for each in both:
        await each.run(
            partial(
                callbacks.create_subscription,
                clock=clock,
                promise_id="t",
                subscription_id="s",
                recv="poll://any@g",
                timeout=FAR,
            )
        )
    clock.advance(10)
    read = await on_both(both, partial(promises.read_promise, clock=clock, promise_id="t"))
    assert read[0] == read[1]
    assert read[0].state is PromiseState.REJECTED_TIMEDOUT

    async def notify_task(tx: Any) -> Task | None:
        return await tx.get_task("__notify:t:s")

    fired = await on_both(both, notify_task)
    assert fired[0] == fired[1] and fired[0] is not None


async def test_a_search_never_reads_back_a_promise_the_timeout_loop_is_timing_out(
    database: str, store: PostgresStore
) -> None:
    """The eager loop holds an overdue promise's row while it times it out; a search that
    meets that row must wait for it, not skip it and report it PENDING (transitions S1)."""
    clock = ManualClock(NOW)
    await store.run(insert_promises(promise("race/p", timeout=NOW - 1)))
    loop_holds_the_row = asyncio.Event()
    release_the_loop = asyncio.Event()

    async def eager_loop(tx: Any) -> int:
        overdue = await tx.overdue_promises(NOW, 10)
        loop_holds_the_row.set()
        await release_the_loop.wait()
        for overdue_promise in overdue:
            await promises.time_out(tx, overdue_promise, NOW)
        return len(overdue)

    loop = asyncio.ensure_future(store.run(eager_loop))
    await asyncio.wait_for(loop_holds_the_row.wait(), 10)
    search = asyncio.ensure_future(
        store.run(partial(promises.search_promises, clock=clock, query=PromiseQuery(id="race/*")))
    )
    # The search must block on the held row lock (seen from a third session), not skip it.
    observer = await asyncpg.connect(database)
    try:
        deadline = time.monotonic() + 10
        while not await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            assert not search.done(), "the search did not wait for the row the loop holds"
            assert time.monotonic() < deadline, "the search never waited for the row lock"
            await asyncio.sleep(0.01)
    finally:
        await observer.close()
    release_the_loop.set()
    assert await loop == 1
    page = await asyncio.wait_for(search, 10)
    assert [found.state for found in page.promises] == [PromiseState.REJECTED_TIMEDOUT]


# ---- search: D6 patterns and tags (§1.8, §14.3) ------------------------------------------------

SEARCH_IDS = ["a%b", "axb", "a_b", "aXb", "A%B", "a\\b", "ab", "b", "é1", "ép", "a%"]
PATTERNS = [
    ("everything", "*"),
    ("no star means equality, % literal", "a%b"),
    ("% is literal before a star", "a%*"),
    ("_ is literal before a star", "a_*"),
    ("star in the middle", "a*b"),
    ("case-sensitive", "A*"),
    ("backslash is literal", "a\\*"),
    ("suffix", "*b"),
    ("no match", "x*"),
    ("non-ASCII prefix", "é*"),
    ("two stars", "*%*"),
]


def d6_matches(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text, re.S) is not None


@pytest.mark.parametrize(("rule", "pattern"), PATTERNS, ids=[rule for rule, _ in PATTERNS])
async def test_id_patterns_follow_d6(
    store: PostgresStore, sqlite_store: SqliteStore, rule: str, pattern: str
) -> None:
    both = (store, sqlite_store)
    await on_both(both, insert_promises(*(promise(pid) for pid in SEARCH_IDS)))

    async def search(tx: Any) -> list[str]:
        return [p.id for _, p in await tx.search_promises(PromiseQuery(pattern))]

    found = await on_both(both, search)
    expected = [pid for pid in reversed(SEARCH_IDS) if d6_matches(pattern, pid)]
    assert found[0] == expected, rule
    assert found[0] == found[1], rule


def test_like_pattern_escapes_everything_but_star() -> None:
    assert like_pattern("a%b_c\\d*") == "a\\%b\\_c\\\\d%"


TAGGED = {
    "t1": {"k": "v"},
    "t2": {"k": "V"},
    "t3": {"k": "v", "other": "1"},
    "t4": {"k.x": "v"},
    "t5": {'q"uote': "v"},
    "t6": {"é": "ü"},
    "t7": {},
}
TAG_FILTERS = [
    ("one tag", {"k": "v"}, ["t3", "t1"]),
    ("values are case-sensitive", {"k": "V"}, ["t2"]),
    ("every tag must match", {"k": "v", "other": "1"}, ["t3"]),
    ("a dot in a key is not a path", {"k.x": "v"}, ["t4"]),
    ("a quote in a key", {'q"uote': "v"}, ["t5"]),
    ("non-ASCII keys and values", {"é": "ü"}, ["t6"]),
    ("% in a value is literal", {"k": "%"}, []),
]


@pytest.mark.parametrize(
    ("rule", "tags", "expected"), TAG_FILTERS, ids=[rule for rule, _, _ in TAG_FILTERS]
)
async def test_tag_filters(
    store: PostgresStore,
    sqlite_store: SqliteStore,
    rule: str,
    tags: dict[str, str],
    expected: list[str],
) -> None:
    both = (store, sqlite_store)
    await on_both(both, insert_promises(*(promise(p, t) for p, t in TAGGED.items())))

    async def search(tx: Any) -> list[str]:
        return [p.id for _, p in await tx.search_promises(PromiseQuery("*", tags=tags))]

    assert await on_both(both, search) == [expected, expected], rule


async def test_search_pages_and_states_match_sqlite(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    both = (store, sqlite_store)
    clock = ManualClock(NOW)
    await on_both(both, insert_promises(*(promise(f"page{i}") for i in range(7))))
    for pid in ("page1", "page4"):
        request = promises.CompletePromise(pid, PromiseState.REJECTED)
        await on_both(both, partial(promises.complete_promise, clock=clock, request=request))

    async def all_pages(tx: Any, state: str | None) -> list[list[str]]:
        pages: list[list[str]] = []
        query = PromiseQuery("page*", state=state, limit=2)
        while True:
            rows = await tx.search_promises(query)
            if not rows:
                return pages
            pages.append([p.id for _, p in rows])
            query = replace(query, before_sort_id=rows[-1][0])

    for state in (None, "pending", "rejected"):
        found = await on_both(both, partial(all_pages, state=state))
        assert found[0] == found[1], state
    assert found[0] == [["page4", "page1"]]


async def test_search_for_text_postgres_cannot_hold_finds_nothing(store: PostgresStore) -> None:
    await store.run(insert_promises(promise("plain", {"k": "v"})))

    async def search(tx: Any) -> tuple[Any, ...]:
        return (
            await tx.search_promises(PromiseQuery("pl\x00*")),
            await tx.search_promises(PromiseQuery("*", tags={"k": "v\x00"})),
            await tx.get_promise("plain\x00"),
            await tx.search_locks(LockQuery("\x00*")),
        )

    assert await store.run(search) == ([], [], None, [])


async def _plan(database: str, query: PromiseQuery, generic: bool) -> str:
    sql, params = promise_search(STATEMENTS, query)
    conn = await asyncpg.connect(database)
    try:
        if generic:
            await conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await conn.fetch("EXPLAIN " + sql, *params)
    finally:
        await conn.close()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
async def test_tag_and_prefix_searches_use_the_indexes(
    store: PostgresStore, database: str, generic: bool
) -> None:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "INSERT INTO promises (id, state, timeout, tags, created_on)"
            " SELECT 'bulk-' || n, 1, $1, jsonb_build_object('resonate:root', 'r' || n), 0"
            " FROM generate_series(1, 20000) AS n",
            FAR,
        )
        await conn.execute("ANALYZE promises")
    finally:
        await conn.close()
    tag_plan = await _plan(database, PromiseQuery("*", tags={"resonate:root": "r7"}), generic)
    assert "idx_promises_tags" in tag_plan, tag_plan
    prefix_plan = await _plan(database, PromiseQuery("bulk-1234*"), generic)
    assert "promises_pkey" in prefix_plan, prefix_plan

    async def search(tx: Any) -> list[str]:
        rows = await tx.search_promises(PromiseQuery("bulk-1234*", tags={"resonate:root": "r1234"}))
        return [p.id for _, p in rows]

    assert await store.run(search) == ["bulk-1234"]


# ---- tasks (§4) ---------------------------------------------------------------------------------


async def test_sendable_tasks_take_the_oldest_due_task_of_each_idle_root(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    both = (store, sqlite_store)
    records = [
        task("r1-first", "r1"),
        task("r1-second", "r1"),
        task("r2-waiting", "r2"),
        task("r2-busy", "r2", TaskState.ENQUEUED, expires_at=NOW + 1000),
        task("r3-later", "r3", expires_at=NOW + 1),
        task("r4-due", "r4", expires_at=NOW),
        task("r5-claimed", "r5", TaskState.CLAIMED, process_id="p", ttl=10, expires_at=NOW - 1),
        task("r6-timedout", "r6", TaskState.ENQUEUED, timeout=NOW, expires_at=NOW + 100),
    ]
    await on_both(both, insert_tasks(*records))

    async def due(tx: Any) -> tuple[list[str], list[str]]:
        sendable = [t.id for t in await tx.sendable_tasks(NOW, 10)]
        expired = [t.id for t in await tx.expired_tasks(NOW, 10)]
        return sendable, expired

    found = await on_both(both, due)
    assert found[0] == (["r1-first", "r4-due"], ["r5-claimed", "r6-timedout"])
    assert found[0] == found[1]


async def test_swap_task_is_guarded_by_state_and_counter(store: PostgresStore) -> None:
    original = task("swap", "root")
    await store.run(insert_tasks(original))

    def claim(i: int) -> Awaitable[bool]:
        claimed = replace(
            original, state=TaskState.CLAIMED, process_id=f"p{i}", ttl=1000, expires_at=NOW + 1
        )

        async def op(tx: Any) -> bool:
            return bool(await tx.swap_task(original, claimed))

        return store.run(op)

    results = await asyncio.gather(*(claim(i) for i in range(20)))
    assert results.count(True) == 1

    async def check(tx: Any) -> tuple[bool, bool, Task]:
        stale = replace(original, counter=2)
        current = await tx.get_task("swap")
        return (
            await tx.swap_task(stale, replace(stale, state=TaskState.COMPLETED)),
            await tx.task_is_claimed("swap", 1),
            current,
        )

    stale_swap, claimed, current = await store.run(check)
    assert not stale_swap and claimed
    assert current.process_id == f"p{results.index(True)}"


async def test_heartbeat_saturates_at_int64(store: PostgresStore) -> None:
    huge = task("hb", "root", TaskState.CLAIMED, process_id="p", ttl=INT64_MAX, expires_at=1)
    await store.run(insert_tasks(huge))
    await store.run(
        partial(
            locks.acquire_lock, clock=ManualClock(NOW), request=lock_request("res", "e", INT64_MAX)
        )
    )

    async def heartbeat(tx: Any) -> tuple[int, int, Task, Lock]:
        count = await tx.heartbeat_tasks("p", NOW)
        held = await tx.heartbeat_locks("p", NOW)
        return count, held, await tx.get_task("hb"), await tx.get_lock("res")

    count, held, beaten, lock = await store.run(heartbeat)
    assert (count, held, beaten.expires_at, lock.expires_at) == (1, 1, INT64_MAX, INT64_MAX)


async def test_two_servers_never_send_one_task_twice(database: str, store: PostgresStore) -> None:
    other = PostgresStore(database, pool_size=4)
    await other.open()
    try:
        await store.run(insert_tasks(*(task(f"t{i}", f"root{i}") for i in range(40))))

        async def take(tx: Any) -> list[str]:
            taken = []
            for each in await tx.sendable_tasks(NOW, 100):
                sent = replace(each, state=TaskState.ENQUEUED, attempt=1, expires_at=NOW + 1)
                if await tx.swap_task(each, sent):
                    taken.append(each.id)
            return taken

        batches = await asyncio.gather(*(s.run(take) for s in (store, other) * 4))
    finally:
        await other.close()
    taken = [tid for batch in batches for tid in batch]
    assert sorted(taken) == sorted(f"t{i}" for i in range(40))


# ---- schedules (§7) -----------------------------------------------------------------------------


async def test_advance_schedule_is_guarded_by_next_run_time(store: PostgresStore) -> None:
    await store.run(lambda tx: tx.insert_schedule(schedule("s", NOW)))

    def advance() -> Awaitable[bool]:
        async def op(tx: Any) -> bool:
            return bool(await tx.advance_schedule("s", NOW, NOW, NOW + 60_000))

        return store.run(op)

    results = await asyncio.gather(*(advance() for _ in range(20)))
    assert results.count(True) == 1
    stored = await store.run(lambda tx: tx.get_schedule("s"))
    assert (stored.last_run_time, stored.next_run_time) == (NOW, NOW + 60_000)


async def test_two_servers_fire_each_slot_once(database: str, store: PostgresStore) -> None:
    other = PostgresStore(database, pool_size=4)
    await other.open()
    clock = ManualClock(NOW + 5 * 60_000)
    start = NOW - NOW % 60_000
    try:
        await store.run(lambda tx: tx.insert_schedule(schedule("every-minute", start)))
        fire = partial(schedules.fire_due_schedules, clock=clock, limit=10, router=Router())
        for _ in range(8):
            await asyncio.gather(store.run(fire), other.run(fire), store.run(fire))
    finally:
        await other.close()

    async def fired(tx: Any) -> list[str]:
        return sorted(p.id for _, p in await tx.search_promises(PromiseQuery("every-minute.*")))

    slots = range(start, clock.now_ms() + 1, 60_000)
    assert await store.run(fired) == sorted(f"every-minute.{slot}" for slot in slots)


async def test_schedule_search_and_due_order_match_sqlite(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    both = (store, sqlite_store)
    records = [
        schedule("s-b", NOW + 5, {"team": "x"}),
        schedule("s-a", NOW, {"team": "y"}),
        schedule("s_c", NOW),
        schedule("s-d", NOW + 10),
    ]

    async def insert(tx: Any) -> None:
        for record in records:
            assert await tx.insert_schedule(record)
        assert not await tx.insert_schedule(records[0])

    await on_both(both, insert)

    async def read(tx: Any) -> tuple[list[str], list[str], list[str], bool]:
        return (
            [s.id for s in await tx.due_schedules(NOW + 5, 10)],
            [s.id for _, s in await tx.search_schedules(ScheduleQuery("s-*"))],
            [s.id for _, s in await tx.search_schedules(ScheduleQuery("*", {"team": "x"}))],
            await tx.delete_schedule("s-d"),
        )

    found = await on_both(both, read)
    assert found[0] == (["s-a", "s_c", "s-b"], ["s-d", "s-a", "s-b"], ["s-b"], True)
    assert found[0] == found[1]


# ---- locks (§8) ---------------------------------------------------------------------------------


def lock_request(resource: str, execution: str, ttl: int = 1000) -> locks.AcquireLock:
    return locks.AcquireLock(resource, execution, "p", ttl)


async def test_lock_acquire_is_a_guarded_upsert(store: PostgresStore) -> None:
    clock = ManualClock(NOW)

    def acquire(resource: str, execution: str) -> Awaitable[Lock]:
        request = lock_request(resource, execution)
        return store.run(partial(locks.acquire_lock, clock=clock, request=request))

    results = await asyncio.gather(
        *(acquire("r", f"e{i}") for i in range(20)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, Lock)]
    assert len(winners) == 1
    assert all(
        isinstance(r, ResonateError) and r.code is Code.LOCK_ALREADY_ACQUIRED
        for r in results
        if not isinstance(r, Lock)
    )
    holder = winners[0].execution_id
    clock.advance(10)
    assert (await acquire("r", holder)).expires_at == NOW + 10 + 1000  # the holder renews
    clock.advance(1000)
    taken = await acquire("r", "newcomer")  # expired: taken over (D5)
    assert taken.execution_id == "newcomer"
    with pytest.raises(ResonateError):
        await store.run(partial(locks.release_lock, resource_id="r", execution_id=holder))
    await store.run(partial(locks.release_lock, resource_id="r", execution_id="newcomer"))
    assert await store.run(lambda tx: tx.get_lock("r")) is None


async def test_lock_pages_and_sweep_match_sqlite(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    both = (store, sqlite_store)
    resources = ["b", "B", "a", "_x", "é", "a%", "A"]

    async def acquire_all(tx: Any) -> None:
        for i, resource in enumerate(resources):
            lock = Lock(resource, f"e{i}", "p" if i % 2 else "q", 10, NOW + i)
            assert await tx.acquire_lock(lock, NOW)

    await on_both(both, acquire_all)

    async def read(tx: Any) -> tuple[Any, ...]:
        first = await tx.search_locks(LockQuery(limit=3))
        rest = await tx.search_locks(LockQuery(limit=10, after_resource_id=first[-1].resource_id))
        return (
            [lock.resource_id for lock in first + rest],
            [lock.resource_id for lock in await tx.search_locks(LockQuery("a*"))],
            [lock.resource_id for lock in await tx.search_locks(LockQuery(process_id="p"))],
            await tx.delete_expired_locks(NOW + 2, 2),
            await tx.delete_expired_locks(NOW + 2, 10),
            await tx.count_locks(),
        )

    found = await on_both(both, read)
    assert found[0][0] == sorted(resources, key=lambda r: r.encode())  # byte order, as SQLite
    assert found[0][3:] == (2, 1, 4)
    assert found[0] == found[1]


# ---- transactions: answers commit, failures roll back (§14.1) ---------------------------------


def insert_then_raise(pid: str, error: Exception) -> Callable[[Any], Awaitable[None]]:
    async def op(tx: Any) -> None:
        await tx.insert_promise(promise(pid))
        tx.emit(Event("promise", "created"))
        raise error

    return op


async def test_a_failing_operation_is_rolled_back(store: PostgresStore, recorder: Recorder) -> None:
    with pytest.raises(ResonateError) as raised:
        await store.run(insert_then_raise("broken", RuntimeError("bug")))
    assert raised.value.code is Code.STORE_ERROR
    assert await get_promise(store, "broken") is None
    assert ("promise", "created") not in [(e.kind, e.name) for e in recorder.events]
    assert (1, "rollback") in recorder.batches


async def test_a_domain_answer_keeps_the_operations_writes(
    store: PostgresStore, recorder: Recorder
) -> None:
    answer = ResonateError(Code.PROMISE_ALREADY_EXISTS)
    with pytest.raises(ResonateError) as raised:
        await store.run(insert_then_raise("kept", answer))
    assert raised.value is answer
    assert await get_promise(store, "kept") is not None
    assert Event("promise", "created") in recorder.events  # published: it committed


async def test_events_are_published_after_commit_only(
    store: PostgresStore, recorder: Recorder
) -> None:
    clock = ManualClock(NOW)
    request = promises.CreatePromise("evented", FAR)
    await store.run(partial(promises.create_promise, clock=clock, request=request))
    assert recorder.events == [Event("promise", "created")]
    assert all(operations == 1 for operations, _ in recorder.batches)


async def test_a_deadlock_victim_is_run_again(store: PostgresStore) -> None:
    await store.run(insert_promises(promise("x"), promise("y")))
    both_locked = asyncio.Barrier(2)
    attempts: list[str] = []

    def crossing(first: str, second: str) -> Callable[[Any], Awaitable[str]]:
        async def op(tx: Any) -> str:
            attempts.append(first)
            await tx.conn.execute("UPDATE promises SET created_on = 1 WHERE id = $1", first)
            if attempts.count(first) == 1:  # the first run of each waits for the other's lock
                await both_locked.wait()
            await tx.conn.execute("UPDATE promises SET created_on = 2 WHERE id = $1", second)
            return first

        return op

    results = await asyncio.gather(store.run(crossing("x", "y")), store.run(crossing("y", "x")))
    assert sorted(results) == ["x", "y"]  # both succeed: a victim is run again
    # PostgreSQL aborted at least one of them once. Under load its deadlock checks can fire in
    # both backends, and the re-runs (which no longer wait at the barrier) can cross again, so
    # each may run up to the store's limit of attempts.
    assert len(attempts) >= 3
    assert max(attempts.count("x"), attempts.count("y")) <= MAX_ATTEMPTS


async def test_a_transaction_past_tx_timeout_is_abandoned(database: str) -> None:
    store = PostgresStore(database, tx_timeout_ms=300)
    await store.open()
    try:

        async def stuck(tx: Any) -> None:
            await tx.conn.execute("SELECT pg_sleep(5)")

        started = time.monotonic()
        with pytest.raises(ResonateError) as raised:
            await store.run(stuck)
        assert time.monotonic() - started < 2
        assert raised.value.code is Code.NOT_READY
        assert "txTimeout" in str(raised.value)
        assert await store.run(lambda tx: tx.count_locks()) == 0  # the store goes on
    finally:
        await store.close()


# ---- an unreachable database: 503 while down, recovery when back -------------------------------


class Proxy:
    """A TCP proxy to the test database that the test can take down and bring back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        for pipe in list(self.pipes):
            pipe.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self.pipes.add(pipe)
            pipe.add_done_callback(self.pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


async def test_a_database_that_goes_away_answers_503_then_recovers(database: str) -> None:
    target = urllib.parse.urlsplit(database)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    user = target.username or "postgres"
    proxied = urllib.parse.urlunsplit(target._replace(netloc=f"{user}@127.0.0.1:{proxy.port}"))
    store = PostgresStore(proxied, pool_size=3, tx_timeout_ms=2000)
    await store.open()
    try:
        await store.run(insert_promises(promise("before")))
        await proxy.stop()
        for _ in range(3):
            with pytest.raises(ResonateError) as raised:
                await get_promise(store, "before")
            assert raised.value.code is Code.NOT_READY
            assert raised.value.code.http_status == 503
            assert str(raised.value).startswith("store unavailable:")
        with pytest.raises(StoreUnavailable):
            await store.schema_status()
        await proxy.start()  # the same port: the database is back
        assert await get_promise(store, "before") is not None
        await store.run(insert_promises(promise("after")))
    finally:
        await store.close()
        with contextlib.suppress(Exception):
            await proxy.stop()


async def test_connections_killed_by_the_server_are_replaced(
    store: PostgresStore, database: str
) -> None:
    await asyncio.gather(*(get_promise(store, "warm") for _ in range(6)))
    conn = await asyncpg.connect(database)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    assert killed >= 1
    await asyncio.sleep(0.1)
    results = await asyncio.gather(*(get_promise(store, "warm") for _ in range(6)))
    assert results == [None] * 6


# ---- connection settings and start-up failures (config.md §2, §7) ------------------------------


def config(**values: Any) -> Config:
    return Config.default({f"aio.store.postgres.{k}": v for k, v in values.items()})


def test_connection_options_from_host_and_query() -> None:
    options, description = postgres_dsn_and_options(
        config(
            host="db.example.com",
            port=6543,
            username="app",
            password="hunter2",
            database="main",
            query={"sslmode": "require", "connect_timeout": "4", "application_name": "x"},
        )
    )
    assert options["host"] == "db.example.com" and options["port"] == 6543
    assert options["user"] == "app" and options["password"] == "hunter2"
    assert options["database"] == "main" and options["timeout"] == 4.0
    assert options["dsn"] == "postgresql://?sslmode=require&application_name=x"
    assert description == "host=db.example.com port=6543 database=main user=app"
    assert "hunter2" not in description


def test_connection_options_from_url() -> None:
    url = "postgresql://app:s%40cret@db.example.com:6543/main?sslmode=verify-full&connect_timeout=2"
    options, description = postgres_dsn_and_options(config(url=url, host="ignored"))
    assert options == {
        "dsn": "postgresql://app:s%40cret@db.example.com:6543/main?sslmode=verify-full",
        "timeout": 2.0,
    }
    assert description == "host=db.example.com:6543 database=main user=app"
    assert "cret" not in description


async def test_query_parameters_reach_the_driver(database: str) -> None:
    """sslmode from `query` is passed to the connection: the test server has no TLS, so
    requiring it fails (and disabling it works)."""
    host, port, user = server_address()
    name = urllib.parse.urlsplit(database).path.lstrip("/")
    for sslmode, works in (("disable", True), ("require", False)):
        options, description = postgres_dsn_and_options(
            config(host=host, port=port, username=user, database=name, query={"sslmode": sslmode})
        )
        store = PostgresStore(
            connect_options=options, description=description, connect_retry_seconds=0
        )
        if works:
            await store.open()
            await store.close()
            continue
        ssl_on = await _server_has_ssl(database)
        if ssl_on:
            await store.open()
            await store.close()
        else:
            with pytest.raises(StoreUnavailable, match=r"(?i)ssl"):
                await store.open()


async def test_settings_in_the_query_win_over_the_stores_defaults(database: str) -> None:
    async def application_name(tx: Any) -> str:
        return str(await tx.conn.fetchval("SELECT current_setting('application_name')"))

    for dsn, expected in ((database, "resonate"), (database + "?application_name=mine", "mine")):
        store = PostgresStore(dsn)
        await store.open()
        try:
            assert await store.run(application_name) == expected
        finally:
            await store.close()


async def _server_has_ssl(database: str) -> bool:
    conn = await asyncpg.connect(database)
    try:
        return bool(await conn.fetchval("SHOW ssl") == "on")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("wrong port", {"port": 1}),
        ("unknown user", {"username": "no_such_user_xyz"}),
        ("unknown database", {"database": "no_such_database_xyz"}),
    ],
)
async def test_a_start_up_failure_names_the_target_but_not_the_password(
    database: str, case: str, change: dict[str, Any]
) -> None:
    host, port, user = server_address()
    settings = {
        "host": host,
        "port": port,
        "username": user,
        "password": "Sup3r-Secret!",
        "database": urllib.parse.urlsplit(database).path.lstrip("/"),
        **change,
    }
    options, description = postgres_dsn_and_options(config(**settings))
    store = PostgresStore(
        connect_options=options, description=description, connect_retry_seconds=0.5
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    message = str(raised.value)
    assert time.monotonic() - started < 10, case
    assert "\n" not in message
    assert message.startswith("cannot connect to PostgreSQL (")
    for part in (
        f"host={settings['host']}",
        f"port={settings['port']}",
        f"database={settings['database']}",
        f"user={settings['username']}",
    ):
        assert part in message, (case, message)
    assert "Sup3r-Secret" not in message


# ---- a real server process -------------------------------------------------------------------


async def test_serve_on_postgres_creates_and_reads_over_http(database: str, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=postgres_flags(database))
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            created = await client.post(
                "/promises", json={"id": "over-http", "timeout": FAR, "tags": {"k": "v"}}
            )
            assert created.status_code == 201, created.text
            read = await client.get("/promises/over-http")
            assert read.status_code == 200 and read.json()["state"] == "PENDING"
            assert read.json()["tags"] == {"k": "v"}
            found = await client.get("/promises", params={"id": "over-*", "tags[k]": "v"})
            assert [p["id"] for p in found.json()["promises"]] == ["over-http"]
            ready = await client.get("/readyz")
            assert ready.json() == {"status": "ok", "store": "postgres", "schemaVersion": LATEST}
    finally:
        await asyncio.to_thread(server.stop)


async def test_serve_exits_1_with_one_clear_line_when_login_fails(
    database: str, tmp_path: Path
) -> None:
    flags = postgres_flags(database, "--aio-store-postgres-password", "Sup3r-Secret!")
    flags[flags.index("--aio-store-postgres-username") + 1] = "no_such_user_xyz"
    server = ServerProcess(tmp_path, extra_args=flags)
    finished = await asyncio.to_thread(
        subprocess.run,
        server.command(),
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")},
    )
    assert finished.returncode == 1
    errors = [line for line in finished.stderr.splitlines() if "cannot connect" in line]
    assert len(errors) == 1, finished.stderr
    host, port, _ = server_address()
    assert f"host={host}" in errors[0] and f"port={port}" in errors[0]
    assert "user=no_such_user_xyz" in errors[0] and "database=resonate_test_" in errors[0]
    assert "Sup3r-Secret" not in finished.stderr + finished.stdout


async def test_insert_callback_on_a_completed_promise_is_not_stored(store: PostgresStore) -> None:
    """The registration guard itself: an operation that inserts a callback on a promise that is
    no longer PENDING is run again (here it keeps doing so, and gives up with 500)."""
    await store.run(insert_promises(promise("done")))
    clock = ManualClock(NOW)
    request = promises.CompletePromise("done", PromiseState.RESOLVED)
    await store.run(partial(promises.complete_promise, clock=clock, request=request))
    callback = Callback.resume("done", "root", "poll://any@g", FAR, NOW, None)

    async def register(tx: Any) -> bool:
        return bool(await tx.insert_callback(callback))

    with pytest.raises(ResonateError) as raised:
        await store.run(register)
    assert raised.value.code is Code.STORE_ERROR
    assert await store.run(lambda tx: tx.get_callback(callback.id)) is None
