"""Minimal baseline for benchmarks/promises.py: create + complete promises on SQLite.

The bar "what a bare design achieves" with the same durability as our server (spec §14.1):
one writer connection in WAL mode with synchronous=FULL, group commit (everything queued goes
into one transaction run in one hop to a single writer thread, each operation in its own
savepoint) and a 2xx only after COMMIT has returned. It implements only what the benchmark
drives: `POST /promises` (409 on any existing id, no idempotency dedup), `PATCH /promises/{id}`
(guarded update, 201/403/404) and `GET /healthz`.

    python benchmarks/baseline_sqlite.py --port 8001 --db /tmp/baseline.db
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from baseline_http import (
    COLUMNS,
    LOOPS,
    BadRequest,
    already_exists,
    invalid,
    not_completed_here,
    parse_complete,
    parse_create,
    promise_json,
    respond,
    run,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS promises (
    id TEXT UNIQUE NOT NULL,
    sort_id INTEGER PRIMARY KEY AUTOINCREMENT,
    state INTEGER DEFAULT 1,
    param_headers TEXT, param_data BLOB, value_headers TEXT, value_data BLOB,
    timeout INTEGER,
    idempotency_key_for_create TEXT, idempotency_key_for_complete TEXT,
    tags TEXT, created_on INTEGER, completed_on INTEGER
);
CREATE INDEX IF NOT EXISTS promises_timeout ON promises(timeout) WHERE state = 1;
"""
INSERT = (
    "INSERT INTO promises (id, state, param_headers, param_data, timeout,"
    " idempotency_key_for_create, tags, created_on) VALUES (?, 1, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
COMPLETE = (
    "UPDATE promises SET state = ?, value_headers = ?, value_data = ?,"
    " idempotency_key_for_complete = ?, completed_on = ? WHERE id = ? AND state = 1"
    f" RETURNING {COLUMNS}"
)
BATCH_LIMIT = 1000  # system.submissionBatchSize default

Operation = Callable[[sqlite3.Connection], Any]


class GroupCommitWriter:
    """Queue of operations; one task drains it into one transaction per thread hop."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._queue: list[tuple[Operation, asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()

    async def submit(self, operation: Operation) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        self._wakeup.set()
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
            if not self._queue:
                self._wakeup.clear()
            try:
                results = await loop.run_in_executor(
                    self._thread, self._transaction, [op for op, _ in batch]
                )
            except sqlite3.Error as error:  # COMMIT failed: nobody is acknowledged
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _transaction(self, operations: list[Operation]) -> list[Any]:
        db, results = self._db, []
        db.execute("BEGIN IMMEDIATE")
        try:
            for operation in operations:
                db.execute("SAVEPOINT op")
                try:
                    results.append(operation(db))
                except sqlite3.Error as error:
                    db.execute("ROLLBACK TO op")
                    results.append(error)
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return results


async def create_promise(request: web.Request) -> web.Response:
    try:
        new = await parse_create(request)
    except BadRequest as exc:
        return invalid(exc)

    def insert(db: sqlite3.Connection) -> bool:
        return db.execute(INSERT, new.insert_args).rowcount == 1

    if not await request.app["writer"].submit(insert):
        return already_exists()
    return new.created()


async def complete_promise(request: web.Request) -> web.Response:
    try:
        completion = await parse_complete(request)
    except BadRequest as exc:
        return invalid(exc)

    def complete(db: sqlite3.Connection) -> tuple[Any, ...] | int | None:
        updated = db.execute(COMPLETE, completion.update_args).fetchone()
        if updated is not None:
            return tuple(updated)
        stored = db.execute("SELECT state FROM promises WHERE id = ?", (completion.id,)).fetchone()
        return None if stored is None else int(stored[0])

    outcome = await request.app["writer"].submit(complete)
    if outcome is None or isinstance(outcome, int):
        return not_completed_here(outcome)
    return respond(201, promise_json(outcome))


def open_writer(path: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def writer_context(app: web.Application) -> AsyncIterator[None]:
        app["writer"] = GroupCommitWriter(path)
        task = asyncio.create_task(app["writer"].run())
        yield
        task.cancel()

    return writer_context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--db", required=True, help="SQLite database file")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop")
    options = parser.parse_args()
    storage = open_writer(options.db)
    run(options.host, options.port, create_promise, complete_promise, storage, options.loop)


if __name__ == "__main__":
    main()
