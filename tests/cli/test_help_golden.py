"""`--help` reads like a Unix tool's: flags without a value, options with the name of their
value, arguments by name (`ID`, `[PATTERN]`), never Typer's `<bool>`, `<str>` or `{ID}`.

One page is kept as a golden file, drawn the way a user's terminal would be pinned down: 80
columns, no colour. Help rendering belongs to Typer (which vendors Click), so pyproject bounds
its version; a new Typer that draws differently fails here first. After an intended change:

    RESONATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_help_golden.py
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from resonate.cli.main import app
from tests.cli.cli_runner import RunCli

GOLDEN = Path(__file__).parent / "golden" / "help"
UPDATE = bool(os.environ.get("RESONATE_UPDATE_GOLDEN"))
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# What Typer 0.29 prints unless told otherwise: a type for every value, flags included.
TYPE_HINT = re.compile(r"<(bool|str|int|float|text|path)>|<list\[")


def rendered_help(*args: str) -> str:
    """`resonate ARGS… --help` in a fresh process: 80 columns, no colour, stdout a pipe."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESONATE_")}
    for name in ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "_TYPER_FORCE_DISABLE_TERMINAL"):
        env.pop(name, None)
    env.update(COLUMNS="80", LINES="24", TERMINAL_WIDTH="80", NO_COLOR="1", TERM="dumb")
    completed = subprocess.run(
        [sys.executable, "-m", "resonate", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_tree_help_page_is_the_golden_one() -> None:
    """`resonate tree --help`: an argument, an option with a value, flags, a choice, env vars
    and defaults, in their panels."""
    text = rendered_help("tree")
    path = GOLDEN / "tree.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"resonate tree --help differs from {path}"


def test_the_golden_page_reads_as_documented() -> None:
    text = (GOLDEN / "tree.txt").read_text()
    assert "Usage: resonate tree [OPTIONS] ID" in text
    assert re.search(r"│ \*\s+ID\s+Promise id\. \[required\]", text)
    assert re.search(r"│ --depth\s+N \[x>=0\]\s+Show N levels", text)
    assert re.search(r"│ --no-color\s+Plain output", text)  # a flag: no value after it
    assert re.search(r"│ --output\s+-o\s+\[table\|json\|jsonl\|yaml\|id\]\s+Output format", text)
    assert "\x1b[" not in text


def command_paths() -> Iterator[list[str]]:
    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, child in getattr(command, "commands", {}).items():
            if not getattr(child, "hidden", False):
                yield from walk(child, [*path, name])

    yield from walk(get_command(app), [])


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda path: " ".join(path) or "-")
def test_every_help_page_shows_flags_as_flags_and_arguments_by_name(
    run_cli: RunCli, path: list[str]
) -> None:
    result = run_cli(*path, "--help")
    assert result.exit_code == 0, result
    assert not TYPE_HINT.search(result.stdout), result.stdout
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_version_help_lists_no_network_option(run_cli: RunCli) -> None:
    """`resonate version` uses no network: only the output options are offered."""
    text = run_cli("version", "--help").stdout
    assert "--output" in text and "--no-color" in text
    for network_option in ("--server", "--token", "--username", "--password"):
        assert network_option not in text
    assert run_cli("version", "-S", "http://x").exit_code == 2


def test_the_typer_that_renders_help_is_the_pinned_one() -> None:
    """The golden page was drawn by a Typer within pyproject's bounds."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    spec = next(dep for dep in project["dependencies"] if dep.startswith("typer"))
    bounds = re.fullmatch(r"typer>=([\d.]+),<([\d.]+)", spec)
    assert bounds, spec

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    installed = version(importlib.metadata.version("typer"))
    assert version(bounds[1]) <= installed < version(bounds[2]), (installed, spec)
