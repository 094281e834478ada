"""The PostgreSQL store's connection pool (resonate/store/postgres/pool.py): at most max_size
connections, opened on demand; waiters served in order; a cancelled waiter, a connection left
in a transaction, a closed one or one from before expire_connections() never leaks a slot or
reaches the next operation; close() waits for the connections in use.

Needs RESONATE_TEST_POSTGRES_DSN (see test_postgres_store.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from resonate.core.errors import Code, ResonateError
from resonate.store.postgres.pool import ConnectionPool, PoolClosing
from resonate.store.postgres.store import PostgresStore
from tests.support import pg


@pytest.fixture
async def database() -> AsyncIterator[str]:
    if not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    dsn = await pg.create_database()
    try:
        yield dsn
    finally:
        await pg.drop_database(dsn)


async def backends(database: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def test_at_most_max_size_connections_and_waiters_in_order(database: str) -> None:
    opened: list[int] = []

    async def init(conn: asyncpg.Connection) -> None:
        opened.append(conn.get_server_pid())

    pool = ConnectionPool({"dsn": database}, max_size=2, init=init)
    await pool.start()
    assert pool.get_size() == 1 and pool.get_idle_size() == 1
    first, second = await pool.acquire(), await pool.acquire()
    assert pool.get_size() == 2 and len(opened) == 2
    served: list[str] = []

    async def wait(name: str) -> None:
        conn = await pool.acquire()
        served.append(name)
        await conn.fetchval("SELECT 1")
        pool.release(conn)

    waiting = [asyncio.create_task(wait(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0.05)
    assert served == [] and pool.get_size() == 2
    pool.release(first)
    pool.release(second)
    await asyncio.gather(*waiting)
    assert served == ["a", "b", "c"]
    assert len(opened) == 2 and await backends(database) == 2
    await pool.close()
    assert pool.get_size() == 0
    with pytest.raises(PoolClosing):
        await pool.acquire()


async def test_a_cancelled_waiter_leaks_nothing(database: str) -> None:
    pool = ConnectionPool({"dsn": database}, max_size=1)
    await pool.start()
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    pool.release(held)
    again = await asyncio.wait_for(pool.acquire(), 1)
    assert again is held  # the one connection, free again
    # Handed over just as the wait is cancelled: the connection goes back.
    late = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    pool.release(again)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert pool.get_idle_size() == 1 and pool.get_size() == 1
    await pool.close()


async def test_broken_or_dirty_connections_are_replaced(database: str) -> None:
    pool = ConnectionPool({"dsn": database}, max_size=1)
    await pool.start()
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    pool.release(conn)  # still in a transaction: closed, not reused
    fresh = await pool.acquire()
    assert fresh is not conn and conn.is_closed() and not fresh.is_in_transaction()
    fresh.terminate()
    pool.release(fresh)
    replaced = await pool.acquire()
    assert replaced is not fresh and await replaced.fetchval("SELECT 1") == 1
    pool.release(replaced)
    waiter = asyncio.create_task(pool.acquire())  # a slot freed by a discarded one is handed on
    held = await pool.acquire() if waiter.done() else None
    got = await asyncio.wait_for(waiter, 1)
    assert held is None and await got.fetchval("SELECT 1") == 1
    pool.release(got)
    await pool.close()


async def test_expired_connections_are_replaced(database: str) -> None:
    pool = ConnectionPool({"dsn": database}, max_size=2)
    await pool.start()
    idle = await pool.acquire()
    busy = await pool.acquire()
    pool.release(idle)
    pool.expire_connections()
    assert idle.is_closed() and pool.get_idle_size() == 0
    pool.release(busy)  # from before the expiry: closed on its way back
    assert busy.is_closed()
    conn = await pool.acquire()
    assert conn not in (idle, busy) and pool.get_size() == 1
    pool.release(conn)
    await pool.close()


async def test_idle_connections_age_out_but_one(database: str) -> None:
    pool = ConnectionPool({"dsn": database}, max_size=3, max_idle_seconds=0.05)
    await pool.start()
    conns = [await pool.acquire() for _ in range(3)]
    for conn in conns:
        pool.release(conn)
    assert pool.get_idle_size() == 3
    time.sleep(0.1)
    conn = await pool.acquire()
    pool.release(conn)  # the oldest idle one is past max_idle_seconds: closed
    assert pool.get_idle_size() == 2 and pool.get_size() == 2
    await pool.close()


async def test_close_waits_for_connections_in_use(database: str) -> None:
    pool = ConnectionPool({"dsn": database}, max_size=2)
    await pool.start()
    conn = await pool.acquire()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    assert await conn.fetchval("SELECT 1") == 1  # still usable until given back
    pool.release(conn)
    await asyncio.wait_for(closing, 1)
    assert conn.is_closed() and pool.get_size() == 0


async def test_the_store_answers_503_when_no_connection_comes_free(database: str) -> None:
    """The operation's deadline covers the wait for a pooled connection."""
    store = PostgresStore(database, pool_size=1, tx_timeout_ms=300)
    await store.open()
    try:
        pool = store._pool
        assert pool is not None
        held = await pool.acquire()  # the pool's only connection, taken past the deadline
        started = time.monotonic()
        with pytest.raises(ResonateError) as raised:
            await store.run(lambda tx: tx.count_locks())
        assert raised.value.code is Code.NOT_READY
        assert "no pooled connection came free" in str(raised.value)
        assert time.monotonic() - started < 2
        pool.release(held)
        assert await store.run(lambda tx: tx.count_locks()) == 0
    finally:
        await store.close()
