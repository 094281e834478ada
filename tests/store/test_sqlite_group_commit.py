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


def statements_run(store: SqliteStore) -> list[str]:
    """Every statement the writer's connection runs from now on, in order."""
    seen: list[str] = []
    store._require_connection().set_trace_callback(seen.append)
    return seen


async def test_a_batch_without_failures_runs_no_savepoints(store):
    """Savepoints cost two statements per operation: a batch is tried without them first."""
    seen = statements_run(store)
    assert await asyncio.gather(*(store.run(insert(f"s{i}")) for i in range(5))) == [True] * 5
    assert not any(sql.startswith("SAVEPOINT") for sql in seen)
    assert "COMMIT" in seen and "ROLLBACK" not in seen


async def test_a_failure_reruns_the_batch_with_a_savepoint_per_operation(store):
    runs: list[str] = []

    def counted(pid: str, fail: bool):
        async def op(tx):
            runs.append(pid)
            await tx.insert_promise(promise(pid))
            if fail:
                raise RuntimeError("bug")
            return True

        return op

    seen = statements_run(store)
    results = await asyncio.gather(
        store.run(counted("r1", False)),
        store.run(counted("r2", True)),
        store.run(counted("r3", False)),
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], ResonateError) and results[1].code is Code.STORE_ERROR
    # The first try stopped at the failure and rolled back; the second ran all three, each in
    # a savepoint, and committed the two that succeeded.
    assert "ROLLBACK" in seen and seen.count("SAVEPOINT op") >= 3
    assert runs.count("r2") == 2 and runs.count("r3") >= 1
    assert await exists(store, "r1") and await exists(store, "r3")
    assert not await exists(store, "r2")


async def test_a_domain_answer_keeps_the_operations_writes(store):
    """A 4xx answer is not a failure: e.g. a lazy timeout persists behind a 409 (C11)."""
    with pytest.raises(ResonateError):
        await store.run(insert_then_fail("kept", ResonateError(Code.PROMISE_ALREADY_EXISTS)))
    assert await exists(store, "kept")


async def test_a_failed_commit_acknowledges_nothing(store, monkeypatch):
    real_run = store._run_operations

    def run_then_break_commit(conn, batch, **options):
        original = conn.execute

        class Breaking:
            def __getattr__(self, name):
                return getattr(conn, name)

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    raise sqlite3.OperationalError("disk I/O error")
                return original(sql, *args)

        return real_run(Breaking(), batch, **options)

    monkeypatch.setattr(store, "_run_operations", run_then_break_commit)
    results = await asyncio.gather(
        store.run(insert("x1")), store.run(insert("x2")), return_exceptions=True
    )
    assert all(isinstance(r, ResonateError) and r.code is Code.STORE_ERROR for r in results)
    monkeypatch.undo()
    assert not await exists(store, "x1") and not await exists(store, "x2")


async def test_a_failure_outside_any_savepoint_answers_everyone(store, monkeypatch):
    """Nothing may hang: a batch that breaks before its operations fails them all."""

    def broken(conn, batch, **options):
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
