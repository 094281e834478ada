"""Shell completion: live id completion from a running server, and the committed scripts.

Commands, options and enum values complete from the command tree alone (Typer does it). Ids
come from the server named by `-S/--server` (the command's own, else the one before the group,
else `RESONATE_SERVER`, else the default), asked with a short timeout: an unreachable or slow
server, a refused login or any other failure offers nothing and prints nothing, so a <TAB>
never hangs the shell or writes into it.

Importing this module stays cheap (it is imported with the CLI); httpx and the API client are
imported only when an id is being completed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from resonate.cli.examples import PROGRAM
from resonate.cli.options import DEFAULT_SERVER_URL

if TYPE_CHECKING:
    from resonate.client import ApiRequest

COMPLETE_VARIABLE = "_RESONATE_COMPLETE"
# How long a <TAB> may wait for the server, per connect and per read.
LIVE_TIMEOUT_SECONDS = 0.5
# Enough to choose from on one screen; a longer prefix narrows it down.
LIVE_LIMIT = 50

# The committed scripts (`scripts/gen-docs` writes them into completions/), by shell.
SCRIPT_FILES = {"bash": "resonate.bash", "zsh": "_resonate", "fish": "resonate.fish"}

# Typer's zsh script only registers its function when sourced, so the <TAB> that autoloads
# `_resonate` from $fpath would offer nothing; this also completes on that first <TAB>.
_ZSH_REGISTRATION = "compdef _resonate_completion resonate"
_ZSH_AUTOLOAD_AWARE = """\
compdef _resonate_completion resonate
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # autoloaded from $fpath as _resonate: complete the word of this very <TAB> too
  _resonate_completion "$@"
fi"""


def completion_scripts() -> dict[str, str]:
    """The completion script of each shell, by file name: Typer's, for `resonate`."""
    # Typer's own templates, so that the scripts match `--show-completion` (pyproject pins the
    # Typer minor version, which this private module belongs to).
    from typer._completion_shared import get_completion_script

    scripts: dict[str, str] = {}
    for shell, file_name in SCRIPT_FILES.items():
        script = get_completion_script(
            prog_name=PROGRAM, complete_var=COMPLETE_VARIABLE, shell=shell
        )
        if shell == "zsh":
            if _ZSH_REGISTRATION not in script:
                raise RuntimeError("Typer's zsh completion script changed; update complete.py")
            script = script.replace(_ZSH_REGISTRATION, _ZSH_AUTOLOAD_AWARE)
        scripts[file_name] = script.rstrip("\n") + "\n"
    return scripts


# --- live ids -----------------------------------------------------------------------------------


def complete_promise_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Promise ids starting with `incomplete`, each with its state."""
    from resonate.client import search_promises_request

    request = search_promises_request(id=incomplete + "*", limit=LIVE_LIMIT)
    return _live_ids(ctx, request, "promises", "id", "state")


def complete_task_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Task ids starting with `incomplete`, each with its state."""
    from resonate.client import search_tasks_request

    request = search_tasks_request(id=incomplete + "*", limit=LIVE_LIMIT)
    return _live_ids(ctx, request, "tasks", "id", "state")


def complete_schedule_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Schedule ids starting with `incomplete`, each with its cron expression."""
    from resonate.client import search_schedules_request

    request = search_schedules_request(id=incomplete + "*", limit=LIVE_LIMIT)
    return _live_ids(ctx, request, "schedules", "id", "cron")


def complete_lock_resource_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Locked resource ids starting with `incomplete`, each with the execution holding it."""
    from resonate.client import search_locks_request

    request = search_locks_request(resource_id=incomplete + "*", limit=LIVE_LIMIT)
    return _live_ids(ctx, request, "locks", "resourceId", "executionId")


def _live_ids(
    ctx: typer.Context, request: ApiRequest, items_key: str, id_field: str, help_field: str
) -> list[tuple[str, str]]:
    """`(id, help)` of each item of one search page; nothing when the server cannot answer
    right away."""
    try:
        from resonate.client import Credentials, ResonateClient, page_items

        credentials = Credentials(
            _option(ctx, "token"), _option(ctx, "username"), _option(ctx, "password")
        )
        server = _option(ctx, "server") or DEFAULT_SERVER_URL
        with ResonateClient(
            server, credentials=credentials, timeout=LIVE_TIMEOUT_SECONDS
        ) as client:
            items = list(page_items(client.send(request).body, items_key))
        return [(str(item[id_field]), str(item.get(help_field, ""))) for item in items]
    except Exception:
        # Completion offers what it can; an error message would land in the command line.
        return []


def _option(ctx: typer.Context | None, name: str) -> Any:
    """A global option as the command will see it: the innermost command line that gave it
    wins, else the root's value (its environment variable or default)."""
    root_value = None
    current: Any = ctx  # a typer.Context; its parents are the Click contexts Typer vendors
    while current is not None:
        if name in current.params:
            source = current.get_parameter_source(name)
            if source is not None and source.name == "COMMANDLINE":
                return current.params[name]
            root_value = current.params[name]
        current = current.parent
    return root_value
