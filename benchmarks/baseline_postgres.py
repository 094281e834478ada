"""Minimal baseline for benchmarks/promises.py: create + complete promises on PostgreSQL.

The bar "what a bare design achieves" on PostgreSQL with the same durability as our server
(spec §14.1): an asyncpg pool of the same size as ours (`aio.store.postgres.poolSize`, 10), the
server's default `synchronous_commit` (on: COMMIT returns after the WAL flush), and a 2xx only
after the statement's implicit transaction committed. Each request is one guarded statement in
autocommit mode (no BEGIN/COMMIT round trips), prepared once per connection by asyncpg's
statement cache. The promises table has the shape of ours (migrations/001_initial_schema.sql:
`id TEXT COLLATE "C"` primary key, 64-bit identity `sort_id`, JSONB headers and tags, BYTEA
data, the partial timeout index and the GIN tags index).

It implements only what the benchmark drives: `POST /promises` (`INSERT … ON CONFLICT DO
NOTHING`; on conflict the stored promise is read and the answer is 409, no idempotency dedup),
`PATCH /promises/{id}` (guarded `UPDATE … RETURNING`, 201/403/404) and `GET /healthz`.

    python benchmarks/baseline_postgres.py --port 8001 \
        --dsn postgresql://postgres@127.0.0.1:5432/baseline
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS promises (
    id                           TEXT COLLATE "C" PRIMARY KEY,
    sort_id                      BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    state                        INTEGER NOT NULL DEFAULT 1,
    param_headers                JSONB,
    param_data                   BYTEA,
    value_headers                JSONB,
    value_data                   BYTEA,
    timeout                      BIGINT NOT NULL,
    idempotency_key_for_create   TEXT,
    idempotency_key_for_complete TEXT,
    tags                         JSONB,
    created_on                   BIGINT,
    completed_on                 BIGINT
);
CREATE INDEX IF NOT EXISTS idx_promises_pending_timeout ON promises (timeout) WHERE state = 1;
CREATE INDEX IF NOT EXISTS idx_promises_tags ON promises USING GIN (tags jsonb_path_ops);
"""
COLUMNS = (
    "id, state, param_headers, param_data, value_headers, value_data, timeout,"
    " idempotency_key_for_create, idempotency_key_for_complete, tags, created_on, completed_on"
)
INSERT = (
    "INSERT INTO promises (id, state, param_headers, param_data, timeout,"
    " idempotency_key_for_create, tags, created_on) VALUES ($1, 1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (id) DO NOTHING"
)
SELECT = f"SELECT {COLUMNS} FROM promises WHERE id = $1"
COMPLETE = (
    "UPDATE promises SET state = $1, value_headers = $2, value_data = $3,"
    " idempotency_key_for_complete = $4, completed_on = $5 WHERE id = $6 AND state = 1"
    f" RETURNING {COLUMNS}"
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
POOL_SIZE = 10  # aio.store.postgres.poolSize default


class BadRequest(Exception):
    pass


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


def promise_json(row: Any) -> dict[str, Any]:
    """A promise from a row in COLUMNS order (a Record or a tuple)."""
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
        if "\x00" in promise_id:
            raise BadRequest("The field id must not contain U+0000.")
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
    pool: asyncpg.Pool = request.app["pool"]
    status = await pool.execute(
        INSERT, promise_id, param_headers, param_data, timeout, key, tags_json, now
    )
    if status != "INSERT 0 1":
        stored = await pool.fetchrow(SELECT, promise_id)
        if stored is not None:
            return error(409, 40900, "The specified promise already exists")
        return error(404, 40400, "The specified promise was not found")  # never: no deletes
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
    if "\x00" in promise_id:
        return error(404, 40400, "The specified promise was not found")
    key = request.headers.get("idempotency-key") or None
    now = int(time.time() * 1000)
    pool: asyncpg.Pool = request.app["pool"]
    updated = await pool.fetchrow(COMPLETE, state, value_headers, value_data, key, now, promise_id)
    if updated is not None:
        return respond(201, promise_json(updated))
    stored = await pool.fetchval("SELECT state FROM promises WHERE id = $1", promise_id)
    if stored is None:
        return error(404, 40400, "The specified promise was not found")
    return error(403, 40300 + {2: 1, 4: 2, 8: 3, 16: 4}[stored], "The promise is completed")


async def healthz(request: web.Request) -> web.Response:
    return respond(200, {"status": "ok"})


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Pool reset on release: no session state is ever changed, so asyncpg's default reset
    (a round trip per release) is not needed; ours skips it the same way."""


def open_pool(dsn: str, pool_size: int) -> Any:
    async def pool_context(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, reset=_no_reset,
            server_settings={"application_name": "resonate-baseline"},
        )  # fmt: skip
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app["pool"] = pool
        yield
        await pool.close()

    return pool_context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--dsn", required=True, help="postgresql:// URL of a fresh database")
    parser.add_argument("--pool-size", type=int, default=POOL_SIZE, help="asyncpg pool size")
    options = parser.parse_args()
    app = web.Application(client_max_size=10 * 2**20)
    app.cleanup_ctx.append(open_pool(options.dsn, options.pool_size))
    app.router.add_post("/promises", create_promise)
    app.router.add_patch("/promises/{id:.*}", complete_promise)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=options.host, port=options.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
