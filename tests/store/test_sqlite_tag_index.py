"""The SQLite tag index (migration 007): kept by triggers in the promise's own transaction,
serving tag searches by an index range, answering exactly what the JSON scan answers, and
built for databases that predate it in batches (`resonate migrate up`, or the server in the
background)."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.search import PromiseIdQuery, PromiseQuery
from resonate.store.sqlite import transaction as sqlite_transaction
from resonate.store.sqlite.store import SqliteStore

DEADLINE_S = 30.0


def promise(pid: str, tags: dict[str, str], state: PromiseState = PromiseState.PENDING) -> Promise:
    return Promise(pid, state, Value(), Value(), 2**62, None, None, tags, 1, None)


def insert(p: Promise):  # type: ignore[no-untyped-def]
    async def op(tx):  # type: ignore[no-untyped-def]
        return await tx.insert_promise(p)

    return op


def search(query: PromiseQuery | PromiseIdQuery):  # type: ignore[no-untyped-def]
    async def op(tx):  # type: ignore[no-untyped-def]
        if isinstance(query, PromiseQuery):
            return [p.id for _, p in await tx.search_promises(query)]
        return [p.id for p in await tx.search_promises_by_id(query)]

    return op


@pytest.fixture
async def store(tmp_path: Path):
    opened = SqliteStore(str(tmp_path / "tags.db"))
    await opened.open()
    yield opened
    await opened.close()


def index_rows(path: str) -> set[tuple[str, str, int]]:
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT key, value, sort_id FROM promise_tags"))


def json_rows(path: str) -> set[tuple[str, str, int]]:
    """What the index must hold: every text tag of every promise."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT tag.key, tag.value, p.sort_id FROM promises p, json_each(p.tags) tag"
            " WHERE tag.type = 'text'"
        )
        return set(rows)


async def test_triggers_keep_the_index_in_the_promise_transaction(store):
    assert await store.run(insert(promise("a", {"resonate:root": "r1", "k": "v"})))
    assert await store.run(insert(promise("b", {})))
    assert not await store.run(insert(promise("a", {"other": "x"})))  # a repeat writes nothing
    assert index_rows(store.path) == {("k", "v", 1), ("resonate:root", "r1", 1)}

    async def delete_all(tx):  # type: ignore[no-untyped-def]
        await tx.debug_wipe()

    await store.run(delete_all)
    assert index_rows(store.path) == set()


async def test_a_tag_search_walks_the_index(store):
    await store.run(insert(promise("a", {"resonate:root": "r1"})))
    with sqlite3.connect(store.path) as conn:
        sql = conn.execute("SELECT 1").connection  # same connection, for EXPLAIN below
        captured: list[str] = []
        sql.set_trace_callback(captured.append)
        tx = sqlite_transaction.SqliteTransaction(sql, sqlite_transaction_statements())
        await tx.search_promises(PromiseQuery(id="*", tags={"resonate:root": "r1"}))
        statement = next(s for s in captured if "promise_tags AS t" in s)
        plan = " ".join(row[3] for row in sql.execute("EXPLAIN QUERY PLAN " + statement))
    assert "SEARCH t USING PRIMARY KEY (key=? AND value=?" in plan
    assert "SCAN p" not in plan and "TEMP B-TREE" not in plan


def sqlite_transaction_statements() -> dict[str, str]:
    from resonate.store.sqlite.store import STATEMENTS

    return STATEMENTS


async def test_indexed_searches_answer_what_the_json_scan_answers(store):
    """Random promises and random queries: the index path and the JSON path (forced by a
    pending backfill) give the same pages, newest first and in id order."""
    rng = random.Random(7)
    keys = ["resonate:root", "resonate:invoke", "k", "ключ", 'q"uote']
    values = ["a", "b", "c", "", "ü"]
    for i in range(300):
        tags = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 3))}
        if rng.random() < 0.1:
            tags["n"] = 5  # type: ignore[assignment]  # not text: never matches a tag filter
        state = rng.choice([PromiseState.PENDING, PromiseState.RESOLVED, PromiseState.REJECTED])
        p = promise(f"p{rng.randrange(10**6):06d}-{i}", tags, state)
        await store.run(insert(p))

    queries: list[PromiseQuery | PromiseIdQuery] = []
    for _ in range(60):
        tags = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(1, 2))}
        queries.append(
            PromiseQuery(
                id=rng.choice(["*", "p1*", "*-1*"]),
                state=rng.choice([None, "pending", "resolved", "rejected"]),
                tags=tags,
                limit=rng.choice([1, 5, 100]),
                before_sort_id=rng.choice([None, 150]),
            )
        )
        queries.append(
            PromiseIdQuery(
                state=rng.choice([None, PromiseState.PENDING]),
                tags=tags,
                limit=rng.choice([1, 5, 100]),
                after_id=rng.choice([None, "p5"]),
            )
        )
    indexed = [await store.read(search(q)) for q in queries]
    assert any(indexed), "the random queries should find something"
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO promise_tags_backfill (below) VALUES (1)")
    scanned = [await store.read(search(q)) for q in queries]
    assert indexed == scanned


async def test_many_holders_of_a_tag_in_id_order(store, monkeypatch):
    """Above the in-memory sort threshold the id-ordered search walks ids instead; both
    answer the same."""
    for i in range(30):
        await store.run(insert(promise(f"m{29 - i:02d}", {"t": "all"})))
    query = PromiseIdQuery(tags={"t": "all"}, limit=10, after_id="m05")
    few = await store.read(search(query))
    monkeypatch.setattr(sqlite_transaction, "SORT_IN_MEMORY_UPTO", 5)
    many = await store.read(search(query))
    assert few == many == [f"m{i:02d}" for i in range(6, 17)]


async def _database_before_the_index(path: Path, count: int) -> None:
    """A database at migration 006 holding ``count`` tagged promises, as an older server
    left it."""
    old = SqliteStore(str(path))
    old.migrations = old.migrations[:6]
    await old.open()
    for i in range(count):
        tags = {"resonate:root": f"root-{i // 10}", "resonate:invoke": "default"}
        await old.run(insert(promise(f"old-{i}", tags)))
    await old.close()


async def test_migrate_up_builds_the_index_for_an_older_database(tmp_path):
    db = tmp_path / "old.db"
    await _database_before_the_index(db, 250)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "resonate", "migrate", "up", "--aio-store-sqlite-path", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "applied 007_promise_tag_index.sql" in result.stdout
    assert "indexed promise tags" in result.stdout
    assert index_rows(str(db)) == json_rows(str(db)) and len(json_rows(str(db))) == 500
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM promise_tags_backfill").fetchone()[0] == 0


async def test_the_server_builds_the_index_in_the_background_in_batches(tmp_path, monkeypatch):
    db = tmp_path / "old.db"
    await _database_before_the_index(db, 95)
    migrated = SqliteStore(str(db))
    await migrated.open(migrate_fresh=False)
    await migrated.migrate_up()  # the schema only: the backfill is left to the server
    await migrated.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT below FROM promise_tags_backfill").fetchone()[0] == 96

    monkeypatch.setattr("resonate.store.sqlite.store.BACKFILL_BATCH", 10)
    batches: list[int] = []
    server_store = SqliteStore(str(db), on_batch=lambda n, s, st: batches.append(n))
    await server_store.open()
    try:
        query = PromiseQuery(id="*", tags={"resonate:root": "root-3"})
        expected = [f"old-{i}" for i in range(39, 29, -1)]
        # Before, during and after the backfill, the search answers the same.
        assert await server_store.read(search(query)) == expected
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while await server_store.tags_backfill_pending():
            assert asyncio.get_running_loop().time() < deadline, "backfill did not finish"
            await asyncio.sleep(0.01)
        assert await server_store.read(search(query)) == expected
        # Promises stored meanwhile were indexed by the triggers, the old ones in batches.
        await server_store.run(insert(promise("new", {"resonate:root": "root-3"})))
        assert await server_store.read(search(query)) == ["new", *expected]
    finally:
        await server_store.close()
    assert len(batches) >= 10
    assert index_rows(str(db)) == json_rows(str(db))


async def test_the_backfill_survives_a_stop_and_resumes(tmp_path):
    db = tmp_path / "old.db"
    await _database_before_the_index(db, 50)
    store = SqliteStore(str(db))
    await store.open(migrate_fresh=False)
    await store.migrate_up()
    left: list[int] = []

    def stop_after_two(remaining: int) -> None:
        left.append(remaining)
        if len(left) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await store.backfill_tags(batch=10, on_batch=stop_after_two)
    await store.close()
    assert 0 < len(index_rows(str(db))) < len(json_rows(str(db)))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT below FROM promise_tags_backfill").fetchone()[0] == 31

    store = SqliteStore(str(db))
    await store.open(migrate_fresh=False)
    await store.backfill_tags(batch=7)
    assert not await store.tags_backfill_pending()
    await store.close()
    assert index_rows(str(db)) == json_rows(str(db))
