"""Every failure class of cli.md §3 ends with its exit code and ONE `error:` line on stderr,
nothing on stdout and never a traceback, whatever the server (or the user, or the pipe) does.

The servers here misbehave on purpose (tests/cli/fake_http.py): a plain HTTP server answering
HTML or any JSON, a socket that never answers. Ctrl-C and a closed pipe are also exercised on a
real `python -m resonate` process, where the signal and the pipe are real.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import typer

from tests.cli.cli_runner import CliResult, RunCli
from tests.cli.fake_http import Answer, SilentServer, TwoPageSearch, canned, promise_document

# No proxy may stand between the CLI and the local servers (nor answer for `.invalid` hosts).
NO_PROXY = {"NO_PROXY": "*", "no_proxy": "*"}


def assert_one_error_line(result: CliResult, exit_code: int, pattern: str) -> None:
    assert result.exit_code == exit_code, result
    assert result.stdout == "", result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    assert re.search(pattern, lines[0]), (pattern, lines[0])


@dataclass(frozen=True)
class Failure:
    rule: str
    args: tuple[str, ...]
    exit_code: int
    message: str  # a regular expression the error line must contain
    answer: Answer | None = None  # what a canned server answers; `{url}` in args is its URL
    tls: bool = False  # speak https:// to the canned (plain HTTP) server


PROMISE_NOT_FOUND = Answer.api_error(404, 40400, "The specified promise was not found")

FAILURES = [
    # 2: usage
    Failure("bad option value", ("promises", "search", "--limit", "0"), 2,
            r"^error: invalid --limit value '0' \(expected 1 to 100\)$"),
    Failure("unknown option", ("promises", "get", "p", "--frobnicate"), 2,
            r"^error: unknown option --frobnicate"),
    Failure("missing argument", ("promises", "get"), 2, r"^error: missing argument ID"),
    Failure("a server 400 is a usage error", ("promises", "get", "p", "-S", "{url}"), 2,
            r"The request is invalid \(HTTP 400, code 40000\)$",
            Answer.api_error(400, 40000, "The request is invalid")),
    Failure("a server 413 is a usage error", ("promises", "get", "p", "-S", "{url}"), 2,
            r"\(HTTP 413, code 41300\)$", Answer.api_error(413, 41300, "Too large")),
    # 3: confirmation required
    Failure("destructive without a terminal or --yes", ("promises", "cancel", "p"), 3,
            r"--yes"),
    # 4: not found
    Failure("404", ("promises", "get", "p", "-S", "{url}"), 4,
            r"^error: The specified promise was not found \(HTTP 404, code 40400\)$",
            PROMISE_NOT_FOUND),
    # 5: unreachable
    Failure("DNS", ("promises", "get", "p", "-S", "http://resonate.invalid:8001"), 5,
            r"^error: cannot reach http://resonate\.invalid:8001: "),
    Failure("TLS to a plain HTTP port", ("promises", "get", "p", "-S", "{url}"), 5,
            r"^error: cannot reach https://127\.0\.0\.1:\d+: .*(SSL|ssl|TLS|tls)",
            Answer.json(200, {}), tls=True),
    # 6: unauthorized
    Failure("401", ("promises", "get", "p", "-S", "{url}"), 6, r"\(HTTP 401, code 40100\)$",
            Answer.api_error(401, 40100, "Unauthorized")),
    Failure("403 with code 40300", ("promises", "get", "p", "-S", "{url}"), 6,
            r"\(HTTP 403, code 40300\)$", Answer.api_error(403, 40300, "Forbidden")),
    # 7: conflict or invalid state
    Failure("409", ("promises", "create", "p", "-t", "1m", "-S", "{url}"), 7,
            r"\(HTTP 409, code 40900\)$", Answer.api_error(409, 40900, "Already exists")),
    Failure("403 already resolved", ("promises", "resolve", "p", "-S", "{url}"), 7,
            r"\(HTTP 403, code 40301\)$", Answer.api_error(403, 40301, "Already resolved")),
    Failure("412", ("promises", "get", "p", "-S", "{url}"), 7, r"\(HTTP 412, code 41200\)$",
            Answer.api_error(412, 41200, "Precondition failed")),
    # 8: server error
    Failure("500", ("promises", "get", "p", "-S", "{url}"), 8, r"\(HTTP 500, code 50000\)$",
            Answer.api_error(500, 50000, "Internal error")),
    Failure("a proxy's HTML error page", ("promises", "get", "p", "-S", "{url}"), 8,
            r"^error: Bad Gateway \(HTTP 502\)$", Answer.html(502, "<h1>502 Bad Gateway</h1>")),
    # 1: anything else
    Failure("a plain web server answering HTML", ("promises", "get", "p", "-S", "{url}"), 1,
            r"^error: unexpected response \(HTTP 200\): the body is not JSON$", Answer.html(200)),
    Failure("a server answering JSON of another shape", ("promises", "get", "p", "-S", "{url}"),
            1, r"^error: unexpected failure: \w+", Answer.json(200, ["not", "a", "promise"])),
    Failure("a search answering JSON of another shape",
            ("promises", "search", "-S", "{url}", "-o", "id"), 1,
            r"^error: unexpected failure: \w+", Answer.json(200, {"promises": 7})),
    Failure("a file that cannot be read",
            ("promises", "resolve", "p", "--data-file", "/nonexistent/data"), 1,
            r"^error: .*/nonexistent/data"),
]  # fmt: skip


@pytest.mark.parametrize("failure", FAILURES, ids=[failure.rule for failure in FAILURES])
def test_failure_classes_exit_with_their_code_and_one_error_line(
    run_cli: RunCli, closed_port_url: str, failure: Failure
) -> None:
    # Commands that need no server still get one that refuses, should they try to reach it.
    env = {**NO_PROXY, "RESONATE_SERVER": closed_port_url}
    if failure.answer is None:
        result = run_cli(*failure.args, env=env)
    else:
        with canned(failure.answer) as server:
            url = server.url.replace("http://", "https://") if failure.tls else server.url
            result = run_cli(*(arg.replace("{url}", url) for arg in failure.args), env=env)
    assert_one_error_line(result, failure.exit_code, failure.message)


def test_a_refused_connection_exits_5_with_one_line(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("promises", "get", "p", "-S", closed_port_url, env=NO_PROXY)
    assert_one_error_line(result, 5, rf"^error: cannot reach {closed_port_url}: .*refused")


def test_a_server_that_never_answers_times_out_with_5(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resonate.cli.options.REQUEST_TIMEOUT_SECONDS", 0.3)
    with SilentServer() as server:
        result = run_cli("promises", "get", "p", "-S", server.url, env=NO_PROXY)
        assert server.connected.is_set()
    assert_one_error_line(result, 5, rf"^error: cannot reach {server.url}: timed out")


def test_resonate_debug_shows_the_traceback_of_an_unexpected_failure(run_cli: RunCli) -> None:
    with canned(Answer.json(200, ["not", "a", "promise"])) as server:
        quiet = run_cli("promises", "get", "p", "-S", server.url, env=NO_PROXY)
        assert "RESONATE_DEBUG=1" in quiet.stderr
        with pytest.raises(AttributeError):  # the test runner re-raises what escapes the CLI
            run_cli(
                "promises", "get", "p", "-S", server.url, env={**NO_PROXY, "RESONATE_DEBUG": "1"}
            )


def test_an_invalid_server_url_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("promises", "get", "p", "-S", "http://[::1")
    assert_one_error_line(result, 2, r"^error: --server: invalid URL 'http://\[::1'")


def test_ctrl_c_during_a_request_exits_130(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("resonate.client.ResonateClient.send", interrupted)
    result = run_cli("promises", "get", "p", "-S", closed_port_url)
    assert_one_error_line(result, 130, r"^error: interrupted$")


def test_a_confirmation_answered_by_end_of_input_is_aborted_with_1(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    result = run_cli("promises", "cancel", "p", "-S", closed_port_url, input="")
    assert result.exit_code == 1, result
    assert result.stderr.splitlines()[-1] == "error: aborted"
    assert "Traceback" not in result.stderr


def test_ctrl_c_at_a_confirmation_exits_130(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def confirm_interrupted(*args: Any, **kwargs: Any) -> bool:
        """What Click's confirm does on Ctrl-C (the test runner feeds prompts itself)."""
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise typer.Abort() from None

    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    monkeypatch.setattr("typer.confirm", confirm_interrupted)
    result = run_cli("promises", "cancel", "p", "-S", closed_port_url)
    assert result.exit_code == 130, result
    assert result.stderr.splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in result.stderr


# --- real processes -----------------------------------------------------------------------------


def cli_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESONATE_")}
    env.pop("NO_COLOR", None)
    return {**env, **NO_PROXY}


def resonate(*args: str) -> list[str]:
    return [sys.executable, "-m", "resonate", *args]


def test_sigint_ends_a_hanging_request_with_130_and_a_short_note() -> None:
    with SilentServer() as server:
        process = subprocess.Popen(
            resonate("promises", "get", "p", "-S", server.url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_environment(),
            # A shell's background jobs ignore SIGINT; Python only turns it into
            # KeyboardInterrupt when it starts with the default disposition.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            assert server.connected.wait(30), "the CLI never connected"
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert (process.returncode, stdout, stderr) == (130, b"", b"error: interrupted\n")


def bulk(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [promise_document(f"bulk/{index:06d}") for index in range(start, start + count)]


@pytest.mark.parametrize(
    ("output", "streams"), [("id", True), ("jsonl", True), ("json", False), ("table", False)]
)
def test_a_reader_that_stops_early_ends_the_command_quietly_with_141(
    output: str, streams: bool
) -> None:
    """`resonate promises search --all | head -1`: the reader leaves after the first line (the
    formats that print as pages arrive) or before anything (those that print at the end); the
    command ends without a word, with the 141 of a process killed by SIGPIPE.

    The second page is held back until the pipe is closed, so the write that finds it closed
    is certain."""
    with TwoPageSearch("promises", bulk(5), bulk(2_000, start=5)) as server:
        process = subprocess.Popen(
            resonate("promises", "search", "--all", "-o", output, "-S", server.url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_environment(),
        )
        try:
            assert server.second_page_asked.wait(30), "the CLI never asked for page 2"
            assert process.stdout is not None and process.stderr is not None
            if streams:
                assert process.stdout.readline().startswith((b"bulk/000000", b'{"id"'))
            process.stdout.close()
            server.release.set()
            stderr = process.stderr.read()
            process.wait(timeout=60)
        finally:
            process.kill()
    assert (process.returncode, stderr) == (141, b"")


@pytest.mark.parametrize(
    "args", [["version"], ["--help"], ["promises", "--help"]], ids=["version", "help", "group"]
)
def test_output_into_a_closed_pipe_exits_141_without_a_word(args: list[str]) -> None:
    """Even output small enough to sit in a buffer until exit (where Python would print
    `Exception ignored … BrokenPipeError` and exit 120)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read
    try:
        completed = subprocess.run(
            resonate(*args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=cli_environment(),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (completed.returncode, completed.stderr) == (141, b"")
