"""Shared fixtures. `server` is a real `resonate serve` process per store backend (the
conformance suite runs against every backend); `live` is an in-process server with a manual
clock for timeout tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess

# Every store backend the conformance suite runs against.
STORE_KINDS = ["sqlite"]


@pytest.fixture(scope="session", params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process for the session; tests keep apart by unique ids."""
    process = ServerProcess(tmp_path_factory.mktemp(f"server-{store_kind}")).start()
    yield process
    process.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Start dedicated servers (e.g. to kill and restart them); all are stopped afterwards."""
    started: list[ServerProcess] = []

    class Factory(ServerProcess):
        def start(self) -> ServerProcess:
            started.append(self)
            return super().start()

    yield Factory
    for process in started:
        process.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A unique id prefix, so tests sharing a server never collide."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[object]:
    """An in-process server on a SQLite file with a ManualClock; loops run only when asked."""
    from tests.support.live import LiveServer

    server = LiveServer(tmp_path / "live.db")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
