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
import base64
import binascii
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

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
    " RETURNING id, state, param_headers, param_data, value_headers, value_data, timeout,"
    " idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on"
)
STATES = {
    1: "PENDING",
    2: "RESOLVED",
    4: "REJECTED",
    8: "REJECTED_CANCELED",
    16: "REJECTED_TIMEDOUT",
}
COMPLETIONS = {"RESOLVED": 2, "REJECTED": 4, "REJECTED_CANCELED": 8}
INT64 = 2**63
BATCH_LIMIT = 1000  # system.submissionBatchSize default

Operation = Callable[[sqlite3.Connection], Any]


class BadRequest(Exception):
    pass


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


def decode_value(value: Any) -> tuple[str | None, bytes | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise BadRequest("value must be an object")
    headers, data = value.get("headers"), value.get("data")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        raise BadRequest("headers must map strings to strings")
    if data is not None and not isinstance(data, str):
        raise BadRequest("data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True) if data else None
    except binascii.Error as error:
        raise BadRequest("data is not valid base64") from error
    return (json.dumps(headers) if headers else None), raw


def encode_value(headers: str | None, data: bytes | None) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if headers:
        value["headers"] = json.loads(headers)
    if data:
        value["data"] = base64.b64encode(data).decode()
    return value


def promise_json(row: tuple[Any, ...]) -> dict[str, Any]:
    promise = {
        "id": row[0],
        "state": STATES[row[1]],
        "param": encode_value(row[2], row[3]),
        "value": encode_value(row[4], row[5]),
        "timeout": row[6],
        "createdOn": row[10],
    }
    for key, item in (
        ("idempotencyKeyForCreate", row[7]),
        ("idempotencyKeyForComplete", row[8]),
        ("completedOn", row[11]),
    ):
        if item is not None:
            promise[key] = item
    if row[9]:
        promise["tags"] = json.loads(row[9])
    return promise


def respond(status: int, body: dict[str, Any]) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(status=status, text=text, content_type="application/json")


def error(status: int, code: int, message: str, cause: str = "") -> web.Response:
    detail = {"@type": "RequestError", "message": cause or message, "domain": "request"}
    return respond(status, {"error": {"code": code, "message": message, "details": [detail]}})


async def read_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("body is not an object")
    return body


async def create_promise(request: web.Request) -> web.Response:
    try:
        body = await read_object(request)
        promise_id, timeout = body.get("id"), body.get("timeout")
        timeout = 0 if timeout is None else timeout
        if not isinstance(promise_id, str) or not 0 < len(promise_id.encode()) <= 1024:
            raise BadRequest("The field id is required.")
        if type(timeout) is not int or not -INT64 <= timeout < INT64:
            raise BadRequest("The field timeout must be an int64.")
        param_headers, param_data = decode_value(body.get("param"))
        tags = body.get("tags") or None
        if tags is not None and (
            not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
        ):
            raise BadRequest("The field tags must map strings to strings.")
    except BadRequest as exc:
        return error(400, 40000, "The request is invalid", str(exc))
    key = request.headers.get("idempotency-key") or None
    tags_json, now = (json.dumps(tags) if tags else None), int(time.time() * 1000)
    insert_args = (promise_id, param_headers, param_data, timeout, key, tags_json, now)

    def insert(db: sqlite3.Connection) -> bool:
        return db.execute(INSERT, insert_args).rowcount == 1

    if not await request.app["writer"].submit(insert):
        return error(409, 40900, "The specified promise already exists")
    # Column order of the RETURNING clause of COMPLETE.
    row = (promise_id, 1, param_headers, param_data, None, None, timeout, key, None, tags_json)
    return respond(201, promise_json((*row, now, None)))


async def complete_promise(request: web.Request) -> web.Response:
    promise_id = request.match_info["id"]
    try:
        body = await read_object(request)
        state = COMPLETIONS.get(str(body.get("state")).upper())
        if state is None:
            raise BadRequest(
                "The field state must be one of resolved, rejected, rejected_canceled."
            )
        value_headers, value_data = decode_value(body.get("value"))
    except BadRequest as exc:
        return error(400, 40000, "The request is invalid", str(exc))
    key = request.headers.get("idempotency-key") or None
    args = (state, value_headers, value_data, key, int(time.time() * 1000), promise_id)

    def complete(db: sqlite3.Connection) -> tuple[Any, ...] | int | None:
        updated = db.execute(COMPLETE, args).fetchone()
        if updated is not None:
            return tuple(updated)
        stored = db.execute("SELECT state FROM promises WHERE id = ?", (promise_id,)).fetchone()
        return None if stored is None else int(stored[0])

    outcome = await request.app["writer"].submit(complete)
    if outcome is None:
        return error(404, 40400, "The specified promise was not found")
    if isinstance(outcome, int):
        return error(403, 40300 + {2: 1, 4: 2, 8: 3, 16: 4}[outcome], "The promise is completed")
    return respond(201, promise_json(outcome))


async def healthz(request: web.Request) -> web.Response:
    return respond(200, {"status": "ok"})


async def start_writer(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app["writer"].run())
    yield
    task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--db", required=True, help="SQLite database file")
    options = parser.parse_args()
    app = web.Application(client_max_size=10 * 2**20)
    app["writer"] = GroupCommitWriter(options.db)
    app.cleanup_ctx.append(start_writer)
    app.router.add_post("/promises", create_promise)
    app.router.add_patch("/promises/{id:.*}", complete_promise)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=options.host, port=options.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
