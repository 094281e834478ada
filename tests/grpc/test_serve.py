"""`resonate serve` starts the gRPC listener itself (api.grpc.enable, on by default), names it
in its banner, serves HTTP and gRPC from one store, and stops it with the SIGTERM drain."""

from __future__ import annotations

import time

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from resonate.server.grpc.gen import promise_pb2, promise_pb2_grpc, promise_t_pb2
from tests.support.servers import free_port, wait_until

FUTURE = 2**62


def test_serve_runs_grpc_next_to_http_and_drains_it(server_factory, tmp_path):
    grpc_port = free_port()
    server = server_factory(tmp_path, extra_args=["--api-grpc-addr", f"127.0.0.1:{grpc_port}"])
    server.start()
    wait_until(lambda: "grpc listening on" in server.log(), time.monotonic() + 30, what="banner")
    assert f"127.0.0.1:{grpc_port}" in server.log()
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="promise.Promises")).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"promise.Promises", "task.Tasks", "grpc.health.v1.Health"} <= services
        # One store behind both protocols: created over gRPC, resolved over HTTP, read back.
        promises = promise_pb2_grpc.PromisesStub(channel)
        created = promises.CreatePromise(
            promise_pb2.CreatePromiseRequest(id="both", timeout=FUTURE), timeout=10
        )
        assert not created.noop
        resolved = httpx.patch(f"{server.url}/promises/both", json={"state": "RESOLVED"})
        assert resolved.status_code == 201
        read = promises.ReadPromise(promise_pb2.ReadPromiseRequest(id="both"), timeout=10)
        assert read.promise.state == promise_t_pb2.RESOLVED
    assert server.terminate() == 0
    # The listener is gone with the process.
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            reachable = True
        except grpc.FutureTimeoutError:
            reachable = False
    assert not reachable


def test_no_grpc_listener_when_disabled(server_factory, tmp_path):
    grpc_port = free_port()
    server = server_factory(
        tmp_path,
        extra_args=["--no-api-grpc-enable", "--api-grpc-addr", f"127.0.0.1:{grpc_port}"],
    ).start()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert "grpc listening" not in server.log()
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            reachable = True
        except grpc.FutureTimeoutError:
            reachable = False
    assert not reachable
