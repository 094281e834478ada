"""The CLI without a server: usage errors, confirmation, global options, dispatch."""

from __future__ import annotations

import sys
import types

import pytest

from tests.cli.cli_runner import RunCli


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["promises", "create", "p", "-t", "1m", "--data", "x", "--data-file", "f"], "exclusive"),
        (["promises", "resolve", "p", "--data", "x", "--data-file", "-"], "exclusive"),
        (["promises", "create", "p", "-t", "soon"], "invalid duration"),
        (["promises", "create", "p"], "--timeout"),
        (["promises", "create", "p", "-t", "1m", "--tag", "novalue"], "k=v"),
        (["promises", "resolve", "p", "--header", "=v"], "k=v"),
        (["promises", "search", "--limit", "101"], "--limit"),
        (["promises", "search", "--state", "done"], "--state"),
        (["-o", "xml", "promises", "get", "p"], "invalid output format 'xml'"),
        (["promises", "get", "p", "-T", "jwt", "-U", "user"], "exclusive"),
        (["-T", "jwt", "promises", "get", "p", "-U", "user"], "exclusive"),
        (["promises", "get", "p", "-S", "localhost:8001"], "http://"),
        (["promises", "get"], "ID"),
    ],
)
def test_usage_errors_exit_2(run_cli: RunCli, args: list[str], complaint: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr
    assert result.stdout == ""


def test_token_from_the_environment_and_username_flag_conflict(run_cli: RunCli) -> None:
    result = run_cli("promises", "get", "p", "-U", "u", env={"RESONATE_TOKEN": "jwt"})
    assert result.exit_code == 2


def test_cancel_without_a_terminal_needs_yes(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("promises", "cancel", "p", "-S", closed_port_url)
    assert result.exit_code == 3
    assert "--yes" in result.stderr


def test_cancel_with_yes_skips_the_question(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("promises", "cancel", "p", "-y", "-S", closed_port_url)
    assert result.exit_code == 5  # it went on to the (closed) server


@pytest.mark.parametrize(("answer", "exit_code"), [("n\n", 1), ("y\n", 5)])
def test_cancel_on_a_terminal_asks(
    run_cli: RunCli,
    closed_port_url: str,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    exit_code: int,
) -> None:
    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    result = run_cli("promises", "cancel", "p", "-S", closed_port_url, input=answer)
    assert "Cancel promise 'p'?" in result.stderr
    assert result.exit_code == exit_code


def test_unreachable_server_exits_5(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("promises", "get", "p", "-S", closed_port_url)
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: cannot reach {closed_port_url}")
    assert result.stdout == ""


def test_missing_data_file_exits_1(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("-S", closed_port_url, "promises", "resolve", "p", "--data-file", "/nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "/nope" in result.stderr


@pytest.mark.parametrize(
    ("before", "after", "env", "used"),
    [
        (["-S", "http://127.0.0.1:1"], [], {}, "http://127.0.0.1:1"),
        ([], ["-S", "http://127.0.0.1:2"], {}, "http://127.0.0.1:2"),
        (["-S", "http://127.0.0.1:1"], ["--server", "http://127.0.0.1:2"], {}, "127.0.0.1:2"),
        ([], [], {"RESONATE_SERVER": "http://127.0.0.1:3"}, "http://127.0.0.1:3"),
        (["-S", "http://127.0.0.1:1"], [], {"RESONATE_SERVER": "http://127.0.0.1:3"}, ":1"),
        ([], ["-S", "http://127.0.0.1:2"], {"RESONATE_SERVER": "http://127.0.0.1:3"}, ":2"),
    ],
)
def test_global_options_before_or_after_the_command_the_later_wins(
    run_cli: RunCli, before: list[str], after: list[str], env: dict[str, str], used: str
) -> None:
    result = run_cli(*before, "promises", "get", "p", *after, env=env)
    assert result.exit_code == 5
    assert used in result.stderr.splitlines()[0]


def test_output_before_the_group_applies_to_the_command(run_cli: RunCli) -> None:
    assert run_cli("-o", "json", "version").json()["version"]
    assert run_cli("-o", "json", "version", "-o", "id").stdout.strip() != "{"


def test_version(run_cli: RunCli) -> None:
    from resonate import __version__

    assert run_cli("version").stdout == f"resonate {__version__}\n"
    document = run_cli("version", "-o", "json").json()
    assert document["version"] == __version__
    assert document["python"] == ".".join(map(str, sys.version_info[:3]))
    assert run_cli("version", "-o", "yaml").stdout.startswith(f"version: {__version__}\n")


@pytest.fixture
def fake_server_commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object, object]]:
    """Replace the server and config command modules (written elsewhere) with recorders."""
    calls: list[tuple[str, object, object]] = []
    server_cmds = types.ModuleType("resonate.cli.server_cmds")
    server_cmds.run_serve = lambda args, dev: calls.append(("serve", args, dev)) or 0  # type: ignore[attr-defined]
    server_cmds.run_migrate = lambda action, args: calls.append(("migrate", action, args)) or 4  # type: ignore[attr-defined]
    config_cmd = types.ModuleType("resonate.cli.config_cmd")
    config_cmd.run_config_show = lambda args: calls.append(("config", args, None)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "resonate.cli.server_cmds", server_cmds)
    monkeypatch.setitem(sys.modules, "resonate.cli.config_cmd", config_cmd)
    return calls


@pytest.mark.parametrize(
    ("args", "call", "exit_code"),
    [
        (
            ["serve", "-c", "r.yaml", "--api-http-port=9", "extra"],
            ("serve", ["-c", "r.yaml", "--api-http-port=9", "extra"], False),
            0,
        ),
        (["dev", "--store-sqlite-path", "x"], ("serve", ["--store-sqlite-path", "x"], True), 0),
        (["migrate", "status", "-c", "r.yaml"], ("migrate", "status", ["-c", "r.yaml"]), 4),
        (["migrate", "dry-run"], ("migrate", "dry-run", []), 4),
        (["migrate", "up", "--x"], ("migrate", "up", ["--x"]), 4),
        (["config", "show", "--sources", "-c", "f"], ("config", ["--sources", "-c", "f"], None), 0),
    ],
)
def test_server_commands_get_every_raw_argument(
    run_cli: RunCli,
    fake_server_commands: list[tuple[str, object, object]],
    args: list[str],
    call: tuple[str, object, object],
    exit_code: int,
) -> None:
    result = run_cli(*args)
    assert fake_server_commands == [call]
    assert result.exit_code == exit_code


@pytest.mark.parametrize("command", [["serve"], ["dev"]])
def test_server_command_help_lists_the_configuration_options(
    run_cli: RunCli, command: list[str]
) -> None:
    result = run_cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: resonate" in result.stdout
    epilog = result.stdout.split("Usage:")[1]
    assert "--config" in epilog or "docs/configuration.md" in epilog
