"""Fresh PostgreSQL databases for tests, next to the one RESONATE_TEST_POSTGRES_DSN names."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid

import asyncpg

DSN = os.environ.get("RESONATE_TEST_POSTGRES_DSN", "")
SKIP_REASON = (
    "PostgreSQL half skipped: RESONATE_TEST_POSTGRES_DSN is not set "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test; .ci/run sets it)"
)


def dsn_for(database: str, dsn: str = DSN) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(dsn)._replace(path="/" + database))


async def _admin(statement: str) -> None:
    """Run one statement on a connection of its own to the DSN's database."""
    admin = await asyncpg.connect(DSN)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def create_database(prefix: str = "resonate_test") -> str:
    """A new empty database; its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return dsn_for(name)


async def drop_database(dsn: str) -> None:
    name = urllib.parse.urlsplit(dsn).path.lstrip("/")
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database_sync(prefix: str = "resonate_test") -> str:
    return asyncio.run(create_database(prefix))


def drop_database_sync(dsn: str) -> None:
    asyncio.run(drop_database(dsn))


def store_args(dsn: str) -> list[str]:
    """`resonate serve` flags for a PostgreSQL store."""
    return ["--aio-store-postgres-enable", "--aio-store-postgres-url", dsn]


async def create_schema(prefix: str = "resonate_test") -> str:
    """A new empty schema in the DSN's database; a DSN whose search_path is that schema.
    (Much cheaper than a database: a few ms instead of a few hundred.)"""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE SCHEMA "{name}"')
    parts = urllib.parse.urlsplit(DSN)
    query = urllib.parse.urlencode({"search_path": name})
    return urllib.parse.urlunsplit(parts._replace(query=query))


async def drop_schema(dsn: str) -> None:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(dsn).query))
    await _admin(f'DROP SCHEMA IF EXISTS "{query["search_path"]}" CASCADE')
