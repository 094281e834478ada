"""Shared fixtures. `server` is a real `resonate serve` process per store backend (the
conformance suite runs against every backend); `live` is an in-process server with a manual
clock for timeout tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import pg
from tests.support.servers import ServerProcess, store_server

# Every store backend the conformance suite runs against.
STORE_KINDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not pg.DSN:
        pytest.skip(pg.SKIP_REASON)
    return str(request.param)


@pytest.fixture(scope="session")
def server(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process per store for the session; tests keep apart by unique ids."""
    workdir = tmp_path_factory.mktemp(f"server-{store_kind}")
    with store_server(workdir, store_kind, "resonate_session") as process:
        yield process


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`sqlite_only` tests look inside the SQLite file; they skip their PostgreSQL run."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("store_kind") if callspec else None
        if kind == "postgres" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="reads the SQLite file directly"))


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: object) -> None:
    if not pg.DSN:
        terminalreporter.write_line(pg.SKIP_REASON, yellow=True)  # type: ignore[attr-defined]


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
async def live(tmp_path: Path, store_kind: str) -> AsyncIterator[object]:
    """An in-process server with a ManualClock on each store (a fresh schema for
    PostgreSQL); loops run only when asked."""
    from tests.support.live import live_server

    async with live_server(tmp_path, store_kind) as server:
        yield server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RESONATE_* variable, and the working directory a fresh temporary one."""
    for name in list(os.environ):
        if name.startswith("RESONATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
