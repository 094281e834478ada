"""No escape code under `NO_COLOR`, `--no-color` or a stdout that is not a terminal (cli.md §1,
§2): every output format, notes, errors and help.

The CLI runs as a real process on a pseudo-terminal, where it would colour; a first test checks
that it does, so that the absence of escape codes elsewhere means something.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli.cli_runner import RunCli
from tests.cli.fake_http import Answer, CannedServer, promise_document

ESCAPE = "\x1b["
NO_PROXY = {"NO_PROXY": "*", "no_proxy": "*"}
FORMATS = ["table", "json", "jsonl", "yaml", "id"]

PROMISE = promise_document("p", tags={"resonate:invoke": "poll://any@default"})
CHILD = promise_document("p.1", state="RESOLVED", tags={"resonate:root": "p"})


class Api(CannedServer):
    """`p` and a search page with a next cursor (so a note goes to stderr); tree searches by
    tag get a last page; every other promise is not found."""

    def __init__(self) -> None:
        super().__init__(Answer.api_error(404, 40400, "The specified promise was not found"))

    def respond(self, path: str) -> Answer:
        if path == "/promises/p":
            return Answer.json(200, PROMISE)
        if path.startswith("/promises?") and "resonate%3Aroot" in path:
            return Answer.json(200, {"cursor": None, "promises": [CHILD]})
        if path.startswith("/promises?"):
            return Answer.json(200, {"cursor": "next", "promises": [PROMISE, CHILD]})
        return self.answer


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with Api() as server:
        yield server


@dataclass(frozen=True)
class Switch:
    name: str
    env: dict[str, str]
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


SWITCHES = [
    Switch("NO_COLOR", {"NO_COLOR": "1"}),
    Switch("--no-color", {}, after=("--no-color",)),
    Switch("--no-color before the command", {}, before=("--no-color",)),
]


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESONATE_")}
    for name in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERMINAL_WIDTH"):
        env.pop(name, None)
    return {**env, "TERM": "xterm-256color", **NO_PROXY, **extra}


def read_all(descriptor: int) -> bytes:
    output = b""
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # EIO: the other side of the terminal is closed
            break
        if not chunk:
            break
        output += chunk
    return output


def on_terminal(
    args: list[str], env: dict[str, str], stdout_terminal: bool = True
) -> tuple[str, str]:
    """Run `resonate ARGS…` with stderr, and stdout unless told otherwise, on a pseudo-terminal:
    (what the pipe got, what the terminal got)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "resonate", *args],
        stdin=subprocess.DEVNULL,
        stdout=secondary if stdout_terminal else subprocess.PIPE,
        stderr=secondary,
        env=environment(env),
    )
    os.close(secondary)
    try:
        on_pipe = b"" if stdout_terminal else process.communicate(timeout=60)[0]
        on_tty = read_all(primary)
        process.wait(timeout=60)
    finally:
        os.close(primary)
        process.kill()
    return on_pipe.decode(), on_tty.decode()


def terminal_text(args: list[str], env: dict[str, str]) -> str:
    """All a command wrote with stdout and stderr on a terminal."""
    return on_terminal(args, env)[1]


def test_a_terminal_gets_colour_without_the_switches(api: Api) -> None:
    """The check has teeth: tables, notes, errors and help are coloured on a terminal."""
    assert ESCAPE in terminal_text(["promises", "search", "-S", api.url], {})
    assert ESCAPE in terminal_text(["promises", "get", "missing", "-S", api.url], {})
    assert ESCAPE in terminal_text(["promises", "--help"], {})


@pytest.mark.parametrize("output", FORMATS)
@pytest.mark.parametrize("switch", SWITCHES, ids=[switch.name for switch in SWITCHES])
def test_no_escape_codes_in_any_format_on_a_terminal(api: Api, switch: Switch, output: str) -> None:
    """A search page (and its `more results` note on stderr) in every format."""
    args = [*switch.before, "promises", "search", "-S", api.url, "-o", output, *switch.after]
    text = terminal_text(args, switch.env)
    assert "p.1" in text, text
    # json and yaml carry the cursor in the page; the others note it on stderr.
    assert ("more results" in text) == (output not in ("json", "yaml")), text
    assert ESCAPE not in text, (args, text)


@pytest.mark.parametrize("command", [["promises", "get", "p"], ["tree", "p"]], ids=["get", "tree"])
@pytest.mark.parametrize("switch", SWITCHES, ids=[switch.name for switch in SWITCHES])
def test_no_escape_codes_in_tables_and_trees_on_a_terminal(
    api: Api, switch: Switch, command: list[str]
) -> None:
    args = [*switch.before, *command, "-S", api.url, *switch.after]
    text = terminal_text(args, switch.env)
    assert "p" in text, text
    assert ESCAPE not in text, (args, text)


ERRORS = {
    "API error": ["promises", "get", "missing"],
    "usage error": ["promises", "get", "p", "-o", "xml"],
    "unknown option": ["promises", "get", "p", "--bogus"],
    "help": ["promises", "get", "--help"],
    "help without arguments": ["promises"],
}


@pytest.mark.parametrize("case", ["API error", "usage error", "help", "help without arguments"])
@pytest.mark.parametrize("switch", SWITCHES, ids=[switch.name for switch in SWITCHES])
def test_no_escape_codes_in_errors_and_help_on_a_terminal(
    api: Api, switch: Switch, case: str
) -> None:
    args = [*switch.before, *ERRORS[case], "-S", api.url, *switch.after]
    text = terminal_text(args, switch.env)
    assert ("error:" in text) or ("Usage:" in text), text
    assert ESCAPE not in text, (args, text)


@pytest.mark.parametrize("output", FORMATS)
def test_no_escape_codes_when_stdout_is_not_a_terminal(
    api: Api, run_cli: RunCli, output: str
) -> None:
    for command in (["promises", "search"], ["promises", "get", "p"], ["tree", "p"]):
        result = run_cli(*command, "-S", api.url, "-o", output, env=NO_PROXY)
        assert result.exit_code == 0, result
        assert ESCAPE not in result.stdout + result.stderr, result


@pytest.mark.parametrize("output", ["table", "id"])
def test_stdout_on_a_pipe_gets_no_escape_codes_even_with_stderr_on_a_terminal(
    api: Api, output: str
) -> None:
    stdout, stderr = on_terminal(["promises", "search", "-S", api.url, "-o", output], {}, False)
    assert "p.1" in stdout and ESCAPE not in stdout, stdout
    assert "more results" in stderr


@pytest.mark.parametrize("case", ["API error", "usage error", "unknown option"])
def test_no_escape_codes_in_errors_when_not_on_a_terminal(api: Api, case: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "resonate", *ERRORS[case], "-S", api.url],
        capture_output=True,
        text=True,
        env=environment({}),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert completed.returncode != 0
    assert completed.stderr.startswith("error: "), completed.stderr
    assert ESCAPE not in completed.stdout + completed.stderr
