"""tests/server/test_schedules.py over gRPC: the HTTP suite's own tests, their ``client`` on the
gRPC transport (tests/grpc/transport.py), on both stores (the HTTP suite's ``clocked`` runs on
SQLite only; here it is parametrized like ``live``). The few that cannot run over gRPC are
skipped below, each with its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tests.server.test_schedules
from tests.grpc.transport import GrpcLiveServer, grpc_live
from tests.server.test_schedules import *  # noqa: F403
from tests.server.test_schedules import START

NO_TIMEZONE = "the Go schedule messages have no timezone field (a CRON_TZ= prefix instead)"
NOT_OVER_GRPC = {
    "test_bad_timezone_and_negative_timeout_are_400": NO_TIMEZONE,
    "test_next_run_time[-Europe/Paris-]": NO_TIMEZONE,
    "test_dst_change_in_a_zone": NO_TIMEZONE,
}


@pytest.fixture
async def clocked(tmp_path: Path, store_kind: str) -> AsyncIterator[GrpcLiveServer]:
    """The suite's ``clocked`` (the in-process server, its clock at START) over gRPC."""
    async with grpc_live(tmp_path, store_kind, clock_ms=START) as server:
        yield server


@pytest.fixture(autouse=True)
def servers_over_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests that start a LiveServer of their own get one on gRPC."""
    monkeypatch.setattr(tests.server.test_schedules, "LiveServer", GrpcLiveServer)
