"""The retention and purge statements read their indexes (migrations 008 and 009): a purge batch
and the tasks' retention walk completed records in completion order from an index range (no
sort of the whole backlog, no table scan), and the oldest completed record's age (a metric,
measured every minute even with retention off) is one index probe."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from resonate.core.promise import PromiseState
from resonate.store.base import FINAL_STATES, PurgeQuery
from resonate.store.postgres.store import STATEMENTS as POSTGRES_STATEMENTS
from resonate.store.postgres.store import PostgresStore
from resonate.store.postgres.transaction import Filters, PostgresTransaction
from resonate.store.sqlite.store import STATEMENTS as SQLITE_STATEMENTS
from resonate.store.sqlite.store import SqliteStore
from resonate.store.sqlite.transaction import SORT_IN_MEMORY_UPTO, SqliteTransaction
from tests.support import pg

NOW = 1_700_000_000_000

# The cutoffs take a tenth of the completed promises of `fill` (PostgreSQL), as a retention
# pass does once it has caught up.
CUTOFF = NOW - 18_000
QUERIES = {
    "every-state": PurgeQuery(dict.fromkeys(FINAL_STATES, CUTOFF)),
    "per-state": PurgeQuery({PromiseState.RESOLVED: CUTOFF, PromiseState.REJECTED: CUTOFF - 1}),
    "tenant-pattern": PurgeQuery(dict.fromkeys(FINAL_STATES, CUTOFF), id="p1*"),
}
COMPLETED_ON_RANGE = r"idx_promises_completed_on \(completed_on<\?\)"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "retention.db"))
    await store.open()
    yield store
    await store.close()


async def sqlite_plan(store: SqliteStore, query: PurgeQuery) -> list[str]:
    async def explain(tx: SqliteTransaction) -> list[str]:
        source, params = tx._purgeable(query)
        sql = f"SELECT p.sort_id, p.id {source} ORDER BY p.completed_on, p.sort_id LIMIT ?"
        return [str(row[3]) for row in tx.conn.execute("EXPLAIN QUERY PLAN " + sql, [*params, 9])]

    return await store.read(explain)


async def many_ids(store: SqliteStore, prefix: str) -> None:
    async def insert(tx: SqliteTransaction) -> None:
        tx.conn.executemany(
            "INSERT INTO promises (id, state, timeout) VALUES (?, 1, 0)",
            [(f"{prefix}{n}",) for n in range(SORT_IN_MEMORY_UPTO + 1)],
        )

    await store.run(insert)


@pytest.mark.parametrize("name", QUERIES)
async def test_sqlite_purge_walks_completions_in_order(sqlite_store: SqliteStore, name: str):
    """A fresh database, without ANALYZE statistics, as every server's database is; an id
    prefix many promises share (a tenant's) does not lead the plan either."""
    await many_ids(sqlite_store, "p1")
    plan = await sqlite_plan(sqlite_store, QUERIES[name])
    assert re.search(COMPLETED_ON_RANGE, plan[0]), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan
    assert not [line for line in plan if re.fullmatch(r"SCAN (p|promises)", line)], plan


async def test_sqlite_purge_starts_from_an_exact_id_or_a_rare_prefix(sqlite_store: SqliteStore):
    for pattern in ("order-42", "order-42/*"):
        query = PurgeQuery(dict.fromkeys(FINAL_STATES, NOW), id=pattern)
        plan = await sqlite_plan(sqlite_store, query)
        assert "sqlite_autoindex_promises_1 (id" in plan[0], plan


async def test_sqlite_purge_by_tag_starts_from_a_rare_tag_only(sqlite_store: SqliteStore):
    """Few holders: read them from the tag index and sort them. Many: walk the completions,
    each a probe of the tag index (reading and sorting them all would hold the writer)."""
    rare = PurgeQuery(dict.fromkeys(FINAL_STATES, NOW), tags={"rare": "1"})
    plan = await sqlite_plan(sqlite_store, rare)
    assert any("promise_tags USING PRIMARY KEY (key=? AND value=?)" in line for line in plan)

    async def common_tag(tx: SqliteTransaction) -> None:
        tx.conn.executemany(
            "INSERT INTO promise_tags (key, value, sort_id) VALUES ('common', '1', ?)",
            [(n,) for n in range(SORT_IN_MEMORY_UPTO + 1)],
        )

    await sqlite_store.run(common_tag)
    common = PurgeQuery(dict.fromkeys(FINAL_STATES, NOW), tags={"common": "1"})
    plan = await sqlite_plan(sqlite_store, common)
    assert re.search(COMPLETED_ON_RANGE, plan[0]), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("purge_completed_tasks", (NOW, 9), r"idx_tasks_completed_on \(completed_on<\?\)"),
        ("oldest_completed_task", (), r"SEARCH tasks USING INDEX idx_tasks_completed_on"),
        ("oldest_completed_promise", (), r"SEARCH promises USING INDEX idx_promises_completed_on"),
    ],
)
async def test_sqlite_task_retention_and_ages_use_their_index(
    sqlite_store: SqliteStore, name: str, params: tuple[int, ...], expected: str
):
    async def explain(tx: SqliteTransaction) -> list[str]:
        rows = tx.conn.execute("EXPLAIN QUERY PLAN " + SQLITE_STATEMENTS[name], params)
        return [str(row[3]) for row in rows]

    plan = await sqlite_store.read(explain)
    assert any(re.search(expected, line) for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


async def fill(conn: asyncpg.Connection) -> None:
    """20,000 promises (a tenth pending) and tasks (most completed), as autovacuum leaves
    them: big enough for the planner to prefer the indexes where they pay."""
    await conn.execute(
        "INSERT INTO promises (id, state, timeout, created_on, completed_on)"
        " SELECT 'p' || i, (ARRAY[1, 2, 2, 2, 2, 2, 2, 4, 8, 16])[1 + i % 10], $1::bigint, 0,"
        " CASE WHEN i % 10 = 0 THEN NULL ELSE $1::bigint - 20000 + i END"
        " FROM generate_series(1, 20000) AS i",
        NOW,
    )
    await conn.execute(
        "INSERT INTO tasks (id, state, root_promise_id, recv, mesg, timeout, completed_on)"
        " SELECT 't' || i, CASE i % 50 WHEN 0 THEN 4 WHEN 1 THEN 16 ELSE 8 END, 'p' || i,"
        " '\\x00', '\\x00', 0, CASE i % 50 WHEN 0 THEN NULL ELSE $1::bigint - 20000 + i END"
        " FROM generate_series(1, 20000) AS i",
        NOW,
    )
    await conn.execute("VACUUM ANALYZE")


async def test_postgres_plans_use_the_indexes():
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    dsn = await pg.create_schema()
    try:
        store = PostgresStore(dsn)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await fill(conn)
            tx = PostgresTransaction(conn, POSTGRES_STATEMENTS)
            plans: dict[str, str] = {}
            for name, query in QUERIES.items():
                filters = Filters()
                source = tx._purgeable(query, filters)
                sql = (
                    f"EXPLAIN SELECT p.sort_id, p.id {source}"
                    f" ORDER BY p.completed_on, p.sort_id LIMIT {filters.param(500)}"
                    " FOR UPDATE OF p SKIP LOCKED"
                )
                rows = await conn.fetch(sql, *filters.params)
                plans[name] = "\n".join(row[0] for row in rows)
            for name, params in (
                ("purge_completed_tasks", (NOW - 10_000, 500)),
                ("oldest_completed_task", ()),
                ("oldest_completed_promise", ()),
            ):
                rows = await conn.fetch("EXPLAIN " + POSTGRES_STATEMENTS[name], *params)
                plans[name] = "\n".join(row[0] for row in rows)
        finally:
            await conn.close()
    finally:
        await pg.drop_schema(dsn)
    for name in QUERIES:
        assert "idx_promises_completed_on on promises p" in plans[name], plans[name]
        assert "Seq Scan on promises" not in plans[name], plans[name]
    for name in ("purge_completed_tasks", "oldest_completed_task"):
        assert "Index Only Scan using idx_tasks_completed_on" in plans[name] or (
            "Index Scan using idx_tasks_completed_on" in plans[name]
        ), plans[name]
    # (The delete itself may join the batch's sort ids to a small table by a sequential scan.)
    assert "Seq Scan on tasks" not in plans["oldest_completed_task"]
    assert "idx_promises_completed_on" in plans["oldest_completed_promise"]
