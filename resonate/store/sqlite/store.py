"""The embedded SQLite store: one writer connection, group commit, one thread hop per batch.

Operations submitted while a batch is running queue up; the next batch takes them all (up to
``batch_size``) into one transaction, each inside its own savepoint, and runs the whole batch in
the store's single worker thread. Every operation gets its answer only after COMMIT returned,
which with WAL and ``synchronous=FULL`` means the write is on disk (http-api.md §14.1).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from resonate.core.errors import Code, ResonateError
from resonate.store.base import (
    Event,
    MigrationError,
    Operation,
    SchemaStatus,
    Shortcut,
    StoreUnavailable,
)
from resonate.store.migrations import Migration, load_migrations, pending_after, pending_message
from resonate.store.sql import load_statements
from resonate.store.sqlite.transaction import SqliteTransaction

T = TypeVar("T")
log = logging.getLogger(__name__)

SYNCHRONOUS_MODES = ("FULL", "EXTRA", "NORMAL")
STATEMENTS = load_statements("resonate.store.sqlite")

# Called after each commit with (operations in the batch, seconds, outcome) and the events.
BatchObserver = Callable[[int, float, str], None]
EventObserver = Callable[[Sequence[Event]], None]


def run_to_completion(coroutine: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (it awaits only synchronous SQLite calls)."""
    if not isinstance(coroutine, Coroutine):
        raise TypeError("store operations must be coroutines")
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a store operation suspended inside a SQLite batch")


class _Pending:
    __slots__ = ("future", "operation")

    def __init__(self, operation: Operation[Any], future: asyncio.Future[Any]) -> None:
        self.operation = operation
        self.future = future


class SqliteStore:
    kind = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        tx_timeout_ms: int = 10_000,
        batch_size: int = 1000,
        on_batch: BatchObserver | None = None,
        on_events: EventObserver | None = None,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.tx_timeout = tx_timeout_ms / 1000
        self.batch_size = max(1, batch_size)
        self.on_batch = on_batch
        self.on_events = on_events
        self.migrations: list[Migration] = load_migrations("resonate.store.sqlite")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connection: sqlite3.Connection | None = None
        # Store.read: a second connection with its own thread, opened at the first read.
        self._reader_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-reader"
        )
        self._reader: sqlite3.Connection | None = None
        self._read_deadline = 0.0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self._deadline = 0.0

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self, *, migrate_fresh: bool = True) -> SchemaStatus:
        """Connect, apply the pragmas and (for a fresh database) every migration.

        Raises MigrationError when an existing database is behind or ahead of this server.
        """
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._connect)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {error}") from error
        status = await self.schema_status()
        if status.current == 0 and migrate_fresh:
            await self.migrate_up()
            status = await self.schema_status()
        elif status.current != status.latest and migrate_fresh:
            raise MigrationError(pending_message(status.current, status.latest))
        return status

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.set_progress_handler(self._past_deadline, 20_000)
        self._connection = conn

    def _past_deadline(self) -> int:
        # Interrupts a statement that keeps the transaction past aio.store.sqlite.txTimeout.
        return 1 if self._deadline and time.monotonic() > self._deadline else 0

    async def close(self) -> None:
        """Finish queued operations, checkpoint the WAL and close the connection."""
        self._closed = True
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        loop = asyncio.get_running_loop()
        # Queued behind the reads in flight, which may still open the reader.
        await loop.run_in_executor(self._reader_executor, self._close_reader)
        self._reader_executor.shutdown(wait=True)
        if self._connection is not None:
            await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        assert self._connection is not None
        try:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            log.warning("WAL checkpoint at close failed: %s", error)
        self._connection.close()
        self._connection = None

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # ---- migrations -------------------------------------------------------------------------

    async def schema_status(self) -> SchemaStatus:
        loop = asyncio.get_running_loop()
        current = await loop.run_in_executor(self._executor, self._schema_version)
        return SchemaStatus(current, len(self.migrations))

    def _schema_version(self) -> int:
        conn = self._require_connection()
        if conn.execute(STATEMENTS["migrations_table_exists"]).fetchone() is None:
            return 0
        row = conn.execute(STATEMENTS["schema_version"]).fetchone()
        return int(row[0])

    def pending_migrations(self, current: int) -> list[Migration]:
        return pending_after(self.migrations, current)

    async def migrate_up(self) -> list[Migration]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._migrate_up)

    def _migrate_up(self) -> list[Migration]:
        conn = self._require_connection()
        current = self._schema_version()
        if current > len(self.migrations):
            raise MigrationError(pending_message(current, len(self.migrations)))
        pending = self.pending_migrations(current)
        if not pending:
            return []
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(STATEMENTS["create_migrations_table"])
            now = time.time_ns() // 1_000_000
            for migration in pending:
                for statement in _split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    STATEMENTS["record_migration"], (migration.version, migration.name, now)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return pending

    def _require_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._connection

    # ---- group commit -------------------------------------------------------------------------

    async def run(self, operation: Operation[T], *, shortcut: Shortcut[T] | None = None) -> T:
        """Queue ``operation`` for the writer's next group commit. A ``shortcut`` is not
        needed: the whole operation runs in-process inside the group's transaction."""
        if self._closed:
            raise ResonateError(Code.SHUTTING_DOWN, "the store is closing")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(operation, future))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def read(self, operation: Operation[T]) -> T:
        """Run a read-only ``operation`` on the reader connection, in its own thread: WAL
        gives it a snapshot of the last commit while the writer goes on, so a read that takes
        a while (counting a million rows) never holds up a batch. An in-memory database is
        one connection's own, so there it reads through the writer."""
        if self._closed:
            raise ResonateError(Code.SHUTTING_DOWN, "the store is closing")
        if self.path == ":memory:":
            return await self.run(operation)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_executor, self._read, operation)

    def _read(self, operation: Operation[T]) -> T:
        """Runs in the reader thread: one read transaction, always rolled back."""
        try:
            conn = self._reader or self._connect_reader()
            self._read_deadline = time.monotonic() + self.tx_timeout
            conn.execute("BEGIN")
        except sqlite3.Error as error:
            raise _store_error(error) from error
        try:
            return run_to_completion(operation(SqliteTransaction(conn, STATEMENTS)))
        except sqlite3.Error as error:
            raise _store_error(error) from error
        finally:
            self._read_deadline = 0.0
            if conn.in_transaction:  # an interrupted statement may have ended it already
                conn.execute("ROLLBACK")

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.set_progress_handler(self._read_past_deadline, 20_000)
        self._reader = conn
        return conn

    def _read_past_deadline(self) -> int:
        return 1 if self._read_deadline and time.monotonic() > self._read_deadline else 0

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                count = min(len(self._queue), self.batch_size)
                batch = [self._queue.popleft() for _ in range(count)]
                started = time.perf_counter()
                try:
                    outcomes, events, status = await loop.run_in_executor(
                        self._executor, self._execute_batch, batch
                    )
                except Exception as error:  # outside any savepoint: nothing is acknowledged
                    log.exception("store batch failed")
                    outcomes, events, status = (
                        [(False, _store_error(error))] * len(batch),
                        [],
                        "error",
                    )
                for pending, (ok, result) in zip(batch, outcomes, strict=True):
                    if pending.future.done():
                        continue
                    if ok:
                        pending.future.set_result(result)
                    else:
                        pending.future.set_exception(result)
                self._observe(len(batch), time.perf_counter() - started, status, events)
        finally:
            self._drainer = None

    def _observe(self, operations: int, seconds: float, status: str, events: list[Event]) -> None:
        """Report a finished batch; observers failing must not disturb the store."""
        try:
            if self.on_batch is not None:
                self.on_batch(operations, seconds, status)
            if events and self.on_events is not None:
                self.on_events(events)
        except Exception:
            log.exception("store batch observer failed")

    def _execute_batch(
        self, batch: list[_Pending]
    ) -> tuple[list[tuple[bool, Any]], list[Event], str]:
        """Runs in the writer thread: one transaction, one savepoint per operation."""
        conn = self._require_connection()
        self._deadline = time.monotonic() + self.tx_timeout
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self._deadline = 0.0
            failure = _store_error(error)
            return [(False, failure)] * len(batch), [], "error"
        try:
            return self._run_operations(conn, batch)
        except BaseException:
            self._deadline = 0.0
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run_operations(
        self, conn: sqlite3.Connection, batch: list[_Pending]
    ) -> tuple[list[tuple[bool, Any]], list[Event], str]:
        outcomes: list[tuple[bool, Any]] = []
        events: list[Event] = []
        tx = SqliteTransaction(conn, STATEMENTS)
        for pending in batch:
            tx.events.clear()
            conn.execute("SAVEPOINT op")
            try:
                outcomes.append((True, run_to_completion(pending.operation(tx))))
                events.extend(tx.events)
            except ResonateError as answer:
                # A domain answer: the operation's writes so far are intended and kept.
                outcomes.append((False, answer))
                events.extend(tx.events)
            except Exception as error:
                # Logged once, with the request id, by whoever answers (the HTTP middleware,
                # a loop): the error travels as the answer's cause.
                conn.execute("ROLLBACK TO op")
                outcomes.append((False, _store_error(error)))
            conn.execute("RELEASE op")
            if time.monotonic() > self._deadline:
                break
        try:
            if time.monotonic() > self._deadline:
                raise TimeoutError("the transaction exceeded aio.store.sqlite.txTimeout")
            conn.execute("COMMIT")
        except (sqlite3.Error, TimeoutError) as error:
            self._deadline = 0.0
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = _store_error(error)
            return [(False, failure)] * len(batch), [], "rollback"
        self._deadline = 0.0
        return outcomes, events, "commit"


def _store_error(error: BaseException) -> ResonateError:
    """A failed operation or transaction: a 500 whose text tells the client nothing internal
    (exception text can quote the client's own input back, or the schema); the exception
    rides along as the cause, for the log."""
    if isinstance(error, TimeoutError):
        detail = "store error: the transaction exceeded aio.store.sqlite.txTimeout"
    else:
        detail = "store error: the operation failed and was rolled back"
    answer = ResonateError(Code.STORE_ERROR, detail, cause=f"{type(error).__name__}: {error}")
    answer.__cause__ = error
    return answer


def _split_statements(script: str) -> list[str]:
    """Statements of a migration file (no statement in our migrations contains a `;` inside)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
