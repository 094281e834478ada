"""An in-process server with a manual clock: tests move time and run loop passes themselves."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from resonate.core.clock import ManualClock
from resonate.server.app import Server
from resonate.server.config import resolve_config
from tests.support import pg

START_MS = 1_700_000_000_000


class LiveServer:
    def __init__(self, db_path: Path, *extra_args: str) -> None:
        args = [
            "--api-http-addr",
            "127.0.0.1:0",
            "--no-metrics-enable",
            "--no-api-grpc-enable",
            "--aio-poll-addr",
            "127.0.0.1:0",
            "--aio-store-sqlite-path",
            str(db_path),
            *extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
        self.config = resolve_config(args, env, db_path.parent).config
        self.clock = ManualClock(START_MS)
        self.server = Server(self.config, clock=self.clock)
        self.http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        await self.server.start(background=False)
        self.http = httpx.AsyncClient(base_url=self.server.api_url, timeout=30)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.server.stop()

    @property
    def client(self) -> httpx.AsyncClient:
        assert self.http is not None
        return self.http

    async def time_out_promises(self) -> int:
        """One pass of the eager promise-timeout loop at the clock's current time."""
        assert self.server.timeout_loop is not None
        return await self.server.timeout_loop.run_once()

    async def enqueue_tasks(self) -> int:
        """One pass of the enqueue loop (waits for the HTTP pushes it started)."""
        loop = self.server.enqueue_loop
        assert loop is not None
        count = await loop.run_once()
        await loop.drain()
        return count

    async def deliver_2026(self) -> int:
        """One pass of the 2026 protocol's loop: lapsed leases, due executes, queued unblocks
        (waits for the HTTP pushes it started)."""
        loop = self.server.delivery_2026_loop
        assert loop is not None
        count = await loop.run_once()
        await loop.drain()
        return count

    async def time_out_tasks(self) -> int:
        """One pass of the task timeout loop at the clock's current time."""
        assert self.server.task_timeout_loop is not None
        return await self.server.task_timeout_loop.run_once()

    async def time_out_locks(self) -> int:
        """One pass of the lock sweep at the clock's current time."""
        assert self.server.lock_timeout_loop is not None
        return await self.server.lock_timeout_loop.run_once()

    @property
    def poll_url(self) -> str:
        assert self.server.poll_address is not None
        return f"http://127.0.0.1:{self.server.poll_address[1]}"

    async def fire_schedules(self) -> int:
        """One pass of the schedule loop at the clock's current time."""
        assert self.server.schedule_loop is not None
        return await self.server.schedule_loop.run_once()


Live = TypeVar("Live", bound=LiveServer)


@asynccontextmanager
async def live_server(
    tmp_path: Path,
    store_kind: str,
    *extra_args: str,
    kind: type[Live] = LiveServer,  # type: ignore[assignment]
    clock_ms: int | None = None,
) -> AsyncIterator[Live]:
    """A started ``kind`` on ``store_kind`` (a fresh schema for PostgreSQL, dropped after), its
    clock at ``clock_ms`` when given."""
    dsn = await pg.create_schema() if store_kind == "postgres" else None
    server = kind(tmp_path / "live.db", *(pg.store_args(dsn) if dsn else ()), *extra_args)
    if clock_ms is not None:
        server.clock.set(clock_ms)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        if dsn:
            await pg.drop_schema(dsn)
