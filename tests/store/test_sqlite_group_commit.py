"""Group commit on the SQLite store: operations batched into one transaction stay isolated
(http-api.md §14.1)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from resonate.core.errors import Code, ResonateError
from resonate.core.promise import Promise, PromiseState, Value
from resonate.store.sqlite.store import SqliteStore


def promise(pid: str) -> Promise:
    return Promise(pid, PromiseState.PENDING, Value(), Value(), 2**62, None, None, {}, 1, None)


@pytest.fixture
async def store(tmp_path):
    batches: list[tuple[int, str]] = []
    opened = SqliteStore(str(tmp_path / "s.db"), on_batch=lambda n, s, st: batches.append((n, st)))
    await opened.open()
    opened.batches = batches
    yield opened
    await opened.close()


def insert(pid: str):
    async def op(tx):
        return await tx.insert_promise(promise(pid))

    return op


def insert_then_fail(pid: str, error: Exception):
    async def op(tx):
        await tx.insert_promise(promise(pid))
        raise error

    return op


async def exists(store: SqliteStore, pid: str) -> bool:
    async def op(tx):
        return await tx.get_promise(pid) is not None

    return await store.run(op)


async def test_concurrent_operations_share_one_transaction(store):
    results = await asyncio.gather(*(store.run(insert(f"p{i}")) for i in range(50)))
    assert results == [True] * 50
    # The first operation may run alone; the 49 queued behind it go in one batch.
    assert sum(n for n, _ in store.batches) == 50
    assert len(store.batches) <= 3


async def test_a_failing_operation_is_rolled_back_alone(store):
    results = await asyncio.gather(
        store.run(insert("before")),
        store.run(insert_then_fail("broken", RuntimeError("bug"))),
        store.run(insert("after")),
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], ResonateError) and results[1].code is Code.STORE_ERROR
    assert await exists(store, "before") and await exists(store, "after")
    assert not await exists(store, "broken")


async def test_a_domain_answer_keeps_the_operations_writes(store):
    """A 4xx answer is not a failure: e.g. a lazy timeout persists behind a 409 (C11)."""
    with pytest.raises(ResonateError):
        await store.run(insert_then_fail("kept", ResonateError(Code.PROMISE_ALREADY_EXISTS)))
    assert await exists(store, "kept")


async def test_a_failed_commit_acknowledges_nothing(store, monkeypatch):
    real_run = store._run_operations

    def run_then_break_commit(conn, batch):
        original = conn.execute

        class Breaking:
            def __getattr__(self, name):
                return getattr(conn, name)

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    raise sqlite3.OperationalError("disk I/O error")
                return original(sql, *args)

        return real_run(Breaking(), batch)

    monkeypatch.setattr(store, "_run_operations", run_then_break_commit)
    results = await asyncio.gather(
        store.run(insert("x1")), store.run(insert("x2")), return_exceptions=True
    )
    assert all(isinstance(r, ResonateError) and r.code is Code.STORE_ERROR for r in results)
    monkeypatch.undo()
    assert not await exists(store, "x1") and not await exists(store, "x2")


async def test_a_failure_outside_any_savepoint_answers_everyone(store, monkeypatch):
    """Nothing may hang: a batch that breaks before its operations fails them all."""

    def broken(conn, batch):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "_run_operations", broken)
    results = await asyncio.wait_for(
        asyncio.gather(*(store.run(insert(f"f{i}")) for i in range(5)), return_exceptions=True),
        timeout=10,
    )
    assert all(isinstance(r, ResonateError) and r.code is Code.STORE_ERROR for r in results)
    monkeypatch.undo()
    assert await store.run(insert("recovered")) is True


async def test_closed_store_refuses_new_operations(tmp_path):
    store = SqliteStore(str(tmp_path / "c.db"))
    await store.open()
    await store.close()
    with pytest.raises(ResonateError) as refused:
        await store.run(insert("late"))
    assert refused.value.code is Code.SHUTTING_DOWN
