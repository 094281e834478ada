"""Fixtures of the gRPC suite: one server per store with the gRPC listener (``grpc_server``),
its stubs, and an HTTP client of the same server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.grpc.support import Stubs, ThreadedServer
from tests.grpc.transport import GrpcLiveServer, grpc_live


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


# ---- the HTTP suites over gRPC (tests/grpc/test_*_over_grpc.py) ---------------------------------


@pytest.fixture
async def live(tmp_path: Path, store_kind: str) -> AsyncIterator[GrpcLiveServer]:
    """tests/conftest.py's ``live``, its ``client`` on the gRPC transport
    (tests/grpc/transport.py): the HTTP suites imported by the *_over_grpc modules send every
    request over gRPC."""
    async with grpc_live(tmp_path, store_kind) as server:
        yield server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the tests a module's ``NOT_OVER_GRPC`` names, each with its reason: a key is a
    test's name, or ``name[fragment]`` for the parametrized cases whose id contains
    ``fragment``."""
    for item in items:
        module = getattr(item, "module", None)
        table: dict[str, str] | None = getattr(module, "NOT_OVER_GRPC", None)
        if not table:
            continue
        name = getattr(item, "originalname", item.name)
        callspec = getattr(item, "callspec", None)
        case = callspec.id if callspec else ""
        for key, reason in table.items():
            test, _, fragment = key.partition("[")
            fragment = fragment.removesuffix("]")
            if not callable(getattr(module, test, None)):  # a stale entry must not linger
                raise pytest.UsageError(f"NOT_OVER_GRPC names no test of {module}: {key}")
            if test == name and (not fragment or fragment in case):
                item.add_marker(pytest.mark.skip(reason=f"not over gRPC: {reason}"))
                break
