"""The `uvloop` option: `resonate serve` runs on uvloop where it is installed, on asyncio's own
loop when turned off (flag, environment variable or file), and says which in its banner, read
from the loop it actually runs on (docs/configuration.md)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from resonate.cli.server_cmds import describe_event_loop, event_loop_factory
from tests.support.servers import ServerProcess

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def banner_loop(server: ServerProcess) -> str:
    (line,) = [line for line in server.log().splitlines() if "resonate: event loop: " in line]
    return line.partition("resonate: event loop: ")[2].strip()


def create_and_complete(server: ServerProcess) -> None:
    """The server answers the benchmark's pair on this loop."""
    created = httpx.post(
        server.url + "/promises",
        json={"id": "loop-1", "timeout": 2**62, "param": {"data": "aGk="}},
    )
    assert created.status_code == 201, created.text
    completed = httpx.patch(
        server.url + "/promises/loop-1", json={"state": "RESOLVED", "value": {"data": "b2s="}}
    )
    assert completed.status_code == 201, completed.text
    assert completed.json()["state"] == "RESOLVED"


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")
def test_serve_runs_on_uvloop_by_default(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    import uvloop

    server = server_factory(tmp_path).start()
    create_and_complete(server)
    assert banner_loop(server) == f"uvloop {uvloop.__version__}"
    assert server.terminate() == 0


@pytest.mark.parametrize(
    ("extra_args", "env", "config_file"),
    [
        pytest.param(["--no-uvloop"], {}, None, id="flag"),
        pytest.param([], {"RESONATE_UVLOOP": "false"}, None, id="env"),
        pytest.param([], {}, "uvloop: false\n", id="file"),
    ],
)
def test_uvloop_off_runs_on_asyncio(
    server_factory: type[ServerProcess],
    tmp_path: Path,
    extra_args: list[str],
    env: dict[str, str],
    config_file: str | None,
) -> None:
    if config_file is not None:
        path = tmp_path / "resonate.yml"
        path.write_text(config_file)
        extra_args = [*extra_args, "--config", str(path)]
    server = server_factory(tmp_path, extra_args=extra_args, env=env).start()
    create_and_complete(server)
    assert banner_loop(server) == "asyncio"
    assert server.terminate() == 0


def test_without_uvloop_installed_the_option_falls_back_to_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop_factory(True) is None
    assert event_loop_factory(False) is None


def test_the_banner_names_the_loop_that_runs() -> None:
    async def name() -> str:
        return describe_event_loop(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=event_loop_factory(False)) as runner:
        assert runner.run(name()) == "asyncio"
    if HAS_UVLOOP:
        factory = event_loop_factory(True)
        assert factory is not None
        with asyncio.Runner(loop_factory=factory) as runner:
            assert runner.run(name()).startswith("uvloop ")
