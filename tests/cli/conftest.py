"""Fixtures for the CLI tests."""

from __future__ import annotations

import socket

import pytest

from tests.cli.cli_runner import CliResult, RunCli, invoke
from tests.support.servers import ServerProcess

_CLIENT_ENVIRONMENT = (
    "RESONATE_SERVER",
    "RESONATE_TOKEN",
    "RESONATE_USERNAME",
    "RESONATE_PASSWORD",
    "NO_COLOR",
)


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Run the CLI with none of the client's environment variables inherited."""
    for name in _CLIENT_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return invoke


@pytest.fixture
def closed_port_url() -> str:
    """The URL of a local port on which nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def cli(run_cli: RunCli, server: ServerProcess) -> RunCli:
    """`resonate -S <the session server> ARGS…`."""

    def run(*args: str, **options: object) -> CliResult:
        return run_cli("-S", server.url, *args, **options)

    return run
