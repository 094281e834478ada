"""The store's connection pool: plain asyncpg connections, taken and given back at the cost
of a list pop and append.

asyncpg's own pool does more per operation than the store needs: a proxy object per acquire,
a reset coroutine and a shielded task per release (one more event-loop turn), and an
inactivity timer cancelled and armed again each time; under the create+complete benchmark
that was about 6% of the server's CPU. The store already ends every transaction it opens and
never changes session state, so giving a connection back is synchronous here: it goes to the
oldest waiter, or on the idle stack (last in, first out, so the connections in use stay warm
and the others age out).

What it keeps of asyncpg's pool: at most ``max_size`` connections, opened on demand (one at
start, so that a wrong address or password shows at once); ``init`` run on each new
connection; a connection that is closed, still in a transaction or from before
``expire_connections()`` never handed out again; idle connections beyond the first closed
after ``max_idle_seconds``; ``close()`` waiting for the connections in use.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

Init = Callable[[asyncpg.Connection], Awaitable[None]]

MAX_IDLE_SECONDS = 300.0  # asyncpg's max_inactive_connection_lifetime default


class PoolClosing(asyncpg.InterfaceError):  # type: ignore[misc]
    """The pool is closing: no connection is handed out any more."""


class ConnectionPool:
    def __init__(
        self,
        connect_options: Mapping[str, Any],
        *,
        max_size: int,
        init: Init | None = None,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
    ) -> None:
        self._options = dict(connect_options)
        self._max_size = max(1, max_size)
        self._init = init
        self._max_idle = max_idle_seconds
        # Idle connections, the most recently used last, each with the time it came back.
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        # Acquirers waiting: each gets a connection, or None for the right to open one.
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        self._size = 0  # connections open or being opened
        self._in_use = 0
        self._generation = 0
        self._generations: dict[asyncpg.Connection, int] = {}
        self._closing = False
        self._all_back: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Open the first connection: connection failures surface here."""
        conn = await self.acquire()
        self.release(conn)

    def get_size(self) -> int:
        return self._size

    def get_idle_size(self) -> int:
        return len(self._idle)

    # ---- taking and giving back ------------------------------------------------------------

    async def acquire(self) -> asyncpg.Connection:
        if self._closing:
            raise PoolClosing("the connection pool is closing")
        idle = self._idle
        while idle:
            conn = idle.pop()[0]
            if conn.is_closed() or self._generations.get(conn) != self._generation:
                self._discard(conn)
                continue
            self._in_use += 1
            return conn
        if self._size < self._max_size:
            self._size += 1
            return await self._open()
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection (or a slot) just as the wait was cancelled: pass it on.
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._in_use += 1
                    self.release(handed)
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        if conn is None:  # a slot freed by a discarded connection: open one in its place
            return await self._open()
        self._in_use += 1
        return conn

    def release(self, conn: asyncpg.Connection) -> None:
        """Give ``conn`` back. Synchronous: a connection still in a transaction (the store
        always ends its own, so only after a failure it did not clean up) is closed, not reset."""
        self._in_use -= 1
        if (
            conn.is_closed()
            or conn.is_in_transaction()
            or self._generations.get(conn) != self._generation
        ):
            self._discard(conn)
            self._check_all_back()
            return
        if self._closing:  # close() closes it with the others once all are back
            self._idle.append((conn, 0.0))
            self._check_all_back()
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        now = time.monotonic()
        idle = self._idle
        idle.append((conn, now))
        if len(idle) > 1 and now - idle[0][1] > self._max_idle:
            self._discard(idle.pop(0)[0])

    # ---- opening and closing connections -----------------------------------------------------

    async def _open(self) -> asyncpg.Connection:
        """Open a connection in a slot already counted in ``_size``."""
        try:
            conn = await asyncpg.connect(**self._options)
            try:
                if self._init is not None:
                    await self._init(conn)
                if self._closing:
                    raise PoolClosing("the connection pool is closing")
            except BaseException:
                conn.terminate()
                raise
        except BaseException:
            self._free_slot()
            raise
        self._generations[conn] = self._generation
        self._in_use += 1
        return conn

    def _free_slot(self) -> None:
        """A connection slot is free: the oldest waiter opens a connection in it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._size -= 1

    def _discard(self, conn: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):
            conn.terminate()
        if self._generations.pop(conn, None) is None:
            return  # not counted any more (terminate() forgot them all)
        if self._closing:
            self._size -= 1
        else:
            self._free_slot()

    def expire_connections(self) -> None:
        """Replace every connection: idle ones are closed now, those in use when given back
        (after a database restart the old ones are all dead)."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._discard(conn)

    def _check_all_back(self) -> None:
        if self._in_use <= 0 and self._all_back is not None and not self._all_back.done():
            self._all_back.set_result(None)

    async def close(self) -> None:
        """Refuse new acquirers, wait for the connections in use, close them all."""
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosing("the connection pool is closing"))
        if self._in_use > 0:
            self._all_back = asyncio.get_running_loop().create_future()
            await self._all_back
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            if self._generations.pop(conn, None) is None:
                continue
            self._size -= 1
            try:
                await conn.close()
            except Exception:
                conn.terminate()

    def terminate(self) -> None:
        """Close every connection at once, in use or not."""
        self._closing = True
        for conn in list(self._generations):
            with contextlib.suppress(Exception):
                conn.terminate()
        self._generations.clear()
        self._idle.clear()
        self._size = 0
        if self._all_back is not None and not self._all_back.done():
            self._all_back.set_result(None)
