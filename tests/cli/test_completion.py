"""Shell completion (cli.md §11) driven through the committed scripts in real shells.

bash: source `completions/resonate.bash`, set COMP_WORDS/COMP_CWORD, call the function.
zsh: load `completions/_resonate` from $fpath (and by `source`) with compinit, with `_arguments`
replaced by a function that prints what it was given. fish: `complete -C`, fish's own engine.
A missing shell skips locally and fails in CI (`.ci/run` installs them).

Live ids come from a real server; an unreachable one offers nothing, quickly and silently.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import typer

from resonate.cli import complete
from tests.cli.test_import_hygiene import forbidden_among, modules_loaded_after
from tests.support.servers import ServerProcess

REPOSITORY = Path(__file__).resolve().parents[2]
COMPLETIONS = REPOSITORY / "completions"
Complete = Callable[[str], list[str]]


def require_shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install -y {name})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shell_environment(tmp_path: Path) -> dict[str, str]:
    """A `resonate` on PATH that runs this interpreter's package; no client settings."""
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    program = bin_directory / "resonate"
    program.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m resonate "$@"\n')
    program.chmod(0o755)
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RESONATE_", "_RESONATE_", "_TYPER_")) and name != "NO_COLOR"
    }
    environment["PATH"] = f"{bin_directory}{os.pathsep}{environment.get('PATH', '')}"
    environment["HOME"] = str(tmp_path)
    return environment


def run_shell(command: list[str], environment: dict[str, str]) -> list[str]:
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    return completed.stdout.splitlines()


BASH_DRIVER = """
source "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_resonate_completion resonate
printf '%s\\n' "${COMPREPLY[@]}"
"""

# `_arguments` prints its specification instead of completing; the candidates are the quoted
# words inside `(( … ))`.
ZSH_DRIVER = """
if [[ $1 == fpath ]]; then fpath=("$2" $fpath); fi
autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump"
if [[ $1 == source ]]; then source "$2/_resonate"; fi
_arguments() { print -r -- "$@" }
_files() { }
words=("${@:3}")
CURRENT=$#words
$_comps[resonate]
"""


def zsh_candidates(output: list[str]) -> list[str]:
    """The values in `_arguments '*: :(("value":"help" …))'`, Typer's answer to zsh."""
    specification = "\n".join(output).partition("((")[2]
    return re.findall(r'"((?:[^"]|"")*)"(?::"(?:[^"]|"")*")?', specification)


def completer(kind: str, environment: dict[str, str]) -> Complete:
    """Completion of a command line in `kind` of shell: bash, zsh-fpath, zsh-source, fish."""
    shell = require_shell(kind.partition("-")[0])

    def run(line: str) -> list[str]:
        words = line.split(" ")
        if kind == "bash":
            script = str(COMPLETIONS / "resonate.bash")
            command = [shell, "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", script, *words]
            return run_shell(command, environment)
        if kind.startswith("zsh-"):
            how = kind.partition("-")[2]
            command = [shell, "-f", "-c", ZSH_DRIVER, "zsh", how, str(COMPLETIONS), *words]
            return zsh_candidates(run_shell(command, environment))
        script = f"source {COMPLETIONS / 'resonate.fish'}; complete -C $argv[1]"
        output = run_shell([shell, "--no-config", "-c", script, line], environment)
        return [candidate.partition("\t")[0] for candidate in output]

    return run


@pytest.fixture(params=["bash", "zsh-fpath", "zsh-source", "fish"])
def shell_complete(request: pytest.FixtureRequest, shell_environment: dict[str, str]) -> Complete:
    return completer(request.param, shell_environment)


@pytest.fixture
def bash_complete(shell_environment: dict[str, str]) -> Complete:
    return completer("bash", shell_environment)


@pytest.fixture(params=["zsh-fpath", "zsh-source", "fish"])
def line_complete(request: pytest.FixtureRequest, shell_environment: dict[str, str]) -> Complete:
    """The shells whose scripts hand the whole command line to the CLI (bash splits at ':')."""
    return completer(request.param, shell_environment)


@pytest.fixture
def fish_complete(shell_environment: dict[str, str]) -> Complete:
    return completer("fish", shell_environment)


# --- commands, options and enum values --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("resonate pro", ["promises"]),
        ("resonate promises search --state ", ["pending", "rejected", "resolved"]),
        (
            "resonate tasks search --state ",
            [
                *("acquired", "claimed", "completed", "enqueued", "fulfilled", "halted", "init"),
                *("pending", "suspended", "timedout"),
            ],
        ),
        ("resonate -o ", ["id", "json", "jsonl", "table", "yaml"]),
        ("resonate promises get x --out", ["--output"]),
        ("resonate promises search --st", ["--state"]),
        ("resonate sch", ["schedules"]),
    ],
)
def test_completes_commands_options_and_enum_values(
    shell_complete: Complete, line: str, expected: list[str]
) -> None:
    assert sorted(shell_complete(line)) == expected


def test_completion_of_enum_values_imports_no_http_client() -> None:
    code = """
        import os
        os.environ.update(_RESONATE_COMPLETE="complete_bash",
                          COMP_WORDS="resonate promises search --state ", COMP_CWORD="4")
        from resonate.cli.main import app
        try:
            app([], prog_name="resonate")
        except SystemExit:
            pass
    """
    assert forbidden_among(modules_loaded_after(code)) == []


# --- live ids ---------------------------------------------------------------------------------


@pytest.fixture
def promise_ids(server: ServerProcess, uid: str) -> list[str]:
    ids = [f"{uid}/order-1", f"{uid}/order-2", f"{uid}/refund-1"]
    timeout = int(time.time() * 1000) + 3_600_000
    with httpx.Client(base_url=server.url, timeout=10) as api:
        for promise_id in ids:
            assert api.post("/promises", json={"id": promise_id, "timeout": timeout}).is_success
    return ids


def test_bash_completes_promise_ids_from_the_server_in_the_environment(
    bash_complete: Complete,
    shell_environment: dict[str, str],
    server: ServerProcess,
    promise_ids: list[str],
    uid: str,
) -> None:
    shell_environment["RESONATE_SERVER"] = server.url
    assert sorted(bash_complete(f"resonate promises get {uid}/ord")) == promise_ids[:2]
    assert sorted(bash_complete(f"resonate promises resolve {uid}/")) == promise_ids


@pytest.mark.parametrize("before_the_group", [True, False], ids=["root-S", "command-S"])
def test_zsh_and_fish_complete_promise_ids_from_the_server_given_with_S(
    line_complete: Complete,
    server: ServerProcess,
    promise_ids: list[str],
    uid: str,
    before_the_group: bool,
) -> None:
    if before_the_group:
        line = f"resonate -S {server.url} promises get {uid}/ref"
    else:
        line = f"resonate promises get -S {server.url} {uid}/ref"
    assert line_complete(line) == promise_ids[2:]


def test_the_command_s_server_wins_over_the_root_s(
    fish_complete: Complete, server: ServerProcess, promise_ids: list[str], closed_port_url: str
) -> None:
    prefix = promise_ids[0].partition("/")[0]
    line = f"resonate -S {closed_port_url} promises get -S {server.url} {prefix}/order-1"
    assert fish_complete(line) == promise_ids[:1]
    line = f"resonate -S {server.url} promises get -S {closed_port_url} {prefix}/order-1"
    assert fish_complete(line) == []


def root_context(server_url: str) -> typer.Context:
    """The context completion resolves for `resonate -S URL …`."""
    from resonate.cli.main import app

    root = typer.main.get_command(app)
    return root.make_context("resonate", ["-S", server_url], resilient_parsing=True)


def create_schedule(api: httpx.Client, uid: str) -> tuple[str, str, str | None]:
    body = {"id": f"{uid}/nightly", "cron": "0 2 * * *", "promiseId": "p.{{.timestamp}}",
            "promiseTimeout": 60_000}  # fmt: skip
    assert api.post("/schedules", json=body).is_success
    return f"{uid}/", f"{uid}/nightly", "0 2 * * *"


def create_lock(api: httpx.Client, uid: str) -> tuple[str, str, str | None]:
    body = {"resourceId": f"{uid}/report", "executionId": "e1", "processId": "p1", "ttl": 60_000}
    assert api.post("/locks/acquire", json=body).is_success
    return f"{uid}/", f"{uid}/report", "e1"


def create_task(api: httpx.Client, uid: str) -> tuple[str, str, str | None]:
    timeout = int(time.time() * 1000) + 3_600_000
    body = {"id": f"{uid}/job", "timeout": timeout,
            "tags": {"resonate:invoke": "poll://any@nobody"}}  # fmt: skip
    assert api.post("/promises", json=body).is_success
    # The help is the task's state, which the server's loops move on (INIT, ENQUEUED, …).
    return f"__invoke:{uid}/", f"__invoke:{uid}/job", None


@pytest.mark.parametrize(
    ("function", "create"),
    [
        (complete.complete_schedule_id, create_schedule),
        (complete.complete_lock_resource_id, create_lock),
        (complete.complete_task_id, create_task),
    ],
    ids=["schedules", "locks", "tasks"],
)
def test_schedule_lock_and_task_ids_complete_from_the_server_too(
    server: ServerProcess,
    uid: str,
    function: Callable[[typer.Context, str], list[tuple[str, str]]],
    create: Callable[[httpx.Client, str], tuple[str, str, str | None]],
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as api:
        prefix, expected_id, expected_help = create(api, uid)
    found = function(root_context(server.url), prefix)
    assert [identifier for identifier, _ in found] == [expected_id]
    if expected_help is not None:
        assert found[0][1] == expected_help


def test_an_unreachable_server_offers_nothing_quickly_and_silently(
    shell_environment: dict[str, str], closed_port_url: str
) -> None:
    started = time.monotonic()
    assert complete.complete_promise_id(root_context(closed_port_url), "ord") == []
    assert time.monotonic() - started < complete.LIVE_TIMEOUT_SECONDS
    # Through the shell protocol: no candidate, no error message, success.
    environment = {
        **shell_environment,
        "RESONATE_SERVER": closed_port_url,
        "_RESONATE_COMPLETE": "complete_bash",
        "COMP_WORDS": "resonate promises get ord",
        "COMP_CWORD": "3",
    }
    completed = subprocess.run(
        ["resonate"], env=environment, capture_output=True, text=True, timeout=30
    )
    assert (completed.returncode, completed.stdout.strip(), completed.stderr) == (0, "", "")


def test_a_server_that_never_answers_costs_about_the_live_timeout() -> None:
    with socket.socket() as silent:  # the kernel accepts connections; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        context = root_context(f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert complete.complete_promise_id(context, "ord") == []
        elapsed = time.monotonic() - started
    assert complete.LIVE_TIMEOUT_SECONDS <= elapsed < 2 * complete.LIVE_TIMEOUT_SECONDS + 0.5


# --- the committed scripts and Typer's options ------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_show_completion_prints_the_committed_script(
    shell: str, shell_environment: dict[str, str]
) -> None:
    # Without detection, --show-completion takes the shell as its value.
    environment = {**shell_environment, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    completed = subprocess.run(
        ["resonate", "--show-completion", shell],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    committed = (COMPLETIONS / complete.SCRIPT_FILES[shell]).read_text()
    assert completed.stdout.strip() == committed.strip()


def test_install_completion_writes_the_script_for_the_shell(
    shell_environment: dict[str, str], tmp_path: Path
) -> None:
    environment = {**shell_environment, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    completed = subprocess.run(
        ["resonate", "--install-completion", "bash"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    installed = tmp_path / ".bash_completions" / "resonate.sh"
    assert installed.read_text().strip() == (COMPLETIONS / "resonate.bash").read_text().strip()


def test_the_zsh_script_is_typer_s_that_also_completes_when_autoloaded() -> None:
    from typer._completion_shared import get_completion_script

    typer_script = get_completion_script(
        prog_name="resonate", complete_var="_RESONATE_COMPLETE", shell="zsh"
    )
    committed = (COMPLETIONS / "_resonate").read_text()
    assert committed.startswith("#compdef resonate\n")
    assert typer_script.partition("compdef _resonate_completion")[0] in committed
    assert "loadautofunc" in committed
