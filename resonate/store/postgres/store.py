"""The PostgreSQL store: a pool of connections, one READ COMMITTED transaction per operation.

Correctness under concurrency (other requests, other servers on the same database) comes from
the guarded statements in queries.sql, not from the isolation level. An operation is answered
only after COMMIT returned (http-api.md §14.1). A transaction PostgreSQL aborts to break a
deadlock, or an operation that acted on a registration target that changed under it, is run
again from the start; operations only read and write through the transaction, so a re-run is
safe.

A database that stops answering makes operations fail with 503 (50304, "store unavailable");
the pool drops the broken connections and opens new ones once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

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
from resonate.store.postgres.connection import describe_url, url_parameters, url_password
from resonate.store.postgres.pool import ConnectionPool
from resonate.store.postgres.transaction import PostgresTransaction, RetryOperation
from resonate.store.sql import load_statements

T = TypeVar("T")
log = logging.getLogger(__name__)

STATEMENTS = load_statements("resonate.store.postgres")

BatchObserver = Callable[[int, float, str], None]
EventObserver = Callable[[Sequence[Event]], None]

# pg_advisory_xact_lock key for migrations: "resonate" in ASCII.
MIGRATION_LOCK_KEY = 0x7265736F6E617465
# Runs of one operation: deadlock victims and stale registrations are run again.
MAX_ATTEMPTS = 5
CONNECT_RETRY_SECONDS = 30.0
CONNECT_RETRY_INTERVAL = 1.0

# Failures that mean "the database does not answer (yet)": retried at start-up, answered with
# 503 while serving. Anything else at start-up (a wrong password, an unknown database) is final.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, canceled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)

# Any failure of the driver or the connection, outside an operation.
DRIVER_ERRORS = (*UNREACHABLE, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresStore:
    kind = "postgres"

    def __init__(
        self,
        dsn: str | None = None,
        *,
        connect_options: Mapping[str, Any] | None = None,
        description: str | None = None,
        pool_size: int = 10,
        tx_timeout_ms: int = 10_000,
        connect_retry_seconds: float = CONNECT_RETRY_SECONDS,
        on_batch: BatchObserver | None = None,
        on_events: EventObserver | None = None,
    ) -> None:
        """Connect with ``dsn`` (a `postgres://` URL) and/or asyncpg ``connect_options`` (see
        connection.postgres_dsn_and_options); ``description`` names the target in messages."""
        self.options: dict[str, Any] = dict(connect_options or {})
        if dsn is not None:
            self.options["dsn"] = dsn
        self.description = description or _describe(self.options)
        self.pool_size = max(1, pool_size)
        self.tx_timeout = tx_timeout_ms / 1000
        self.connect_retry_seconds = connect_retry_seconds
        self.on_batch = on_batch
        self.on_events = on_events
        self.migrations: list[Migration] = load_migrations("resonate.store.postgres")
        self._secrets = [
            secret
            for secret in (self.options.get("password"), url_password(self.options.get("dsn", "")))
            if secret
        ]
        self._pool: ConnectionPool | None = None
        self._closed = False
        # Operations in flight by their task, with their deadlines; the watchdog cancels those
        # past it, and notes them here so that they answer "txTimeout exceeded".
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        # How late a deadline may be noticed: an eighth of txTimeout, at most a second.
        self._watch_interval = min(1.0, max(0.005, self.tx_timeout / 8))

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self, *, migrate_fresh: bool = True) -> SchemaStatus:
        """Connect (retrying a database that does not answer for up to
        ``connect_retry_seconds``) and, for a fresh database, apply every migration.

        Raises StoreUnavailable when the database cannot be reached or refuses the login, and
        MigrationError when an existing database is behind or ahead of this server.
        """
        self._pool = await self._create_pool()
        try:
            status = await self.schema_status()
            if status.current == 0 and migrate_fresh:
                await self.migrate_up()
                status = await self.schema_status()
            elif status.current != status.latest and migrate_fresh:
                raise MigrationError(pending_message(status.current, status.latest))
        except BaseException:
            await self.close()
            raise
        return status

    async def _create_pool(self) -> ConnectionPool:
        deadline = time.monotonic() + self.connect_retry_seconds
        defaults = {
            "application_name": "resonate",
            # Server-side backstops for aio.store.postgres.txTimeout: no statement, and no
            # transaction left idle by a stalled server, keeps its locks longer.
            "statement_timeout": str(int(self.tx_timeout * 1000)),
            "idle_in_transaction_session_timeout": str(int(self.tx_timeout * 1000)),
        }
        options = {"timeout": self.tx_timeout, **self.options}
        # Settings given as connection parameters (`query`, the URL's query) win over ours.
        given = set(url_parameters(options.get("dsn", ""))) | set(
            options.get("server_settings") or {}
        )
        settings = {k: v for k, v in defaults.items() if k not in given}
        settings.update(options.pop("server_settings", None) or {})
        options["server_settings"] = settings
        # Options of asyncpg's pool that ours has too; the rest are asyncpg.connect's.
        init = options.pop("init", None)
        pool_options: dict[str, Any] = {}
        if "max_inactive_connection_lifetime" in options:
            lifetime = options.pop("max_inactive_connection_lifetime")
            # asyncpg's meaning: 0 keeps idle connections forever.
            pool_options["max_idle_seconds"] = lifetime if lifetime else math.inf
        warned = False
        while True:
            try:
                pool = ConnectionPool(options, max_size=self.pool_size, init=init, **pool_options)
                await pool.start()
                return pool
            except UNREACHABLE as error:
                # A server that refuses the SSL the configuration demands will not change its
                # mind: a configuration error, reported at once like a refused login.
                if time.monotonic() >= deadline or "rejected SSL upgrade" in str(error):
                    raise StoreUnavailable(self._cannot_connect(error)) from None
                if not warned:
                    warned = True
                    log.warning(
                        "%s; retrying for up to %.0fs",
                        self._cannot_connect(error),
                        self.connect_retry_seconds,
                    )
                await asyncio.sleep(CONNECT_RETRY_INTERVAL)
            except Exception as error:  # refused login, unknown database, bad ssl settings
                raise StoreUnavailable(self._cannot_connect(error)) from None

    def _cannot_connect(self, error: BaseException) -> str:
        return f"cannot connect to PostgreSQL ({self.description}): {self._explain(error)}"

    def _explain(self, error: BaseException) -> str:
        """One line naming the error, without any secret."""
        text = " ".join(str(error).split()) or "no details"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f"{type(error).__name__}: {text}"

    async def close(self) -> None:
        """Wait for operations in flight (at most txTimeout), then close every connection."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self.tx_timeout)
            except Exception as error:
                log.warning("closing the PostgreSQL pool: %s", self._explain(error))
                pool.terminate()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _require_pool(self) -> ConnectionPool:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self._pool

    # ---- migrations -------------------------------------------------------------------------

    async def schema_status(self) -> SchemaStatus:
        pool = self._require_pool()
        try:
            async with _connection(pool, self.tx_timeout) as conn:
                current = await self._schema_version(conn)
        except DRIVER_ERRORS as error:
            raise StoreUnavailable(self._cannot_connect(error)) from None
        return SchemaStatus(current, len(self.migrations))

    async def _schema_version(self, conn: asyncpg.Connection) -> int:
        if not await conn.fetchval(STATEMENTS["migrations_table_exists"]):
            return 0
        return int(await conn.fetchval(STATEMENTS["schema_version"]))

    def pending_migrations(self, current: int) -> list[Migration]:
        return pending_after(self.migrations, current)

    async def migrate_up(self) -> list[Migration]:
        """Apply the pending migrations in one transaction, under an advisory lock: a second
        server migrating at the same time waits, then finds nothing left to do."""
        pool = self._require_pool()
        try:
            async with _connection(pool, self.tx_timeout) as conn, conn.transaction():
                # A migration may take longer than an operation may.
                await conn.execute("SET LOCAL statement_timeout = 0")
                await conn.execute(STATEMENTS["migration_lock"], MIGRATION_LOCK_KEY)
                await conn.execute(STATEMENTS["create_migrations_table"])
                current = await self._schema_version(conn)
                if current > len(self.migrations):
                    raise MigrationError(pending_message(current, len(self.migrations)))
                pending = self.pending_migrations(current)
                now = time.time_ns() // 1_000_000
                for migration in pending:
                    try:
                        await conn.execute(migration.sql)
                    except asyncpg.PostgresError as error:
                        if isinstance(error, UNREACHABLE):
                            raise
                        raise MigrationError(
                            f"migration {migration.version:03d}_{migration.name}.sql failed "
                            f"(nothing was applied): {self._explain(error)}"
                        ) from None
                    await conn.execute(
                        STATEMENTS["record_migration"], migration.version, migration.name, now
                    )
        except DRIVER_ERRORS as error:
            raise StoreUnavailable(self._cannot_connect(error)) from None
        return pending

    # ---- operations ---------------------------------------------------------------------------

    async def run(self, operation: Operation[T], *, shortcut: Shortcut[T] | None = None) -> T:
        """Run ``operation`` in its own transaction; its result once committed. A
        ``shortcut`` runs first, as one statement outside a transaction (one round trip
        instead of three or more); ``operation`` runs only when it returns None."""
        if self._closed:
            raise ResonateError(Code.SHUTTING_DOWN, "the store is closing")
        pool = self._pool
        if pool is None:
            raise ResonateError(Code.NOT_READY, "store unavailable: the store is not open")
        if shortcut is not None:
            result = await self._run(pool, shortcut, transactional=False)
            if result is not None:
                return result
        return await self._run(pool, operation, transactional=True)

    async def read(self, operation: Operation[T]) -> T:
        """Run a read-only ``operation`` with each statement on its own (no BEGIN and COMMIT
        round trips): a pooled connection never holds up other operations, so that is all a
        read needs here. A statement that sees several tables sees them in one snapshot."""
        if self._closed:
            raise ResonateError(Code.SHUTTING_DOWN, "the store is closing")
        pool = self._pool
        if pool is None:
            raise ResonateError(Code.NOT_READY, "store unavailable: the store is not open")
        return await self._run(pool, operation, transactional=False)

    async def _run(
        self, pool: ConnectionPool, operation: Operation[T], *, transactional: bool
    ) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                answered, result, events = await self._attempt(pool, operation, transactional)
            except _Failed as failed:
                self._observe(time.perf_counter() - started, failed.status, [])
                if failed.retry and attempt < MAX_ATTEMPTS:
                    continue
                raise failed.answer from failed.__cause__
            self._observe(time.perf_counter() - started, "commit", events)
            if answered:
                # A domain answer: its writes are committed, the error is the response.
                raise result
            return result  # type: ignore[no-any-return]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, pool: ConnectionPool, operation: Operation[Any], transactional: bool
    ) -> tuple[bool, Any, list[Event]]:
        """One transaction: (whether the result is a ResonateError answer, the result or the
        answer, the events to publish). Any failure is a _Failed.

        Not ``transactional`` (a shortcut, a read): each statement commits by itself, so a
        connection lost while a shortcut ran leaves its outcome unknown, as a lost COMMIT
        does."""
        conn: asyncpg.Connection | None = None
        committing = not transactional
        # One deadline for taking a pooled connection and running the transaction, kept by the
        # watchdog (see _watch): a dict entry per operation instead of a timer.
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = time.monotonic() + self.tx_timeout
        if self._watchdog is None:
            self._arm_watchdog()
        try:
            try:
                conn = await pool.acquire()
                if transactional:
                    await conn.execute("BEGIN")
                tx = PostgresTransaction(conn, STATEMENTS)
                answered = False
                try:
                    result: Any = await operation(tx)
                except ResonateError as answer:
                    answered, result = True, answer
                if transactional:
                    committing = True
                    await conn.execute("COMMIT")
            except asyncio.CancelledError:
                if task not in self._expired:
                    raise
                # The watchdog's cancellation: the deadline passed (as asyncio.timeout does,
                # unless the task was also cancelled from elsewhere).
                self._expired.discard(task)
                if task.uncancel() > 0:
                    raise
                raise TimeoutError from None
            finally:
                self._deadlines.pop(task, None)
                self._expired.discard(task)
            return answered, result, tx.events
        except asyncio.CancelledError:
            if conn is not None:
                _terminate(conn)  # a statement may be in flight: the connection is not reusable
            raise
        except Exception as error:
            if conn is None:
                raise self._acquire_failure(error) from error
            broken = _is_closed(conn)
            await self._discard(conn, error, broken)
            if broken or isinstance(error, UNREACHABLE):
                # Its idle siblings likely died with it (a database restart): have the pool
                # replace them all, so that the retry does not draw another dead one.
                pool.expire_connections()
            raise self._failure(error, broken, committing) from error
        finally:
            if conn is not None:
                pool.release(conn)

    def _arm_watchdog(self) -> None:
        self._watchdog = asyncio.get_running_loop().call_later(self._watch_interval, self._watch)

    def _watch(self) -> None:
        """Cancel the operations past their deadline; ticks while any is in flight."""
        self._watchdog = None
        if not self._deadlines:
            return  # the next operation arms it again
        now = time.monotonic()
        for task, deadline in list(self._deadlines.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._arm_watchdog()

    def _acquire_failure(self, error: Exception) -> _Failed:
        if isinstance(error, TimeoutError):
            detail = f"no pooled connection came free within txTimeout ({self._tx_ms} ms)"
            answer = ResonateError(Code.NOT_READY, f"store unavailable: {detail}")
            return _Failed(answer, retry=False, status="error")
        return _Failed(self._unavailable(error), retry=False, status="error")

    async def _discard(self, conn: asyncpg.Connection, error: Exception, broken: bool) -> None:
        """Roll back, or close a connection that cannot be trusted any more."""
        if broken or isinstance(error, TimeoutError):
            _terminate(conn)
            return
        if not conn.is_in_transaction():  # a shortcut's statement: nothing to roll back
            return
        try:
            async with asyncio.timeout(self.tx_timeout):
                await conn.execute("ROLLBACK")
        except Exception:
            _terminate(conn)

    def _failure(self, error: Exception, broken: bool, committing: bool) -> _Failed:
        if isinstance(error, RetryOperation | asyncpg.exceptions.TransactionRollbackError):
            detail = "the operation kept conflicting with concurrent ones"
            answer = ResonateError(
                Code.STORE_ERROR, f"store error: {detail}", cause=self._explain(error)
            )
            return _Failed(answer, retry=True, status="rollback")
        if isinstance(error, TimeoutError | asyncpg.exceptions.QueryCanceledError):
            detail = f"the transaction exceeded txTimeout ({self._tx_ms} ms)"
            answer = ResonateError(Code.NOT_READY, f"store unavailable: {detail}")
            return _Failed(answer, retry=False, status="error")
        if broken or isinstance(error, UNREACHABLE):
            # Nothing was committed unless COMMIT had been sent: then run it once more, on a
            # fresh connection (a pooled connection may have died with a database restart).
            return _Failed(self._unavailable(error), retry=not committing, status="error")
        # The driver's text may quote the statement's arguments: it goes to the log, with the
        # request id, by whoever answers (the HTTP middleware, a loop); never to the client.
        answer = ResonateError(
            Code.STORE_ERROR,
            "store error: the operation failed and was rolled back",
            cause=self._explain(error),
        )
        return _Failed(answer, retry=False, status="rollback")

    @property
    def _tx_ms(self) -> int:
        return round(self.tx_timeout * 1000)

    def _unavailable(self, error: BaseException) -> ResonateError:
        return ResonateError(
            Code.NOT_READY,
            "store unavailable: the database cannot be reached; retry later",
            cause=self._explain(error),
        )

    def _observe(self, seconds: float, status: str, events: list[Event]) -> None:
        """Report a finished transaction; observers failing must not disturb the store."""
        try:
            if self.on_batch is not None:
                self.on_batch(1, seconds, status)
            if events and self.on_events is not None:
                self.on_events(events)
        except Exception:
            log.exception("store observer failed")


class _Failed(Exception):
    """A transaction that did not commit: the answer to give, and whether to run it again."""

    def __init__(self, answer: ResonateError, *, retry: bool, status: str) -> None:
        super().__init__(str(answer))
        self.answer = answer
        self.retry = retry
        self.status = status


def _is_closed(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back when it closed
        return True


def _terminate(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(asyncpg.InterfaceError):  # already given back to the pool
        conn.terminate()


@contextlib.asynccontextmanager
async def _connection(pool: ConnectionPool, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for one use outside operations (schema checks, migrations)."""
    async with asyncio.timeout(timeout):
        conn = await pool.acquire()
    try:
        yield conn
    except BaseException:
        _terminate(conn)  # a statement may be in flight, or a transaction left open
        raise
    finally:
        pool.release(conn)


def _describe(options: Mapping[str, Any]) -> str:
    if options.get("host") is None and options.get("dsn"):
        return describe_url(str(options["dsn"]))
    return (
        f"host={options.get('host', 'localhost')} port={options.get('port', 5432)} "
        f"database={options.get('database', '(default)')} user={options.get('user', '(default)')}"
    )
