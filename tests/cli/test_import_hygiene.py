"""`resonate --help` and shell completion stay fast: the CLI imports no server-side code.

Each check runs in a fresh interpreter so that modules imported by other tests don't count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Never imported by the CLI's import or its help: the server, the stores and their drivers,
# and the TUI. httpx and PyYAML are loaded only by the commands that talk to a server / print
# YAML. Typer converts option values through pydantic, a fifth of the time of a subcommand's
# help; the root's options are converted without it (resonate/cli/root.py).
FORBIDDEN = (
    "resonate.server",
    "resonate.store",
    "resonate.tui",
    "aiohttp",
    "aiosqlite",
    "asyncpg",
    "textual",
    "httpx",
    "yaml",
    "pydantic",
)


def modules_loaded_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the modules loaded by then (help output ignored)."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(completed.stdout.splitlines()[-1]))


def forbidden_among(modules: list[str]) -> list[str]:
    return [
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN)
    ]


def test_importing_the_cli_loads_no_server_store_or_tui_code() -> None:
    modules = modules_loaded_after("import resonate.cli.main")
    assert "resonate.cli.main" in modules
    assert forbidden_among(modules) == []


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["promises", "--help"],
        ["promises", "search", "--help"],
        ["-S", "http://x", "-o", "json", "--no-color", "promises", "get", "--help"],
        ["tasks", "--help"],
        ["tree", "--help"],
        ["version", "--help"],
        ["migrate", "--help"],
        ["tui", "--help"],
    ],
)
def test_help_loads_no_server_store_or_tui_code(arguments: list[str]) -> None:
    code = f"""
        from resonate.cli.main import app
        try:
            app({arguments!r}, prog_name="resonate")
        except SystemExit:
            pass
    """
    assert forbidden_among(modules_loaded_after(code)) == []


@pytest.mark.parametrize(
    ("words", "cword"),
    [
        ("resonate prom", 1),
        ("resonate promises get --", 3),
        ("resonate -o json promises se", 4),
        ("resonate tui --re", 2),
    ],
    ids=["group", "options", "after-global-options", "tui"],
)
def test_completion_loads_no_server_store_or_tui_code(words: str, cword: int) -> None:
    code = f"""
        import os
        os.environ.update(_RESONATE_COMPLETE="complete_bash", COMP_WORDS={words!r},
                          COMP_CWORD="{cword}")
        from resonate.cli.main import app
        try:
            app([], prog_name="resonate")
        except SystemExit:
            pass
    """
    assert forbidden_among(modules_loaded_after(code)) == []


def test_the_check_sees_forbidden_imports() -> None:
    assert "httpx" in forbidden_among(modules_loaded_after("import httpx"))
