"""`resonate tasks`: read, search, claim, complete, drop and heartbeat tasks (cli.md §7)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.complete import complete_task_id
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import TASK_VIEW, OutputFormat, ResourceView
from resonate.cli.promises import (
    AllPagesOption,
    CursorOption,
    LimitOption,
    PatternArgument,
    Watching,
    YesOption,
    confirm_destructive,
    show_search,
)
from resonate.cli.watch import (
    IntervalOption,
    WatchOption,
    show_or_watch,
    watch_interval,
)

if TYPE_CHECKING:
    from resonate.client import TaskSearchState

app = typer.Typer(
    name="tasks",
    help="Read, search, claim, complete, drop and heartbeat tasks.",
    no_args_is_help=True,
)

DEFAULT_PROCESS_ID = "resonate-cli"

# The claim response `{"type", "promises": {"root", "leaf"?}}` in table form.
CLAIM_VIEW = ResourceView(items_key="promises", id_key="id", columns=())


class TaskStateChoice(StrEnum):
    init = "init"
    enqueued = "enqueued"
    claimed = "claimed"
    completed = "completed"
    timedout = "timedout"


TaskId = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="Task id (__invoke:…, __resume:…).", autocompletion=complete_task_id
    ),
]
CounterOption = Annotated[
    int,
    typer.Option(
        "--counter",
        "-c",
        min=1,
        metavar="N",
        help="The task's counter (its fencing epoch).",
        show_default=False,
    ),
]
ProcessIdOption = Annotated[
    str,
    typer.Option("--process-id", metavar="P", help="The claiming process.", show_default=False),
]


@app.command("get")
@client_command
def get_task(
    options: GlobalOptions,
    task_id: TaskId,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Read a task (state, counter, claimer, recv, expiry); --watch it."""
    show_or_watch(
        options,
        watch,
        interval,
        TASK_VIEW,
        "task",
        f"tasks get {task_id}",
        task_id,
        lambda client: client.get_task(task_id),
    )


@app.command("search")
@client_command
def search_tasks(
    options: GlobalOptions,
    pattern: PatternArgument = "*",
    state: Annotated[
        TaskStateChoice | None,
        typer.Option("--state", case_sensitive=False, help="Only tasks in this state."),
    ] = None,
    process_id: Annotated[
        str | None,
        typer.Option("--process-id", metavar="P", help="Only tasks claimed by this process."),
    ] = None,
    root_promise_id: Annotated[
        str | None,
        typer.Option("--root-promise-id", metavar="ID", help="Only tasks of this root promise."),
    ] = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Search tasks by id pattern, state, claimer and root promise (newest first)."""
    from resonate.client import search_tasks_request

    search_state: TaskSearchState | None = state.value if state else None
    show_search(
        options,
        lambda at: search_tasks_request(
            pattern, search_state, process_id, root_promise_id, limit, at
        ),
        cursor,
        all_pages,
        TASK_VIEW,
        Watching("task", f"tasks search {pattern}", watch_interval(options, watch, interval)),
    )


def _claim_summary(claim: dict[str, Any]) -> dict[str, Any]:
    """`type`, then `root` and `leaf` as `<id> (<state>)` for the field table."""
    summary: dict[str, Any] = {"type": claim.get("type")}
    for role, reference in (claim.get("promises") or {}).items():
        if not isinstance(reference, dict):
            continue
        promise = reference.get("data")
        state = promise.get("state") if isinstance(promise, dict) else "not found"
        summary[role] = f"{reference.get('id')} ({state})"
    return summary


@app.command("claim")
@client_command
def claim_task(
    options: GlobalOptions,
    task_id: TaskId,
    counter: CounterOption,
    process_id: Annotated[
        str,
        typer.Option("--process-id", metavar="P", help="The process that claims the task."),
    ] = DEFAULT_PROCESS_ID,
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="Lease: the claim lapses unless heartbeated within it (30s, 1m).",
        ),
    ] = "1m",
) -> None:
    """Claim a task: the process then holds it until it completes, drops or lets it lapse."""
    try:
        ttl_ms = parse_duration(ttl)
    except ValueError as error:
        raise usage_error(error, "--ttl") from None
    with options.client() as client:
        response = client.claim_task(task_id, counter, process_id, ttl_ms)
    printer = options.printer()
    printer.note("claimed")
    if options.output is OutputFormat.table:
        printer.show_object(_claim_summary(response.body), CLAIM_VIEW)
    elif options.output is OutputFormat.id:
        printer.show_document(response.body, task_id)
    else:
        printer.show_object(response.body, CLAIM_VIEW)


@app.command("complete")
@client_command
def complete_task(options: GlobalOptions, task_id: TaskId, counter: CounterOption) -> None:
    """Complete a claimed task."""
    with options.client() as client:
        response = client.complete_task(task_id, counter)
    printer = options.printer()
    printer.note("completed" if response.created else "deduplicated: the task had already ended")
    printer.show_object(response.body, TASK_VIEW)


@app.command("drop")
@client_command
def drop_task(
    options: GlobalOptions, task_id: TaskId, counter: CounterOption, yes: YesOption = False
) -> None:
    """Give a claimed task back, to be sent again (destructive: asks for confirmation)."""
    confirm_destructive(f"Drop task {task_id!r}?", yes)
    with options.client() as client:
        response = client.drop_task(task_id, counter)
    # The API answers without a body; nothing goes to stdout.
    options.printer().note(
        "dropped" if response.created else "deduplicated: the task is not claimed"
    )


@app.command("heartbeat")
@client_command
def heartbeat_tasks(options: GlobalOptions, process_id: ProcessIdOption) -> None:
    """Extend the lease of every task a process has claimed; prints how many."""
    with options.client() as client:
        response = client.heartbeat_tasks(process_id)
    affected = response.body.get("tasksAffected")
    options.printer().show_document(response.body, str(affected))
