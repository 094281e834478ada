"""A server with the gRPC listener next to its HTTP one, run by a thread of its own, so that
tests drive it with the generated (blocking) stubs and with httpx, as clients of a real server.

The Server starts its gRPC listener itself (``api.grpc.enable``, on a free port here) and
stops it as part of its drain."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from resonate.server.app import Server
from resonate.server.config import resolve_config
from resonate.server.grpc.gen import (
    lock_pb2_grpc,
    promise_pb2_grpc,
    resonate_pb2_grpc,
    schedule_pb2_grpc,
    task_pb2_grpc,
)
from resonate.server.grpc.server import GrpcHandle
from resonate.server.grpc.status import ERROR_CODE_KEY
from tests.support import pg

T = TypeVar("T")


@dataclass
class Stubs:
    """The generated client stubs of every service, on one channel."""

    channel: grpc.Channel

    def __post_init__(self) -> None:
        self.promises = promise_pb2_grpc.PromisesStub(self.channel)
        self.schedules = schedule_pb2_grpc.SchedulesStub(self.channel)
        self.locks = lock_pb2_grpc.LocksStub(self.channel)
        self.tasks = task_pb2_grpc.TasksStub(self.channel)
        self.ext_promises = resonate_pb2_grpc.PromisesStub(self.channel)
        self.ext_tasks = resonate_pb2_grpc.TasksStub(self.channel)
        self.ext_locks = resonate_pb2_grpc.LocksStub(self.channel)


class ThreadedServer:
    """A Server (system clock, background loops running) and its gRPC listener, on an event
    loop in another thread."""

    def __init__(
        self,
        workdir: Path,
        store_kind: str,
        extra_args: list[str] | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> None:
        self.workdir = workdir
        self.store_kind = store_kind
        self.extra_args = extra_args or []
        self.loop = loop_factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Server | None = None
        self.grpc: GrpcHandle | None = None
        self.dsn: str | None = None
        self.channel: grpc.Channel | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> None:
        args = [
            "--api-http-addr",
            "127.0.0.1:0",
            "--no-metrics-enable",
            "--aio-poll-addr",
            "127.0.0.1:0",
            "--api-grpc-addr",
            "127.0.0.1:0",
            "--aio-store-sqlite-path",
            str(self.workdir / "grpc.db"),
            *self.extra_args,
        ]
        if self.store_kind == "postgres":
            self.dsn = await pg.create_schema("resonate_grpc")
            args += pg.store_args(self.dsn)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
        config = resolve_config(args, env, self.workdir).config
        self.server = Server(config)
        await self.server.start(background=True)
        self.grpc = self.server.grpc
        assert self.grpc is not None, "api.grpc.enable is on by default"
        self.grpc.interval = 0.1  # health follows the store within a tenth of a second

    def start(self) -> ThreadedServer:
        self.thread.start()
        self.run(self._start())
        assert self.grpc is not None
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc.port}")
        return self

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.dsn:
            await pg.drop_schema(self.dsn)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def stubs(self) -> Stubs:
        assert self.channel is not None
        return Stubs(self.channel)

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return self.server.api_url


def error_code(error: grpc.RpcError) -> int | None:
    """The 5-digit code of a failed call (its ``resonate-error-code`` trailer)."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == ERROR_CODE_KEY:
            return int(value)
    return None
