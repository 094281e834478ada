"""`resonate locks`: read, search, acquire, release and heartbeat locks (cli.md §8)."""

from __future__ import annotations

from typing import Annotated

import typer

from resonate.cli.arguments import parse_duration, usage_error
from resonate.cli.complete import complete_lock_resource_id
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import LOCK_VIEW
from resonate.cli.promises import (
    AllPagesOption,
    CursorOption,
    LimitOption,
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

app = typer.Typer(
    name="locks",
    help="Read, search, acquire, release and heartbeat locks.",
    no_args_is_help=True,
)

ResourceId = Annotated[
    str,
    typer.Argument(
        metavar="RESOURCE_ID",
        help="The locked resource.",
        autocompletion=complete_lock_resource_id,
    ),
]
ExecutionIdOption = Annotated[
    str,
    typer.Option(
        "--execution-id", metavar="E", help="The execution holding the lock.", show_default=False
    ),
]
ProcessIdOption = Annotated[
    str,
    typer.Option(
        "--process-id", metavar="P", help="The process of the execution.", show_default=False
    ),
]


@app.command("get")
@client_command
def get_lock(
    options: GlobalOptions,
    resource_id: ResourceId,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Read a lock (holder, process, ttl, expiry); a lock past its expiry shows until swept.
    --watch it (a released lock shows as not found until it is acquired again)."""
    show_or_watch(
        options,
        watch,
        interval,
        LOCK_VIEW,
        "lock",
        f"locks get {resource_id}",
        resource_id,
        lambda client: client.get_lock(resource_id),
    )


@app.command("search")
@client_command
def search_locks(
    options: GlobalOptions,
    pattern: Annotated[
        str, typer.Argument(metavar="PATTERN", help="Resource id pattern; '*' is a wildcard.")
    ] = "*",
    process_id: Annotated[
        str | None,
        typer.Option("--process-id", metavar="P", help="Only locks of this process."),
    ] = None,
    execution_id: Annotated[
        str | None,
        typer.Option("--execution-id", metavar="E", help="Only locks held by this execution."),
    ] = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Search locks by resource id pattern, process and execution (by resource id)."""
    from resonate.client import search_locks_request

    show_search(
        options,
        lambda at: search_locks_request(pattern, process_id, execution_id, limit, at),
        cursor,
        all_pages,
        LOCK_VIEW,
        Watching("lock", f"locks search {pattern}", watch_interval(options, watch, interval)),
    )


@app.command("acquire")
@client_command
def acquire_lock(
    options: GlobalOptions,
    resource_id: ResourceId,
    execution_id: ExecutionIdOption,
    process_id: ProcessIdOption,
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="Lease: the lock lapses unless renewed or heartbeated within it (30s, 1m).",
        ),
    ] = "1m",
) -> None:
    """Acquire a lock, or renew it when this execution already holds it."""
    try:
        ttl_ms = parse_duration(ttl)
    except ValueError as error:
        raise usage_error(error, "--ttl") from None
    with options.client() as client:
        response = client.acquire_lock(resource_id, execution_id, process_id, ttl_ms)
    printer = options.printer()
    printer.note("acquired")
    printer.show_object(response.body, LOCK_VIEW)


@app.command("release")
@client_command
def release_lock(
    options: GlobalOptions,
    resource_id: ResourceId,
    execution_id: ExecutionIdOption,
    yes: YesOption = False,
) -> None:
    """Release a lock held by an execution (destructive: asks for confirmation)."""
    confirm_destructive(f"Release the lock on {resource_id!r}?", yes)
    with options.client() as client:
        client.release_lock(resource_id, execution_id)
    # The API answers 204 without a body; nothing goes to stdout.
    options.printer().note("released")


@app.command("heartbeat")
@client_command
def heartbeat_locks(options: GlobalOptions, process_id: ProcessIdOption) -> None:
    """Extend every lock a process holds; prints how many."""
    with options.client() as client:
        response = client.heartbeat_locks(process_id)
    affected = response.body.get("locksAffected")
    options.printer().show_document(response.body, str(affected))
