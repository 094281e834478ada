"""The running server: store, listeners, background loops, and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from resonate.core.clock import Clock, SystemClock
from resonate.server.config import Config
from resonate.server.http.app import create_api_app, create_metrics_app
from resonate.server.http.routes import Context
from resonate.server.loops import PromiseTimeoutLoop
from resonate.server.metrics import Metrics
from resonate.store.base import Store, StoreUnavailable
from resonate.store.sqlite.store import SqliteStore

log = logging.getLogger("resonate")


def open_store(config: Config, metrics: Metrics | None = None) -> SqliteStore:
    """The store the configuration names (not yet opened)."""
    if config.store_kind == "postgres":
        raise StoreUnavailable("this build has no PostgreSQL store; use the SQLite store")
    return SqliteStore(
        config["aio.store.sqlite.path"],
        synchronous=config["aio.store.sqlite.synchronous"],
        tx_timeout_ms=config["aio.store.sqlite.txTimeout"],
        batch_size=config["system.submissionBatchSize"],
        on_batch=metrics.observe_batch if metrics else None,
        on_events=metrics.observe_events if metrics else None,
    )


class Server:
    """One server instance. ``start`` opens the store and the listeners; ``stop`` drains."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.metrics = Metrics(config.store_kind)
        self.store: Store | None = None
        self.context: Context | None = None
        self.timeout_loop: PromiseTimeoutLoop | None = None
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.api_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None

    async def start(self, *, background: bool = True) -> None:
        store = open_store(self.config, self.metrics)
        await store.open()
        self.store = store
        self.context = Context(
            store=store,
            clock=self.clock,
            promise_batch_size=self.config["system.promiseBatchSize"],
            basic_auth=dict(self.config["api.http.auth"]),
        )
        self.timeout_loop = PromiseTimeoutLoop(
            store,
            self.clock,
            batch_size=self.config["system.promiseBatchSize"],
            max_iterations=self.config["system.promiseMaxIterations"],
            signal_timeout_ms=self.config["system.signalTimeout"],
            metrics=self.metrics,
        )
        drain_seconds = self.config["api.http.timeout"] / 1000
        api = create_api_app(
            self.context, max_body_size=self.config["api.http.maxBodySize"], metrics=self.metrics
        )
        self.api_address = await self._listen(api, self.config["api.http.addr"], drain_seconds)
        if self.config["metrics.enable"]:
            self.metrics_address = await self._listen(
                create_metrics_app(self.metrics), self.config["metrics.addr"], 1.0
            )
        if background:
            self._tasks.append(asyncio.create_task(self.timeout_loop.run()))

    async def _listen(self, app: web.Application, address: Any, drain: float) -> tuple[str, int]:
        runner = web.AppRunner(app, shutdown_timeout=drain, access_log=None)
        await runner.setup()
        host = address.host or None
        site = web.TCPSite(runner, host, address.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runners.append(runner)
        sockets = [s for s in runner.addresses if isinstance(s, tuple)]
        bound_host, bound_port = sockets[0][0], sockets[0][1]
        return bound_host, bound_port

    @property
    def api_url(self) -> str:
        assert self.api_address is not None
        host, port = self.api_address
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        """Graceful shutdown (http-api.md §12)."""
        if self.context is not None:
            self.context.shutting_down = True
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.timeout_loop is not None:
            self.timeout_loop.stop()
        for task in self._tasks:
            try:
                await task
            except Exception as error:
                log.warning("background loop ended with an error: %s", error)
        self._tasks.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None


async def serve_until_signalled(server: Server) -> int:
    """Run until SIGINT/SIGTERM, drain, return 0; a second signal exits at once with 1."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting without draining")
            import os

            os._exit(1)
        log.info("shutting down: draining in-flight requests")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    await server.stop()
    log.info("stopped")
    return 0
