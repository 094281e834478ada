"""tests/server/test_callbacks.py over gRPC, on both stores: the HTTP suite's own tests, the
blocking ``api`` client of its server process and the in-process ``live`` one on the gRPC
transport (tests/grpc/transport.py). The few that cannot run over gRPC are skipped below, each
with its reason."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.grpc.transport import SyncGrpcTransport
from tests.server.test_callbacks import *  # noqa: F403
from tests.support.servers import ServerProcess, free_port, store_server

NOT_OVER_GRPC = {
    "test_b10_invalid_recv[-5]": "a recv field cannot carry a JSON number",
    "test_b10_invalid_recv[-recv6]": "a recv field cannot carry a JSON list",
}


@pytest.fixture(scope="module")
def server(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The suite's server process on each store, with its gRPC listener."""
    port = free_port()
    workdir = tmp_path_factory.mktemp(f"callbacks-grpc-{store_kind}")
    args = ["--api-grpc-addr", f"127.0.0.1:{port}"]
    with store_server(workdir, store_kind, "resonate_callbacks_grpc", args) as process:
        process.grpc_port = port  # type: ignore[attr-defined]
        yield process


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    transport = SyncGrpcTransport(f"127.0.0.1:{server.grpc_port}")  # type: ignore[attr-defined]
    with httpx.Client(base_url=server.url, transport=transport, timeout=30) as client:
        yield client


def test_the_api_client_goes_over_grpc(api: httpx.Client, server: ServerProcess, uid: str) -> None:
    assert api.post("/promises", json={"id": uid, "timeout": 2**53}).status_code == 201
    metrics = httpx.get(f"{server.metrics_url}/metrics", timeout=5).text
    assert 'api_requests_total{protocol="grpc",status="20100",type="CreatePromise"}' in metrics
