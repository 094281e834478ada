"""Minimal baseline for benchmarks/promises.py: create + complete promises on PostgreSQL.

The bar "what a bare design achieves" on PostgreSQL with the same durability as our server
(spec §14.1): an asyncpg pool of the same size as ours (`aio.store.postgres.poolSize`, 10), the
server's default `synchronous_commit` (on: COMMIT returns after the WAL flush), and a 2xx only
after the statement's implicit transaction committed. Each request is one guarded statement in
autocommit mode (no BEGIN/COMMIT round trips), prepared once per connection by asyncpg's
statement cache. The promises table has the shape of ours (migrations/001_initial_schema.sql:
`id TEXT COLLATE "C"` primary key, 64-bit identity `sort_id`, JSONB headers and tags, BYTEA
data, the partial timeout index) and so has its tag index (migrations/007_promise_tag_search.sql:
no GIN index on the table, a promise_tags table written by an insert trigger that skips untagged
promises).

It implements only what the benchmark drives: `POST /promises` (`INSERT … ON CONFLICT DO
NOTHING`; on conflict the stored promise is read and the answer is 409, no idempotency dedup),
`PATCH /promises/{id}` (guarded `UPDATE … RETURNING`, 201/403/404) and `GET /healthz`.

    python benchmarks/baseline_postgres.py --port 8001 \
        --dsn postgresql://postgres@127.0.0.1:5432/baseline
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
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
CREATE TABLE IF NOT EXISTS promise_tags (
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    sort_id BIGINT NOT NULL,
    id      TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_promises_tags ON promise_tags (key, value, sort_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_promise_tags_id ON promise_tags (key, value, id);
CREATE OR REPLACE FUNCTION baseline_promise_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO promise_tags (key, value, sort_id, id)
    SELECT e.key, e.value #>> '{}', NEW.sort_id, NEW.id
    FROM jsonb_each(NEW.tags) AS e WHERE jsonb_typeof(e.value) = 'string';
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS promise_tags_after_insert ON promises;
CREATE TRIGGER promise_tags_after_insert AFTER INSERT ON promises
FOR EACH ROW WHEN (NEW.tags IS NOT NULL AND NEW.tags <> '{}'::jsonb)
EXECUTE FUNCTION baseline_promise_tags();
"""
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
POOL_SIZE = 10  # aio.store.postgres.poolSize default


async def create_promise(request: web.Request) -> web.Response:
    try:
        new = await parse_create(request)
    except BadRequest as exc:
        return invalid(exc)
    pool: asyncpg.Pool = request.app["pool"]
    if await pool.execute(INSERT, *new.insert_args) != "INSERT 0 1":
        if await pool.fetchrow(SELECT, new.id) is not None:
            return already_exists()
        return not_completed_here(None)  # never: promises are not deleted
    return new.created()


async def complete_promise(request: web.Request) -> web.Response:
    try:
        completion = await parse_complete(request)
    except BadRequest as exc:
        return invalid(exc)
    if "\x00" in completion.id:  # text cannot hold it: no such promise
        return not_completed_here(None)
    pool: asyncpg.Pool = request.app["pool"]
    updated = await pool.fetchrow(COMPLETE, *completion.update_args)
    if updated is not None:
        return respond(201, promise_json(updated))
    stored = await pool.fetchval("SELECT state FROM promises WHERE id = $1", completion.id)
    return not_completed_here(stored)


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
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop")
    options = parser.parse_args()
    run(
        options.host,
        options.port,
        create_promise,
        complete_promise,
        open_pool(options.dsn, options.pool_size),
        options.loop,
    )


if __name__ == "__main__":
    main()
