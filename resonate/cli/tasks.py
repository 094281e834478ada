"""`resonate tasks`: read, search, claim, complete, drop and heartbeat tasks (cli.md §7).

`get` and `search` also show the tasks of the 2026-04-01 protocol (protocol-2026.md §3.2), read
through `task.get` / `task.search`; the other verbs act on REST tasks only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.complete import complete_task_id
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import TASK_VIEW, OutputFormat, ResourceView, item_line, write_line
from resonate.cli.promises import (
    AllPagesOption,
    CursorOption,
    LimitOption,
    PatternArgument,
    YesOption,
    confirm_destructive,
)
from resonate.cli.watch import (
    IntervalOption,
    Watched,
    WatchOption,
    run_watch,
    show_or_watch,
    watch_interval,
)

if TYPE_CHECKING:
    from resonate.cli.watch import Snapshot
    from resonate.client import ApiResponse, ResonateClient, TaskQuery

app = typer.Typer(
    name="tasks",
    help="Read, search, claim, complete, drop and heartbeat tasks.",
    no_args_is_help=True,
)

DEFAULT_PROCESS_ID = "resonate-cli"

# The claim response `{"type", "promises": {"root", "leaf"?}}` in table form.
CLAIM_VIEW = ResourceView(items_key="promises", id_key="id", columns=())


class TaskStateChoice(StrEnum):
    # REST tasks (http-api.md §4.10)
    init = "init"
    enqueued = "enqueued"
    claimed = "claimed"
    completed = "completed"
    timedout = "timedout"
    # 2026-04-01 tasks (protocol-2026.md §4.1)
    pending = "pending"
    acquired = "acquired"
    suspended = "suspended"
    halted = "halted"
    fulfilled = "fulfilled"


class ProtocolChoice(StrEnum):
    all = "all"
    rest = "rest"
    v2026 = "2026"


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
    """Read a task (state, counter, claimer, recv, expiry); --watch it.

    A REST task first; else the 2026 task of that id (its promise's id)."""
    show_or_watch(
        options,
        watch,
        interval,
        TASK_VIEW,
        "task",
        f"tasks get {task_id}",
        task_id,
        lambda client: read_task(client, task_id),
    )


def read_task(client: ResonateClient, task_id: str) -> ApiResponse:
    """The REST task `task_id`, else the 2026 task of that id as its 2026 record with
    `"protocol": "2026-04-01"`; a 404 for neither is the REST one."""
    from resonate.client import ApiError, ApiResponse, as_2026_record

    try:
        return client.get_task(task_id)
    except ApiError as error:
        if error.status != 404:
            raise
        try:
            found = client.get_task_2026(task_id)
        except ApiError as error_2026:
            if error_2026.status == 404:
                raise error from None
            raise
    task = found.body.get("task") if isinstance(found.body, dict) else None
    if not isinstance(task, dict):
        from resonate.client import UnexpectedResponse

        raise UnexpectedResponse(found.status, "task.get answered without a task")
    return ApiResponse(found.status, as_2026_record(task))


@app.command("search")
@client_command
def search_tasks(
    options: GlobalOptions,
    pattern: PatternArgument = "*",
    state: Annotated[
        TaskStateChoice | None,
        typer.Option(
            "--state",
            case_sensitive=False,
            metavar="STATE",
            help="Only tasks in this state: init, enqueued, claimed, completed or timedout "
            "(REST tasks only); pending, acquired, suspended, halted or fulfilled (2026 tasks "
            "only).",
        ),
    ] = None,
    process_id: Annotated[
        str | None,
        typer.Option(
            "--process-id",
            metavar="P",
            help="Only tasks claimed (REST) or acquired (2026) by this process.",
        ),
    ] = None,
    root_promise_id: Annotated[
        str | None,
        typer.Option(
            "--root-promise-id",
            metavar="ID",
            help="Only tasks of this root promise (2026: the tasks whose id is ID, ID:… or ID.…).",
        ),
    ] = None,
    protocol: Annotated[
        ProtocolChoice,
        typer.Option(
            "--protocol",
            case_sensitive=False,
            help="Which tasks: REST tasks, tasks of the 2026-04-01 protocol, or both.",
        ),
    ] = ProtocolChoice.all,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Search tasks by id pattern, state, claimer and root promise: REST tasks (newest
    first), then 2026 tasks (by id)."""
    from resonate.client import TASK_CURSOR_PREFIX, TaskQuery, decode_task_cursor

    if cursor and cursor.startswith(TASK_CURSOR_PREFIX):
        try:
            decode_task_cursor(cursor)
        except ValueError as error:
            raise usage_error(error, "--cursor") from None
    protocol_value: Any = protocol.value
    query = TaskQuery(
        pattern, state.value if state else None, process_id, root_promise_id, protocol_value, limit
    )
    interval_seconds = watch_interval(options, watch, interval)
    if interval_seconds is not None:
        title = f"tasks search {pattern}"
        run_watch(
            options, Watched(TASK_VIEW, "task", title, _reader(query, cursor)), interval_seconds
        )
        return
    if all_pages and options.output in (OutputFormat.jsonl, OutputFormat.id):
        with options.client() as client:
            for item in client.iter_all_tasks(query, cursor):
                write_line(item_line(item, TASK_VIEW, options.output))
        return
    with options.client() as client:
        if all_pages:
            page: dict[str, Any] = {
                "cursor": None,
                "tasks": list(client.iter_all_tasks(query, cursor)),
            }
        else:
            page = client.search_all_tasks(query, cursor).body
    options.printer().show_page(page, TASK_VIEW)


def _reader(query: TaskQuery, cursor: str | None) -> Any:
    """A watch's read: every page of the search, keyed by protocol and id."""
    from resonate.client import is_2026_record

    def read(client: ResonateClient) -> Snapshot:
        return {
            ("2026 " if is_2026_record(item) else "") + str(item.get("id", "")): item
            for item in client.iter_all_tasks(query, cursor)
        }

    return read


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
