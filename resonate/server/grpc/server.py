"""The gRPC listener: ``start_grpc`` serves every service of resonate.server.grpc.service on
one address, with the standard health service (grpc.health.v1) and server reflection, and
answers a ``GrpcHandle`` to drain and stop it (docs/grpc.md, "Operations")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from resonate.server.grpc.service import METHODS, Dispatcher
from resonate.server.http.routes import Context, cached_schema_status
from resonate.server.metrics import Metrics

log = logging.getLogger("resonate.grpc")

DEFAULT_PORT = 50051
HEALTH_INTERVAL_SECONDS = 1.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def service_names() -> list[str]:
    """The API's services, in the order they are registered."""
    return list(METHODS)


def rpc_handlers(dispatcher: Dispatcher) -> list[grpc.GenericRpcHandler]:
    """One generic handler per service of the method table, its messages taken from the
    service's descriptor (so that a method the .proto file has and the table lacks, or the
    reverse, fails here, at start)."""
    pool = descriptor_pool.Default()
    handlers: list[grpc.GenericRpcHandler] = []
    for service_name, methods in METHODS.items():
        service = pool.FindServiceByName(service_name)
        declared = {method.name for method in service.methods}
        if declared != set(methods):
            raise RuntimeError(
                f"{service_name}: the method table has {sorted(methods)}, "
                f"the service declares {sorted(declared)}"
            )
        method_handlers = {}
        for method in service.methods:
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            method_handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                dispatcher.unary(f"/{service_name}/{method.name}", methods[method.name]),
                request_deserializer=request_class.FromString,
                response_serializer=response_class.SerializeToString,
            )
        handlers.append(grpc.method_handlers_generic_handler(service_name, method_handlers))
    return handlers


def listen_address(addr: str) -> str:
    """``host:port`` as gRPC binds it; an empty host (``:50051``) is every interface."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"api.grpc.addr: {addr!r} is not host:port")
    if host in ("", "*"):
        host = "[::]"
    return f"{host}:{port}"


async def store_ready(ctx: Context) -> bool:
    """What /readyz checks (through the same cached read): the store answers and its schema is
    current."""
    status = await cached_schema_status(ctx)
    return not isinstance(status, Exception) and status.current == status.latest


@dataclass
class GrpcHandle:
    """A running gRPC listener."""

    server: grpc.aio.Server
    host: str
    port: int
    health: health.aio.HealthServicer
    ctx: Context
    interval: float = HEALTH_INTERVAL_SECONDS
    status: int | None = None
    _watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    async def check_health(self) -> int:
        """Set every service SERVING while the store is ready and the server is not draining,
        else NOT_SERVING; the status set."""
        ready = not self.ctx.shutting_down and await store_ready(self.ctx)
        status: int = SERVING if ready else NOT_SERVING
        if status != self.status:
            for name in ("", *service_names()):
                await self.health.set(name, status)
            if self.status is not None:
                log.info(
                    "gRPC health: %s", health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                )
            self.status = status
        return status

    async def _watch(self) -> None:
        while not self.ctx.shutting_down:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):
                await self.check_health()
        # Again: a check that began before the drain may have set SERVING after it.
        await self.drain()

    def watch(self) -> None:
        """Re-check health every ``interval`` seconds, until the drain."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="grpc-health")

    async def drain(self) -> None:
        """NOT_SERVING for good, on every service: the first step of the drain (calls still
        arriving are answered UNAVAILABLE, code 50300, once ``ctx.shutting_down`` is set)."""
        self.status = NOT_SERVING
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None) -> None:
        """Drain, refuse new calls, let calls in flight finish for up to ``grace`` seconds
        (None: wait for them all), then cancel what is left and close the listener."""
        await self.drain()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.server.stop(grace)


async def start_grpc(
    ctx: Context,
    addr: str,
    *,
    max_message_bytes: int,
    metrics: Metrics | None = None,
    health_interval: float = HEALTH_INTERVAL_SECONDS,
) -> GrpcHandle:
    """Serve the gRPC API on ``addr`` (``host:port``; port 0 picks one: see ``.port``).

    ``ctx`` is the HTTP listener's context (the same store, clock, router and credentials);
    ``max_message_bytes`` the largest request message accepted, as ``api.http.maxBodySize``
    for HTTP bodies (a larger one is refused RESOURCE_EXHAUSTED). Calls count in ``metrics``
    with ``protocol="grpc"``.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a port in use is an error, never shared
        ]
    )
    server.add_generic_rpc_handlers(tuple(rpc_handlers(Dispatcher(ctx, metrics))))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names(), health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = listen_address(addr)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        await server.stop(None)
        raise OSError(f"gRPC listener: cannot bind {address}: {error}") from None
    if not port:
        await server.stop(None)
        raise OSError(f"gRPC listener: cannot bind {address}")
    handle = GrpcHandle(server, address.rpartition(":")[0], port, health_servicer, ctx)
    handle.interval = health_interval
    await handle.check_health()
    await server.start()
    handle.watch()
    log.debug("gRPC API listening on %s:%d", handle.host, port)
    return handle
