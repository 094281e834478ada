"""Operations of the gRPC listener: grpc.health.v1 (SERVING; NOT_SERVING while the store is
unavailable and from the start of the drain), server reflection, the message size limit, the
drain's answers and the request metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from resonate.server.grpc.gen import promise_pb2, promise_t_pb2
from resonate.server.grpc.server import listen_address, service_names, start_grpc
from tests.grpc.support import ThreadedServer, error_code

FUTURE = 4_102_444_800_000
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service)).status


def eventually(predicate, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_health_serving_for_every_service(grpc_server):
    channel = grpc_server.channel
    for name in ("", *service_names()):
        assert check(channel, name) == SERVING, name
    with pytest.raises(grpc.RpcError) as unknown:
        check(channel, "no.Such")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(grpc_server):
    database = ProtoReflectionDescriptorDatabase(grpc_server.channel)
    services = set(database.get_services())
    assert set(service_names()) <= services
    assert "grpc.health.v1.Health" in services
    pool = DescriptorPool(database)
    promises = pool.FindServiceByName("promise.Promises")
    assert [m.name for m in promises.methods] == [
        "ReadPromise",
        "SearchPromises",
        "CreatePromise",
        "CreatePromiseAndTask",
        "ResolvePromise",
        "RejectPromise",
        "CancelPromise",
        "CreateCallback",
        "CreateSubscription",
    ]
    request = pool.FindMessageTypeByName("promise.CreatePromiseRequest")
    assert {f.name: f.number for f in request.fields} == {
        "id": 1,
        "idempotencyKey": 2,
        "strict": 3,
        "param": 4,
        "timeout": 5,
        "tags": 6,
        "requestId": 7,
    }


def test_calls_count_in_the_request_metrics(grpc_server, stubs, uid):
    stubs.promises.CreatePromise(promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE))
    with pytest.raises(grpc.RpcError):
        stubs.promises.CreatePromise(promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE))
    series = grpc_server.server.metrics.requests
    assert series.api_requests[("CreatePromise", "grpc", "20100")][0] >= 1
    assert series.api_requests[("CreatePromise", "grpc", "40900")][0] >= 1
    assert series.api_in_flight[("CreatePromise", "grpc")][0] == 0


def test_request_id_is_echoed(stubs, uid):
    _, call = stubs.promises.CreatePromise.with_call(
        promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE, requestId="rid-1")
    )
    assert dict(call.trailing_metadata())["request-id"] == "rid-1"
    _, call = stubs.promises.ReadPromise.with_call(
        promise_pb2.ReadPromiseRequest(id=uid), metadata=(("request-id", "rid-2"),)
    )
    assert dict(call.trailing_metadata())["request-id"] == "rid-2"


@pytest.fixture
def small(tmp_path) -> Iterator[ThreadedServer]:
    """A server of its own (SQLite), with a 4 KiB body limit."""
    server = ThreadedServer(tmp_path, "sqlite", ["--api-http-max-body-size", "4096"]).start()
    try:
        yield server
    finally:
        server.stop()


def test_messages_over_the_body_limit_are_refused(small, uid):
    stubs = small.stubs
    request = promise_pb2.CreatePromiseRequest(
        id=uid, timeout=FUTURE, param=promise_t_pb2.Value(data=b"x" * 5000)
    )
    with pytest.raises(grpc.RpcError) as refused:
        stubs.promises.CreatePromise(request)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    request.param.data = b"x" * 1000
    assert not stubs.promises.CreatePromise(request).noop


def test_not_serving_while_the_store_is_unavailable(small):
    store = small.server.store
    real = store.schema_status

    async def unavailable():
        raise ConnectionError("store down")

    store.schema_status = unavailable
    try:
        eventually(lambda: check(small.channel) == NOT_SERVING)
        assert check(small.channel, "promise.Promises") == NOT_SERVING
    finally:
        store.schema_status = real
    eventually(lambda: check(small.channel) == SERVING)


def test_the_drain_answers_unavailable_and_not_serving(small, uid):
    stubs = small.stubs
    stubs.promises.CreatePromise(promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE))
    small.server.context.shutting_down = True  # what Server.stop does first
    eventually(lambda: check(small.channel) == NOT_SERVING)
    with pytest.raises(grpc.RpcError) as refused:
        stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=uid))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_code(refused.value) == 50300


def test_stop_lets_calls_in_flight_finish_and_refuses_new_ones(tmp_path, uid):
    server = ThreadedServer(tmp_path, "sqlite").start()
    stubs = server.stubs
    stubs.promises.CreatePromise(promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE))
    store = server.server.store
    real_run = store.run
    entered = threading.Event()

    async def slow_run(*args, **kwargs):
        entered.set()
        await asyncio.sleep(0.5)
        return await real_run(*args, **kwargs)

    store.run = slow_run
    answers: list[object] = []
    caller = threading.Thread(
        target=lambda: answers.append(
            stubs.promises.ResolvePromise(promise_pb2.ResolvePromiseRequest(id=uid))
        )
    )
    caller.start()
    assert entered.wait(5)
    assert server.grpc is not None
    server.run(server.grpc.stop(5))  # the drain's last step: in flight finishes, then closed
    caller.join(10)
    assert len(answers) == 1 and answers[0].promise.state == promise_t_pb2.RESOLVED
    with pytest.raises(grpc.RpcError) as refused:
        stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=uid), timeout=2)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    store.run = real_run
    server.stop()


def test_the_listener_runs_on_uvloop(tmp_path, uid):
    uvloop = pytest.importorskip("uvloop")
    server = ThreadedServer(tmp_path, "sqlite", loop_factory=uvloop.new_event_loop).start()
    try:
        stubs = server.stubs
        created = stubs.promises.CreatePromise(
            promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE)
        )
        assert not created.noop
        assert check(server.channel) == SERVING
    finally:
        server.stop()


def test_a_port_in_use_is_an_error(grpc_server):
    taken = f"127.0.0.1:{grpc_server.grpc.port}"
    with pytest.raises(OSError, match="cannot bind"):
        grpc_server.run(start_grpc(grpc_server.server.context, taken, max_message_bytes=1024))


@pytest.mark.parametrize(
    ("configured", "bound"),
    [(":50051", "[::]:50051"), ("0.0.0.0:1", "0.0.0.0:1"), ("[::1]:2", "[::1]:2")],
)
def test_listen_address(configured, bound):
    assert listen_address(configured) == bound
