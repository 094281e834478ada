"""tests/server/test_tasks.py over gRPC, on both stores: the HTTP suite's own tests, their
``live.client`` on the gRPC transport (tests/grpc/transport.py; ``live`` in
tests/grpc/conftest.py, and the servers the suite starts itself are GrpcLiveServers too). The
few that cannot run over gRPC are skipped below, each with its reason."""

from __future__ import annotations

import pytest

import tests.server.test_tasks
from tests.grpc.transport import GrpcLiveServer
from tests.server.test_tasks import *  # noqa: F403

NOT_OVER_GRPC = {
    "test_counter_zero_or_missing_is_400[-1-]": "'1' in an integer field cannot be sent",
    "test_links_claim_heartbeat_complete": "GET task links (§4.8) have no gRPC method",
    "test_bad_links_are_400": "GET task links (§4.8) have no gRPC method",
    "test_the_api_port_stream_is_the_2026_one": "the 2026 envelope and stream are HTTP only",
    "test_server_process_delivers_and_redelivers_without_help": "a real server process over HTTP",
}


@pytest.fixture(autouse=True)
def servers_over_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests that start a LiveServer of their own get one on gRPC."""
    monkeypatch.setattr(tests.server.test_tasks, "LiveServer", GrpcLiveServer)
