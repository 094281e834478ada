"""The running server: store, listeners, background loops, and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from resonate import __version__
from resonate.core.clock import Clock, DebugClock, SystemClock
from resonate.core.routing import Router, Sender
from resonate.server import retention
from resonate.server.config import Config, ConfigError
from resonate.server.config.values import format_address
from resonate.server.delivery.base import Plugin
from resonate.server.delivery.poll import PollHub, create_poll_app
from resonate.server.delivery.push import HttpPush
from resonate.server.envelope.debug import Debug
from resonate.server.http.app import LANE, create_api_app, create_metrics_app
from resonate.server.http.auth import JwtVerifier, KeyLoadError, build_verifier
from resonate.server.http.connections import (
    LISTEN_BACKLOG,
    ConnectionLimits,
    LimitedAppRunner,
    LimitedServer,
    connections_per_listener,
    raise_open_files_limit,
)
from resonate.server.http.routes import Context
from resonate.server.loops import (
    Delivery2026Loop,
    EnqueueLoop,
    LockTimeoutLoop,
    Loop,
    PromiseTimeoutLoop,
    RetentionLoop,
    ScheduleLoop,
    TaskTimeoutLoop,
)
from resonate.server.metrics import Metrics
from resonate.store.base import Event, Store
from resonate.store.sqlite.store import SqliteStore

if TYPE_CHECKING:
    from resonate.server.grpc.server import GrpcHandle
    from resonate.store.postgres.store import PostgresStore

log = logging.getLogger("resonate")


def open_store(
    config: Config,
    metrics: Metrics | None = None,
    on_events: Callable[[Sequence[Event]], None] | None = None,
) -> SqliteStore | PostgresStore:
    """The store the configuration names (not yet opened)."""
    if config.store_kind == "postgres":
        # Imported here: asyncpg loads only when PostgreSQL is configured.
        from resonate.store.postgres.connection import postgres_dsn_and_options
        from resonate.store.postgres.store import PostgresStore

        options, description = postgres_dsn_and_options(config)
        return PostgresStore(
            connect_options=options,
            description=description,
            pool_size=config["aio.store.postgres.poolSize"],
            tx_timeout_ms=config["aio.store.postgres.txTimeout"],
            on_batch=metrics.observe_batch if metrics else None,
            on_events=on_events or (metrics.observe_events if metrics else None),
        )
    return SqliteStore(
        config["aio.store.sqlite.path"],
        synchronous=config["aio.store.sqlite.synchronous"],
        tx_timeout_ms=config["aio.store.sqlite.txTimeout"],
        batch_size=config["system.submissionBatchSize"],
        on_batch=metrics.observe_batch if metrics else None,
        on_events=on_events or (metrics.observe_events if metrics else None),
    )


def load_jwt_verifier(config: Config) -> JwtVerifier | None:
    """The JWT verifier of ``api.auth.*``, None when JWT bearer auth is off; a one-line
    :class:`ConfigError` naming the key file (never the key text) when the key is unusable."""
    try:
        return build_verifier(config)
    except KeyLoadError as error:
        raise ConfigError(f"api.auth.publicKey: {error}") from None


# Task events that leave a task INIT and due at once: the enqueue loop must run (§4.3).
WAKES_ENQUEUE = frozenset({"created", "dropped", "reissued"})


class Server:
    """One server instance. ``start`` opens the store and the listeners; ``stop`` drains."""

    def __init__(self, config: Config, *, clock: Clock | None = None, debug: bool = False) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        # Debug mode (`resonate dev`): the 2026 debug kinds may move this clock (P7).
        self.debug_clock = DebugClock(self.clock) if debug else None
        if self.debug_clock is not None:
            self.clock = self.debug_clock
        self.metrics = Metrics(config.store_kind)
        self.store: Store | None = None
        self.context: Context | None = None
        self.timeout_loop: PromiseTimeoutLoop | None = None
        self.enqueue_loop: EnqueueLoop | None = None
        self.task_timeout_loop: TaskTimeoutLoop | None = None
        self.lock_timeout_loop: LockTimeoutLoop | None = None
        self.schedule_loop: ScheduleLoop | None = None
        self.delivery_2026_loop: Delivery2026Loop | None = None
        self.retention_loop: RetentionLoop | None = None
        self.poll: PollHub | None = None
        self.poll_2026: PollHub | None = None
        self.push: HttpPush | None = None
        self._runners: list[web.AppRunner] = []
        self.listeners: dict[str, LimitedServer] = {}  # "api", "poll", "metrics"
        self._tasks: list[asyncio.Task[Any]] = []
        self.api_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.poll_address: tuple[str, int] | None = None
        self.grpc: GrpcHandle | None = None
        self.grpc_address: tuple[str, int] | None = None

    def _on_events(self, events: Sequence[Event]) -> None:
        self.metrics.observe_events(events)
        if self.enqueue_loop is not None and any(
            event.kind == "task" and event.name in WAKES_ENQUEUE for event in events
        ):
            self.enqueue_loop.wake()
        if self.delivery_2026_loop is not None and any(
            event.kind in ("task_2026", "unblock_2026") for event in events
        ):
            self.delivery_2026_loop.wake()

    def _plugins(self) -> dict[str, Plugin]:
        config = self.config
        plugins: dict[str, Plugin] = {}
        if config["aio.poll.enable"]:
            self.poll = PollHub(
                buffer_size=config["aio.poll.bufferSize"],
                max_connections=config["aio.poll.maxConnections"],
                keep_alive_ms=config["aio.poll.keepAlive"],
                disconnect_after_ms=config["aio.poll.disconnectAfter"],
                ttr_ms=config["aio.poll.ttr"],
                ttc_ms=config["aio.poll.ttc"],
                metrics=self.metrics,
            )
            plugins["poll"] = self.poll
        if config["aio.http.enable"]:
            self.push = HttpPush(
                timeout_ms=config["aio.http.timeout"],
                conn_timeout_ms=config["aio.http.connTimeout"],
                ttr_ms=config["aio.http.ttr"],
                ttc_ms=config["aio.http.ttc"],
                concurrency=config["aio.http.concurrency"],
            )
            plugins["http"] = self.push
        return plugins

    @property
    def loops(self) -> list[Loop]:
        loops: list[Loop | None] = [
            self.timeout_loop,
            self.enqueue_loop,
            self.task_timeout_loop,
            self.lock_timeout_loop,
            self.schedule_loop,
            self.delivery_2026_loop,
            self.retention_loop,
        ]
        return [loop for loop in loops if loop is not None]

    async def start(self, *, background: bool = True) -> None:
        config = self.config
        jwt_verifier = load_jwt_verifier(config)  # before the store: a bad key is a config error
        store = open_store(config, self.metrics, self._on_events)
        await store.open()
        self.store = store
        plugins = self._plugins()
        # The 2026 protocol's stream lives on the API listener (P2), with its own registry (P9).
        self.poll_2026 = PollHub(
            buffer_size=config["aio.poll.bufferSize"],
            max_connections=config["aio.poll.maxConnections"],
            keep_alive_ms=config["aio.poll.keepAlive"],
            metrics=self.metrics,
            name="poll_2026",
            shared_ids=True,
        )
        base_url = config.system_url()
        self.context = Context(
            store=store,
            clock=self.clock,
            promise_batch_size=config["system.promiseBatchSize"],
            purge_batch_size=config["system.retention.batchSize"],
            basic_auth=dict(config["api.http.auth"]),
            jwt=jwt_verifier,
            router=Router(config["aio.router.sources"]),
            base_url=base_url,
            task_frequency=config["api.http.taskFrequency"],
            poll=self.poll,
            poll_2026=self.poll_2026,
            started_at=self.clock.now_ms(),
        )
        loop_options: dict[str, Any] = {
            "signal_timeout_ms": config["system.signalTimeout"],
            "metrics": self.metrics,
        }
        self.timeout_loop = PromiseTimeoutLoop(
            store,
            self.clock,
            batch_size=config["system.promiseBatchSize"],
            max_iterations=config["system.promiseMaxIterations"],
            **loop_options,
        )
        task_options = {
            "batch_size": config["system.taskBatchSize"],
            "max_iterations": config["system.taskMaxIterations"],
            **loop_options,
        }
        self.enqueue_loop = EnqueueLoop(
            store,
            self.clock,
            sender=Sender(config["aio.sender.targets"], enabled=plugins),
            plugins=plugins,
            base_url=base_url,
            completion_batch_size=config["system.completionBatchSize"],
            **task_options,
        )
        self.task_timeout_loop = TaskTimeoutLoop(store, self.clock, **task_options)
        self.delivery_2026_loop = Delivery2026Loop(
            store,
            self.clock,
            hub=self.poll_2026,
            push=self.push,
            base_url=base_url,
            retry_timeout_ms=config["tasks.retryTimeout"],
            **task_options,
        )
        self.lock_timeout_loop = LockTimeoutLoop(store, self.clock, **loop_options)
        self.schedule_loop = ScheduleLoop(
            store,
            self.clock,
            router=self.context.router,
            max_catch_up=config["system.scheduleMaxCatchUp"],
            batch_size=config["system.scheduleBatchSize"],
            max_iterations=config["system.scheduleMaxIterations"],
            **loop_options,
        )
        # Always there: with no retention set it only measures the oldest completed records'
        # age (a gauge), once a minute.
        self.retention_loop = RetentionLoop(
            store,
            self.clock,
            promises=retention.promise_retention(config["system.retention.promises"]),
            tasks_ms=config["system.retention.tasks"],
            batch_size=config["system.retention.batchSize"],
            **loop_options,
        )
        self.context.loops = self.loops
        self.context.metrics = self.metrics
        self.context.sender = self.enqueue_loop.sender
        if self.debug_clock is not None:
            self.context.debug = Debug(self.debug_clock, self.loops)
        drain_seconds = self.config["api.http.timeout"] / 1000
        limits = self._connection_limits()
        api = create_api_app(
            self.context,
            max_body_size=self.config["api.http.maxBodySize"],
            metrics=self.metrics,
            header_timeout_ms=self.config["api.http.headerTimeout"],
            error_docs_url=self.config["api.errorDocsUrl"],
            cors_allow_origins=tuple(self.config["api.http.cors.allowOrigins"]),
            lane=self.config["api.http.lane"],
        )
        api_limits = replace(limits, extra_headers={"Resonate-Version": __version__})
        self.api_address = await self._listen(
            "api", api, self.config["api.http.addr"], drain_seconds, api_limits
        )
        # Links name the port the OS picked when the configured one is 0.
        base_url = config.system_url(bound_port=self.api_address[1])
        self.context.base_url = self.enqueue_loop.base_url = base_url
        self.delivery_2026_loop.base_url = base_url
        if self.config["api.grpc.enable"]:
            # Imported here: a server without gRPC does not load grpcio.
            from resonate.server.grpc.server import start_grpc

            self.grpc = await start_grpc(
                self.context,
                format_address(self.config["api.grpc.addr"]),
                max_message_bytes=self.config["api.http.maxBodySize"],
                metrics=self.metrics,
            )
            self.grpc_address = (self.grpc.host, self.grpc.port)
        if self.config["metrics.enable"]:
            self.metrics_address = await self._listen(
                "metrics",
                create_metrics_app(self.metrics),
                self.config["metrics.addr"],
                1.0,
                limits,
            )
        if self.poll is not None:
            # At the cap a poll connection is closed, never answered 503: SDK pollers stop for
            # good on a non-2xx answer but reconnect after a refused connection (§5.1).
            self.poll_address = await self._listen(
                "poll",
                create_poll_app(
                    self.poll,
                    dict(config["aio.poll.auth"]),
                    config["api.errorDocsUrl"],
                    tuple(config["aio.poll.cors.allowOrigins"]),
                    jwt=jwt_verifier,
                ),
                config["aio.poll.addr"],
                1.0,
                replace(limits, answer_when_full=False),
            )
        if background:
            for loop in self.loops:
                self._tasks.append(asyncio.create_task(loop.run()))

    def _connection_limits(self) -> ConnectionLimits:
        """The limits of every listener; the open-files limit raised first, since every
        connection holds a descriptor (docs/server.md, "Limits")."""
        config = self.config
        configured = config["api.http.maxConnections"]
        listeners = 1 + bool(config["metrics.enable"]) + bool(config["aio.poll.enable"])
        open_files = raise_open_files_limit()
        per_listener = connections_per_listener(
            configured, listeners, open_files.now if open_files else None
        )
        if open_files is not None:
            raised = (
                f" (raised from {open_files.before})" if open_files.now != open_files.before else ""
            )
            log.info(
                "open files: limit %d%s; at most %d connections per listener",
                open_files.now,
                raised,
                per_listener,
            )
        if per_listener < configured:
            log.warning(
                "api.http.maxConnections %d lowered to %d: %d listeners could otherwise run out "
                "of the %d file descriptors this process may open",
                configured,
                per_listener,
                listeners,
                open_files.now if open_files else 0,
            )
        return ConnectionLimits(
            header_timeout=config["api.http.headerTimeout"] / 1000,
            idle_timeout=config["api.http.idleTimeout"] / 1000,
            max_connections=per_listener,
            error_docs_url=config["api.errorDocsUrl"],
        )

    async def _listen(
        self, name: str, app: web.Application, address: Any, drain: float, limits: ConnectionLimits
    ) -> tuple[str, int]:
        runner = LimitedAppRunner(
            app, limits=limits, lane=app.get(LANE), shutdown_timeout=drain, access_log=None
        )
        await runner.setup()
        host = address.host or None
        site = web.TCPSite(runner, host, address.port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runners.append(runner)
        if runner.limited_server is not None:
            self.listeners[name] = runner.limited_server
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
        """Graceful shutdown (http-api.md §12; docs/operations.md, "Drain").

        1. ``/readyz`` answers 503 from now on; every listener stops accepting connections.
        2. Every SSE stream ends at once with a ``: shutting down`` comment and the terminating
           chunk. Meanwhile in-flight requests finish, for up to ``api.http.timeout``; a request
           arriving on a connection already open is answered 503 (50300), except ``/healthz``.
        3. The connections close, the background loops end after their current pass, in-flight
           HTTP pushes are abandoned (their tasks stay INIT and are retried after a restart).
        4. The store closes: queued group-commit batches commit first, then (SQLite) the WAL is
           checkpointed.
        """
        if self.context is not None:
            self.context.shutting_down = True
        grpc_handle, self.grpc = self.grpc, None
        if grpc_handle is not None:
            await grpc_handle.drain()  # health NOT_SERVING at once
        for loop in self.loops:
            loop.stop()  # each ends after its current pass, while the requests drain
        runners = list(self._runners)
        self._runners.clear()
        for runner in runners:
            for site in list(runner.sites):
                await site.stop()  # no new connections on any listener
        drain_seconds = self.config["api.http.timeout"] / 1000
        deadline = asyncio.get_running_loop().time() + drain_seconds
        hubs = [hub for hub in (self.poll, self.poll_2026) if hub is not None]
        grpc_stop = [grpc_handle.stop(drain_seconds)] if grpc_handle is not None else []
        await asyncio.gather(
            *(hub.close() for hub in hubs), self._finish_in_flight(deadline), *grpc_stop
        )
        remaining = deadline - asyncio.get_running_loop().time()
        for runner in runners:
            # What is still in flight past the limit is cancelled by the cleanup (aiohttp reads
            # this attribute there; the limit counts from the start of the drain).
            runner._shutdown_timeout = max(remaining, 0.1)
        await asyncio.gather(*(runner.cleanup() for runner in runners))
        for task in self._tasks:
            try:
                await task
            except Exception as error:
                log.warning("background loop ended with an error: %s", error)
        self._tasks.clear()
        if self.enqueue_loop is not None:
            await self.enqueue_loop.close()
        if self.delivery_2026_loop is not None:
            await self.delivery_2026_loop.close()
        if self.push is not None:
            await self.push.close()
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def _finish_in_flight(self, deadline: float) -> None:
        """Wait until no connection serves a request, or ``deadline`` (loop time). A connection
        serving one is told to read nothing after it (a body still arriving fails at once,
        answered 503); idle connections stay open meanwhile, so that a request on one (e.g. a
        readiness probe) gets its 503 instead of a closed connection."""
        loop = asyncio.get_running_loop()
        listeners = list(self.listeners.values())

        def serving() -> list[Any]:
            return [
                connection
                for server in listeners
                for connection in server.connections
                if connection not in server.idle
            ]

        closed: set[Any] = set()
        while loop.time() < deadline:
            busy = serving()
            if not busy:
                return
            for connection in busy:
                if connection not in closed:
                    closed.add(connection)
                    connection.close()
            await asyncio.sleep(0.02)


# How a second signal ends the process: 128 + the signal number, as a shell reports it.
SECOND_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


async def serve_until_signalled(server: Server) -> int:
    """Run until SIGINT/SIGTERM, drain, return 0. A second signal during the drain exits at
    once with 130 (SIGINT) or 143 (SIGTERM).

    Exiting without draining loses no acknowledged write: a 2xx is sent only after its
    transaction committed (SQLite group commit answers a batch after its COMMIT, with
    ``synchronous`` FULL by default; PostgreSQL after its COMMIT). A write not yet committed
    was not acknowledged; its client sees the connection close and may retry. SQLite replays
    its WAL at the next start, as after a crash; nothing else needs the drain to be durable."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            code = SECOND_SIGNAL_EXIT.get(sig, 128 + int(sig))
            log.warning(
                "second signal (%s): exiting at once with %d, without draining", sig.name, code
            )
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(code)
        log.info(
            "%s: shutting down; draining in-flight requests for up to %gs "
            "(a second signal exits at once)",
            sig.name,
            server.config["api.http.timeout"] / 1000,
        )
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    await stop.wait()
    await server.stop()
    log.info("stopped")
    return 0
