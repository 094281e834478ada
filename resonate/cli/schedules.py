"""`resonate schedules`: create, read, search and delete schedules (cli.md §6)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from resonate.cli.arguments import parse_duration, read_data, usage_error
from resonate.cli.complete import complete_schedule_id
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import SCHEDULE_VIEW
from resonate.cli.promises import (
    AllPagesOption,
    CursorOption,
    IdempotencyKeyOption,
    LimitOption,
    PatternArgument,
    TagOption,
    Watching,
    YesOption,
    confirm_destructive,
    key_values,
    show_search,
)
from resonate.cli.watch import (
    IntervalOption,
    WatchOption,
    show_or_watch,
    watch_interval,
)

app = typer.Typer(
    name="schedules",
    help="Create, read, search and delete schedules (cron-driven promise creation).",
    no_args_is_help=True,
)

ScheduleId = Annotated[
    str, typer.Argument(metavar="ID", help="Schedule id.", autocompletion=complete_schedule_id)
]


def _promise_param(
    data: str | None, data_file: str | None, headers: list[str] | None
) -> dict[str, Any]:
    """The param of every promise the schedule creates (empty dict when none)."""
    from resonate.client import encode_value

    if data is not None and data_file is not None:
        raise typer.BadParameter(
            "--promise-data and --promise-data-file are exclusive",
            param_hint="'--promise-data' / '--promise-data-file'",
        )
    value_headers = key_values(headers, "--promise-header")
    return encode_value(read_data(data, data_file), value_headers)


@app.command("create")
@client_command
def create_schedule(
    options: GlobalOptions,
    schedule_id: ScheduleId,
    cron: Annotated[
        str,
        typer.Option(
            "--cron",
            metavar="EXPR",
            help="Cron expression: 5 fields, 6 with leading seconds, @daily-style descriptors "
            "or '@every 5m'.",
            show_default=False,
        ),
    ],
    promise_id: Annotated[
        str,
        typer.Option(
            "--promise-id",
            metavar="TEMPLATE",
            help="Id of each promise created; {{.id}} is the schedule id, {{.timestamp}} the "
            "scheduled time in ms.",
            show_default=False,
        ),
    ],
    promise_timeout: Annotated[
        str,
        typer.Option(
            "--promise-timeout",
            metavar="DURATION",
            help="Time each promise has, from its scheduled time (30s, 1m, 1h30m).",
            show_default=False,
        ),
    ],
    description: Annotated[
        str | None,
        typer.Option("--description", metavar="TEXT", help="Free-text description."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            metavar="ZONE",
            help="IANA time zone the cron is evaluated in (server default: UTC); a CRON_TZ= "
            "prefix in the expression wins.",
        ),
    ] = None,
    tag: TagOption = None,
    promise_data: Annotated[
        str | None,
        typer.Option(
            "--promise-data",
            metavar="TEXT",
            help="Param data of each promise, as UTF-8 text (sent base64-encoded).",
        ),
    ] = None,
    promise_data_file: Annotated[
        str | None,
        typer.Option(
            "--promise-data-file",
            metavar="PATH",
            help="Read the param data from a file, raw bytes ('-' = stdin).",
        ),
    ] = None,
    promise_header: Annotated[
        list[str] | None,
        typer.Option("--promise-header", metavar="K=V", help="Param header; repeatable."),
    ] = None,
    promise_tag: Annotated[
        list[str] | None,
        typer.Option("--promise-tag", metavar="K=V", help="Tag of each promise; repeatable."),
    ] = None,
    idempotency_key: IdempotencyKeyOption = None,
) -> None:
    """Create a schedule: the server creates a promise at every cron time."""
    try:
        promise_timeout_ms = parse_duration(promise_timeout)
    except ValueError as error:
        raise usage_error(error, "--promise-timeout") from None
    tags = key_values(tag, "--tag")
    promise_tags = key_values(promise_tag, "--promise-tag")
    param = _promise_param(promise_data, promise_data_file, promise_header)
    with options.client() as client:
        response = client.create_schedule(
            schedule_id,
            cron,
            promise_id,
            promise_timeout_ms,
            description=description,
            timezone=timezone,
            tags=tags,
            promise_param=param,
            promise_tags=promise_tags,
            idempotency_key=idempotency_key,
        )
    printer = options.printer()
    printer.note("created" if response.created else "deduplicated")
    printer.show_object(response.body, SCHEDULE_VIEW)


@app.command("get")
@client_command
def get_schedule(
    options: GlobalOptions,
    schedule_id: ScheduleId,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Read a schedule (with its next and last run times); --watch it."""
    show_or_watch(
        options,
        watch,
        interval,
        SCHEDULE_VIEW,
        "schedule",
        f"schedules get {schedule_id}",
        schedule_id,
        lambda client: client.get_schedule(schedule_id),
    )


@app.command("search")
@client_command
def search_schedules(
    options: GlobalOptions,
    pattern: PatternArgument = "*",
    tag: TagOption = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Search schedules by id pattern and tags (newest first)."""
    from resonate.client import search_schedules_request

    tags = key_values(tag, "--tag")
    show_search(
        options,
        lambda at: search_schedules_request(pattern, tags, limit, at),
        cursor,
        all_pages,
        SCHEDULE_VIEW,
        Watching(
            "schedule", f"schedules search {pattern}", watch_interval(options, watch, interval)
        ),
    )


@app.command("delete")
@client_command
def delete_schedule(
    options: GlobalOptions, schedule_id: ScheduleId, yes: YesOption = False
) -> None:
    """Delete a schedule; promises it created stay (destructive: asks for confirmation)."""
    confirm_destructive(f"Delete schedule {schedule_id!r}?", yes)
    with options.client() as client:
        client.delete_schedule(schedule_id)
    # The API answers 204 without a body; nothing goes to stdout.
    options.printer().note("deleted")
