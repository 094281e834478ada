"""The embedded SQLite store: one writer connection, group commit, one thread hop per batch.

Operations submitted while a batch is running queue up; the next batch takes them all (up to
``batch_size``) into one transaction, each inside its own savepoint, and runs the whole batch in
the store's single worker thread. Every operation gets its answer only after COMMIT returned,
which with WAL and ``synchronous=FULL`` means the write is on disk (http-api.md §14.1).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import CoroutineType
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
# Sort ids per transaction of the tag index's backfill: a few milliseconds of the writer's time.
BACKFILL_BATCH = 2000

# Called after each commit with (operations in the batch, seconds, outcome) and the events.
BatchObserver = Callable[[int, float, str], None]
EventObserver = Callable[[Sequence[Event]], None]


def run_to_completion(coroutine: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (it awaits only synchronous SQLite calls)."""
    if type(coroutine) is not CoroutineType and not isinstance(coroutine, Coroutine):
        raise TypeError("store operations must be coroutines")
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a store operation suspended inside a SQLite batch")


class _Fault(Exception):
    """An operation of a batch run without savepoints failed: run the batch again with them."""


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
        readers: int = 4,
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
        # Store.read: reader threads, each with its own connection opened at its first read.
        self._reader_executor = ThreadPoolExecutor(
            max_workers=max(1, readers), thread_name_prefix="sqlite-reader"
        )
        self._readers: list[_Reader] = []
        self._reader_of_thread = threading.local()
        self._backfill: asyncio.Task[None] | None = None
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
        if migrate_fresh and status.current == status.latest and await self.tags_backfill_pending():
            self._backfill = loop.create_task(self._backfill_in_background())
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
        if self._backfill is not None:
            self._backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._backfill
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        loop = asyncio.get_running_loop()
        # Waits for the reads in flight, then closes every reader connection.
        await loop.run_in_executor(None, self._reader_executor.shutdown, True)
        for reader in self._readers:
            reader.conn.close()
        self._readers.clear()
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
        """Run a read-only ``operation`` on a reader connection, in a reader thread: WAL gives
        it a snapshot of the last commit while the writer goes on, so a read that takes a while
        (a search over a million rows) never holds up a batch, nor the reads on the other
        reader threads. A read started after a write was acknowledged sees it (the commit came
        first). An in-memory database is one connection's own, so there it reads through the
        writer."""
        if self._closed:
            raise ResonateError(Code.SHUTTING_DOWN, "the store is closing")
        if self.path == ":memory:":
            return await self.run(operation)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_executor, self._read, operation)

    def _read(self, operation: Operation[T]) -> T:
        """Runs in a reader thread: one read transaction, always rolled back."""
        reader: _Reader | None = getattr(self._reader_of_thread, "reader", None)
        try:
            if reader is None:
                reader = self._reader_of_thread.reader = self._connect_reader()
            conn = reader.conn
            reader.deadline = time.monotonic() + self.tx_timeout
            conn.execute("BEGIN")
        except sqlite3.Error as error:
            raise _store_error(error) from error
        try:
            return run_to_completion(operation(SqliteTransaction(conn, STATEMENTS)))
        except sqlite3.Error as error:
            raise _store_error(error) from error
        finally:
            reader.deadline = 0.0
            if conn.in_transaction:  # an interrupted statement may have ended it already
                conn.execute("ROLLBACK")

    def _connect_reader(self) -> _Reader:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        reader = _Reader(conn)
        conn.set_progress_handler(reader.past_deadline, 20_000)
        self._readers.append(reader)
        return reader

    # ---- the tag index's backfill (migration 007) ---------------------------------------------

    async def backfill_tags(
        self, batch: int | None = None, on_batch: Callable[[int], None] | None = None
    ) -> None:
        """Index the tags of the promises stored before migration 007, ``batch`` sort ids per
        transaction through the writer's queue (so requests go on between batches), until
        none is left; ``on_batch`` gets how many sort ids are left after each one."""
        while True:
            left = await self.run(partial(_backfill_batch, size=batch or BACKFILL_BATCH))
            if on_batch is not None:
                on_batch(left)
            if left == 0:
                return

    async def tags_backfill_pending(self) -> bool:
        """Whether promises stored before migration 007 still wait for their tag index."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._tags_backfill_pending)

    def _tags_backfill_pending(self) -> bool:
        conn = self._require_connection()
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        if conn.execute(exists, ("promise_tags_backfill",)).fetchone() is None:
            return False  # a schema before migration 007
        return not SqliteTransaction(conn, STATEMENTS).tags_indexed()

    async def _backfill_in_background(self) -> None:
        log.info("indexing the tags of the promises stored before this version, in batches")
        try:
            await self.backfill_tags()
        except ResonateError as error:  # the store closing, or a batch failing
            log.warning("tag index backfill stopped: %s (it resumes at the next start)", error)
            return
        log.info("tag index backfill finished")

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
            try:
                return self._run_operations(conn, batch, savepoints=False)
            except _Fault:
                # An operation failed past its domain answers (an integrity error, say): the
                # batch starts over, each operation in a savepoint that its failure rolls back.
                # Nothing was committed or answered; operations are re-runnable (the
                # PostgreSQL store re-runs them after a deadlock too).
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                return self._run_operations(conn, batch, savepoints=True)
        except BaseException:
            self._deadline = 0.0
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run_operations(
        self, conn: sqlite3.Connection, batch: list[_Pending], *, savepoints: bool
    ) -> tuple[list[tuple[bool, Any]], list[Event], str]:
        """Each operation of ``batch`` in turn, then COMMIT. Without ``savepoints`` (the first
        try: two statements fewer per operation) a failed operation raises ``_Fault``."""
        outcomes: list[tuple[bool, Any]] = []
        events: list[Event] = []
        tx = SqliteTransaction(conn, STATEMENTS)
        for pending in batch:
            tx.events.clear()
            if savepoints:
                conn.execute("SAVEPOINT op")
            try:
                outcomes.append((True, run_to_completion(pending.operation(tx))))
                events.extend(tx.events)
            except ResonateError as answer:
                # A domain answer: the operation's writes so far are intended and kept.
                outcomes.append((False, answer))
                events.extend(tx.events)
            except Exception as error:
                if not savepoints:
                    raise _Fault from error
                # Logged once, with the request id, by whoever answers (the HTTP middleware,
                # a loop): the error travels as the answer's cause.
                conn.execute("ROLLBACK TO op")
                outcomes.append((False, _store_error(error)))
            if savepoints:
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


class _Reader:
    """One reader thread's connection and the deadline of its read in progress."""

    __slots__ = ("conn", "deadline")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.deadline = 0.0

    def past_deadline(self) -> int:
        return 1 if self.deadline and time.monotonic() > self.deadline else 0


async def _backfill_batch(tx: Any, size: int) -> int:
    assert isinstance(tx, SqliteTransaction)
    return tx.backfill_tag_index(size)


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
    """Statements of a migration file, comment lines dropped. A line ending a statement ends
    with `;`; SQLite's own tokenizer decides whether the statement is complete, so a trigger's
    `BEGIN ... END;` body stays one statement."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buffer.append(line)
        text = "\n".join(buffer).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            statements.append(text.rstrip(";").strip())
            buffer = []
    rest = "\n".join(buffer).strip()
    if rest:
        statements.append(rest)
    return statements
