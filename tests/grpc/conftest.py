"""Fixtures of the gRPC suite: one server per store with the gRPC listener (``grpc_server``),
its stubs, and an HTTP client of the same server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.grpc.support import Stubs, ThreadedServer


@pytest.fixture(scope="session")
def grpc_server(
    store_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedServer]:
    server = ThreadedServer(tmp_path_factory.mktemp(f"grpc-{store_kind}"), store_kind).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stubs(grpc_server: ThreadedServer) -> Stubs:
    return grpc_server.stubs


@pytest.fixture
def http(grpc_server: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=grpc_server.api_url, timeout=30) as client:
        yield client
