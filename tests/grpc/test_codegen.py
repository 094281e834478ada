"""The committed gRPC modules are what scripts/gen-grpc makes of the committed .proto files."""

from __future__ import annotations

import pytest

from resonate.server.grpc import codegen


def test_generated_modules_are_current(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a development dependency) is missing")
    fresh = {path.name: path.read_text() for path in codegen.generate(tmp_path)}
    committed = {
        path.name: path.read_text()
        for path in codegen.GEN.iterdir()
        if path.suffix in (".py", ".pyi")
    }
    assert sorted(committed) == sorted(fresh), "run scripts/gen-grpc"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale generated modules {stale}: run scripts/gen-grpc"


def test_every_method_of_every_service_has_a_handler():
    """start_grpc refuses a table that differs from the services; check it without a server."""
    from resonate.server.grpc.server import rpc_handlers
    from resonate.server.grpc.service import Dispatcher

    class Ctx:
        authenticator = None
        shutting_down = False

    assert len(rpc_handlers(Dispatcher(Ctx()))) == 7  # type: ignore[arg-type]
