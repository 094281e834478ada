"""The dashboard reads in the stores: every statement served by an index (migration 004; for
GET /callbacks, 005), and SQLite's reader connection (Store.read), which neither waits for nor
holds up the writer."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from resonate.core.errors import Code, ResonateError
from resonate.core.promise import Promise, PromiseState, Value
from resonate.store.postgres.store import STATEMENTS as POSTGRES_STATEMENTS
from resonate.store.postgres.store import PostgresStore
from resonate.store.sqlite.store import STATEMENTS as SQLITE_STATEMENTS
from resonate.store.sqlite.store import SqliteStore
from resonate.store.sqlite.transaction import SqliteTransaction
from tests.support import pg

NOW = 1_700_000_000_000
FAR = 2**62

# Statement -> (its parameters, the indexes its plan must use: patterns, as for the lease list
# PostgreSQL may rightly prefer the partial index of active tasks to the (state, expiry) one).
PLANS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "count_records": (
        (NOW,),
        ("idx_promises_pending_timeout", "idx_promises_completed_state"),
    ),
    "stuck_promises": ((NOW, 20), ("idx_promises_pending_timeout",)),
    "tasks_with_lease_ending": (
        (NOW, 20),
        ("idx_tasks_state_expires_at|idx_tasks_active_counter",),
    ),
    "reissued_tasks": ((3, 20), ("idx_tasks_active_counter",)),
    "waiting_tasks": ((20,), ("idx_tasks_state_expires_at",)),
    "overdue_schedules": ((NOW, 20), ("idx_schedules_next_run_time",)),
    "stale_locks": ((NOW, 20), ("idx_locks_lease_midpoint",)),
    "leases_ending_2026": ((NOW, 20), ("idx_tasks_2026_lease_at",)),
}

# GET /callbacks (a page of one promise's callbacks, oldest first): its index differs by store,
# as SQLite's holds the rowid (= sort_id) already; PostgreSQL's comes from migration 005. The
# plan must also need no sort.
CALLBACK_PLANS: dict[str, tuple[tuple[object, ...], str]] = {
    "sqlite": (("p1", 0, 100), r"idx_callbacks_promise_id \(promise_id=\? AND rowid>\?\)"),
    "postgres": (("hot", 0, 100), r"idx_callbacks_promise_id_sort_id"),
}


def pending(promise_id: str) -> Promise:
    return Promise(promise_id, PromiseState.PENDING, Value(), Value(), FAR, None, None, {}, NOW)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "dashboard.db"))
    await store.open()
    yield store
    await store.close()


# ---- plans --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLANS)
async def test_sqlite_plans_use_the_indexes(sqlite_store: SqliteStore, name: str) -> None:
    """A fresh database, without ANALYZE statistics, as every server's database is."""
    params, indexes = PLANS[name]

    async def explain(tx: SqliteTransaction) -> list[str]:
        rows = tx.conn.execute("EXPLAIN QUERY PLAN " + SQLITE_STATEMENTS[name], params)
        return [str(row[3]) for row in rows]

    plan = await sqlite_store.read(explain)
    for index in indexes:
        assert any(re.search(index, line) for line in plan), plan
    table_scans = [line for line in plan if re.match(r"SCAN \w+$", line)]
    assert table_scans == [], plan


@pytest.mark.parametrize("name", PLANS)
async def test_postgres_plans_use_the_indexes(name: str) -> None:
    """On tables big enough for the planner to care, vacuumed and analyzed as autovacuum
    leaves them (docs/performance.md, "Dashboard reads", has the plans at a million rows)."""
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    params, indexes = PLANS[name]
    dsn = await pg.create_schema()
    try:
        store = PostgresStore(dsn)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await fill(conn)
            rows = await conn.fetch("EXPLAIN " + POSTGRES_STATEMENTS[name], *params)
        finally:
            await conn.close()
    finally:
        await pg.drop_schema(dsn)
    plan = "\n".join(row[0] for row in rows)
    for index in indexes:
        assert re.search(index, plan), plan
    if name != "count_records":  # counting a small table may rightly be a sequential scan
        assert "Seq Scan" not in plan, plan


async def test_sqlite_callback_page_is_one_index_range(sqlite_store: SqliteStore) -> None:
    params, index = CALLBACK_PLANS["sqlite"]

    async def explain(tx: SqliteTransaction) -> list[str]:
        rows = tx.conn.execute("EXPLAIN QUERY PLAN " + SQLITE_STATEMENTS["list_callbacks"], params)
        return [str(row[3]) for row in rows]

    plan = await sqlite_store.read(explain)
    assert any(re.search(index, line) for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan  # no sort


async def test_postgres_callback_page_is_one_index_range() -> None:
    """Also in a generic plan (asyncpg prepares statements), where without the (promise_id,
    sort_id) index PostgreSQL would walk the sort_id index of the whole table."""
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    params, index = CALLBACK_PLANS["postgres"]
    dsn = await pg.create_schema()
    try:
        store = PostgresStore(dsn)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await fill(conn)
            plans = []
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                explain = await conn.prepare("EXPLAIN " + POSTGRES_STATEMENTS["list_callbacks"])
                plans.append("\n".join(row[0] for row in await explain.fetch(*params)))
        finally:
            await conn.close()
    finally:
        await pg.drop_schema(dsn)
    for plan in plans:
        assert re.search(index, plan), plan
        assert "Sort" not in plan and "Seq Scan" not in plan, plan


async def fill(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO promises (id, state, timeout, created_on)"
        " SELECT 'p' || i, (ARRAY[1, 2, 2, 2, 2, 2, 2, 4, 8, 16])[1 + i % 10], $1::bigint + i, 0"
        " FROM generate_series(1, 20000) AS i",
        NOW - 100,
    )
    await conn.execute(
        "INSERT INTO tasks (id, state, root_promise_id, recv, mesg, timeout, counter, expires_at)"
        " SELECT 't' || i, CASE i % 50 WHEN 0 THEN 4 WHEN 1 THEN 1 ELSE 8 END, 'p' || i,"
        " '\\x00', '\\x00', $1::bigint, 1 + i % 3, $1::bigint + i"
        " FROM generate_series(1, 20000) AS i",
        NOW,
    )
    await conn.execute(
        "INSERT INTO locks SELECT 'r' || i, 'e', 'p', 10000, $1::bigint + i"
        " FROM generate_series(1, 2000) AS i",
        NOW,
    )
    await conn.execute(
        "INSERT INTO schedules (id, cron, promise_id, promise_timeout, next_run_time)"
        " SELECT 's' || i, '* * * * *', 'x', 0, $1::bigint + i * 1000"
        " FROM generate_series(1, 2000) AS i",
        NOW,
    )
    # A quarter of the callbacks wait on one promise, the others two by two on the rest.
    await conn.execute(
        "INSERT INTO callbacks (id, promise_id, root_promise_id, recv, mesg, timeout)"
        " SELECT 'c' || i, CASE i % 4 WHEN 0 THEN 'hot' ELSE 'p' || (i / 2) END, 'r',"
        " '\\x00', '\\x00', 0"
        " FROM generate_series(1, 20000) AS i"
    )
    # 2026 tasks: one in ten acquired (with a lease), the others pending or fulfilled.
    await conn.execute(
        "INSERT INTO tasks_2026 (id, state, version, target, pid, ttl, lease_at, created_at,"
        " updated_at)"
        " SELECT 'w' || i, CASE i % 10 WHEN 0 THEN 'acquired' WHEN 1 THEN 'pending'"
        " ELSE 'fulfilled' END, 1, 'poll://any@g', 'p', 1000,"
        " CASE i % 10 WHEN 0 THEN $1::bigint + i END, 0, 0"
        " FROM generate_series(1, 20000) AS i",
        NOW,
    )
    for table in ("promises", "tasks", "locks", "schedules", "callbacks", "tasks_2026"):
        await conn.execute(f"VACUUM ANALYZE {table}")


# ---- SQLite's reader connection ---------------------------------------------------------------


async def count_pending(store: SqliteStore) -> int:
    counts = await store.read(lambda tx: tx.count_records(NOW))
    return counts.promises.get(PromiseState.PENDING, 0)


async def test_a_read_neither_waits_for_the_writer_nor_sees_its_uncommitted_writes(
    sqlite_store: SqliteStore,
) -> None:
    inside = threading.Event()
    release = threading.Event()

    async def slow_write(tx: SqliteTransaction) -> bool:
        await tx.insert_promise(pending("w"))
        inside.set()
        release.wait(10)  # the writer thread holds its transaction open
        return True

    writing = asyncio.ensure_future(sqlite_store.run(slow_write))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        assert await asyncio.wait_for(count_pending(sqlite_store), 5) == 0
    finally:
        release.set()
    assert await writing is True
    assert await count_pending(sqlite_store) == 1  # committed: the next read sees it


async def test_a_read_cannot_write(sqlite_store: SqliteStore) -> None:
    with pytest.raises(ResonateError) as raised:
        await sqlite_store.read(lambda tx: tx.insert_promise(pending("x")))
    assert raised.value.code is Code.STORE_ERROR
    assert await count_pending(sqlite_store) == 0


async def test_an_in_memory_store_reads_through_its_writer() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        await store.run(lambda tx: tx.insert_promise(pending("m")))
        assert await count_pending(store) == 1
    finally:
        await store.close()
