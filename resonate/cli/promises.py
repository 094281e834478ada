"""`resonate promises`: read, create, complete and search promises (cli.md §5)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from resonate.cli.arguments import (
    parse_duration,
    parse_key_values,
    read_data,
    usage_error,
)
from resonate.cli.complete import complete_promise_id
from resonate.cli.errors import Aborted, CliError, ConfirmationRequired, ExitCode
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import (
    CALLBACK_VIEW,
    PROMISE_VIEW,
    OutputFormat,
    format_timestamp,
    item_line,
    now_ms,
    write_line,
)
from resonate.cli.recv import parse_recv
from resonate.cli.watch import (
    IntervalOption,
    WatchOption,
    run_watch,
    wait_and_show,
    watch_interval,
    watched_object,
    watched_search,
)

if TYPE_CHECKING:
    from resonate.cli.output import Printer, ResourceView
    from resonate.client import (
        ApiResponse,
        CompletionState,
        JsonObject,
        PageRequest,
        PurgeState,
        ResonateClient,
        SearchState,
    )

app = typer.Typer(
    name="promises",
    help="Read, create, complete and search promises.",
    no_args_is_help=True,
)


class SearchStateChoice(StrEnum):
    pending = "pending"
    resolved = "resolved"
    rejected = "rejected"


class PurgeStateChoice(StrEnum):
    resolved = "resolved"
    rejected = "rejected"
    rejected_canceled = "rejected_canceled"
    rejected_timedout = "rejected_timedout"


PromiseId = Annotated[
    str, typer.Argument(metavar="ID", help="Promise id.", autocompletion=complete_promise_id)
]
DataOption = Annotated[
    str | None,
    typer.Option("--data", metavar="TEXT", help="Value data as UTF-8 text (sent base64-encoded)."),
]
DataFileOption = Annotated[
    str | None,
    typer.Option(
        "--data-file",
        metavar="PATH",
        help="Read the value data from a file, raw bytes ('-' = stdin).",
    ),
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option("--header", metavar="K=V", help="Value header; repeatable."),
]
TagOption = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="K=V", help="Tag; repeatable."),
]
IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option("--idempotency-key", "-k", metavar="KEY", help="Idempotency key."),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Deduplicate only when the stored state matches.")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PatternArgument = Annotated[
    str, typer.Argument(metavar="PATTERN", help="Id pattern; '*' is a wildcard.")
]
LimitOption = Annotated[
    int | None,
    typer.Option("--limit", min=1, max=100, metavar="N", help="Page size (at most 100)."),
]
CursorOption = Annotated[
    str | None, typer.Option("--cursor", metavar="CURSOR", help="Continue a search.")
]
AllPagesOption = Annotated[
    bool, typer.Option("--all", help="Follow cursors and print every match.")
]
RecvOption = Annotated[
    str,
    typer.Option(
        "--recv",
        metavar="RECV",
        help="Where to send the task: a logical recv (default, poll://any@group, http://…) "
        'or a JSON object {"type": …, "data": …}.',
    ),
]
RegistrationTimeoutOption = Annotated[
    str,
    typer.Option(
        "--timeout",
        "-t",
        metavar="DURATION",
        help="Time until the resulting task times out (250ms, 30s, 1m, 1h30m).",
        show_default=False,
    ),
]


def key_values(pairs: list[str] | None, option: str) -> dict[str, str]:
    try:
        return parse_key_values(pairs or [])
    except ValueError as error:
        raise usage_error(error, option) from None


def _duration(text: str, option: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise usage_error(error, option) from None


def deadline(duration: str, option: str) -> int:
    """`now + duration` in absolute ms, for the timeouts the API takes as deadlines."""
    try:
        return now_ms() + parse_duration(duration)
    except ValueError as error:
        raise usage_error(error, option) from None


def _value(data: str | None, data_file: str | None, headers: list[str] | None) -> dict[str, Any]:
    """The API value from `--data`/`--data-file` and `--header` (empty dict when none)."""
    from resonate.client import encode_value

    value_headers = key_values(headers, "--header")
    try:
        raw = read_data(data, data_file)
    except ValueError as error:
        raise usage_error(error, "--data-file") from None
    return encode_value(raw, value_headers)


def show_write_result(
    options: GlobalOptions, response: ApiResponse, created_note: str, expected_state: str
) -> None:
    """The note (`created`/verb on 201, `deduplicated` on 200) and the promise."""
    printer = options.printer()
    promise = response.body
    if response.created:
        printer.note(created_note)
    elif promise.get("state") == expected_state:
        printer.note("deduplicated")
    else:
        printer.note(f"deduplicated: the promise is already {promise.get('state')}")
    printer.show_object(promise, PROMISE_VIEW)


@app.command("get")
@client_command
def get_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the promise is no longer PENDING, then print it; exit 0 when "
            "RESOLVED, 9 when rejected, canceled or timed out.",
        ),
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            "-t",
            metavar="DURATION",
            help="With --wait: give up after this long (exit 10).  [default: no limit]",
            show_default=False,
        ),
    ] = None,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Read a promise; --wait for it to complete, or --watch it."""
    watch_seconds = watch_interval(options, watch, interval)
    if wait and watch:
        raise typer.BadParameter("--wait and --watch are exclusive", param_hint="'--wait'")
    if timeout is not None and not wait:
        raise typer.BadParameter("needs --wait", param_hint="'--timeout'")
    timeout_ms = _duration(timeout, "--timeout") if timeout is not None else None
    if watch_seconds is not None:
        watched = watched_object(
            PROMISE_VIEW,
            "promise",
            f"promises get {promise_id}",
            promise_id,
            lambda client: client.get_promise(promise_id),
        )
        run_watch(options, watched, watch_seconds)
        return
    printer = options.printer()

    def show(promise: dict[str, Any]) -> None:
        printer.show_object(promise, PROMISE_VIEW)

    with options.client() as client:
        if wait:
            wait_and_show(options, client, promise_id, timeout_ms, timeout, show)
            return
        response = client.get_promise(promise_id)
    show(response.body)


@app.command("create")
@client_command
def create_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout",
            "-t",
            metavar="DURATION",
            help="Time until the promise times out (250ms, 30s, 1m, 1h30m).",
            show_default=False,
        ),
    ],
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    tag: TagOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Create a promise."""
    try:
        timeout_ms = parse_duration(timeout)
    except ValueError as error:
        raise usage_error(error, "--timeout") from None
    tags = key_values(tag, "--tag")
    param = _value(data, data_file, header)
    with options.client() as client:
        response = client.create_promise(
            promise_id,
            now_ms() + timeout_ms,
            param=param,
            tags=tags,
            idempotency_key=idempotency_key,
            strict=strict,
        )
    show_write_result(options, response, "created", "PENDING")


def _complete(
    options: GlobalOptions,
    promise_id: str,
    state: CompletionState,
    value: dict[str, Any],
    idempotency_key: str | None,
    strict: bool,
) -> None:
    with options.client() as client:
        response = client.complete_promise(promise_id, state, value, idempotency_key, strict)
    verb = {"RESOLVED": "resolved", "REJECTED": "rejected", "REJECTED_CANCELED": "canceled"}
    show_write_result(options, response, verb[state], state)


@app.command("resolve")
@client_command
def resolve_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Resolve a pending promise."""
    value = _value(data, data_file, header)
    _complete(options, promise_id, "RESOLVED", value, idempotency_key, strict)


@app.command("reject")
@client_command
def reject_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
) -> None:
    """Reject a pending promise."""
    value = _value(data, data_file, header)
    _complete(options, promise_id, "REJECTED", value, idempotency_key, strict)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm_destructive(question: str, yes: bool) -> None:
    """Ask on a TTY; without one, refuse unless `--yes` was given (exit code 3)."""
    if yes:
        return
    if not stdin_is_terminal():
        raise ConfirmationRequired("confirmation required: pass --yes to run without a terminal")
    if not typer.confirm(question, default=False, err=True):
        raise Aborted("aborted")


@app.command("cancel")
@client_command
def cancel_promise(
    options: GlobalOptions,
    promise_id: PromiseId,
    data: DataOption = None,
    data_file: DataFileOption = None,
    header: HeaderOption = None,
    idempotency_key: IdempotencyKeyOption = None,
    strict: StrictOption = False,
    yes: YesOption = False,
) -> None:
    """Cancel a pending promise (destructive: asks for confirmation)."""
    value = _value(data, data_file, header)
    confirm_destructive(f"Cancel promise {promise_id!r}?", yes)
    _complete(options, promise_id, "REJECTED_CANCELED", value, idempotency_key, strict)


@app.command("search")
@client_command
def search_promises(
    options: GlobalOptions,
    pattern: PatternArgument = "*",
    state: Annotated[
        SearchStateChoice | None,
        typer.Option("--state", case_sensitive=False, help="Only promises in this state."),
    ] = None,
    tag: TagOption = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    watch: WatchOption = False,
    interval: IntervalOption = None,
) -> None:
    """Search promises by id pattern, state and tags (newest first)."""
    from resonate.client import search_promises_request

    tags = key_values(tag, "--tag")
    search_state: SearchState | None = state.value if state else None
    show_search(
        options,
        lambda at: search_promises_request(pattern, search_state, tags, limit, at),
        cursor,
        all_pages,
        PROMISE_VIEW,
        Watching("promise", f"promises search {pattern}", watch_interval(options, watch, interval)),
    )


@dataclass(frozen=True, slots=True)
class Watching:
    """A search's `--watch`: the name of one item in a change line, the table title, and the
    seconds between reads (None: no watch)."""

    resource: str
    title: str
    interval: float | None


def show_search(
    options: GlobalOptions,
    build: PageRequest,
    cursor: str | None,
    all_pages: bool,
    view: ResourceView,
    watching: Watching | None = None,
) -> None:
    """Print one page of a search (``build(cursor)`` is its request), or with ``all_pages``
    every match from ``cursor`` on, as one page without a cursor; or watch it.

    With ``all_pages``, `jsonl` and `id` print each item as its page arrives, so a pipe sees
    the first line before the last page is read."""
    if watching is not None and watching.interval is not None:
        watched = watched_search(view, watching.resource, watching.title, build, cursor)
        run_watch(options, watched, watching.interval)
        return
    if all_pages and options.output in (OutputFormat.jsonl, OutputFormat.id):
        _stream_search(options, build, cursor, view)
        return
    with options.client() as client:
        if all_pages:
            items = list(client.iter_pages(build, view.items_key, cursor))
            page: dict[str, Any] = {"cursor": None, view.items_key: items}
        else:
            page = client.send(build(cursor)).body
    options.printer().show_page(page, view)


def _stream_search(
    options: GlobalOptions, build: PageRequest, cursor: str | None, view: ResourceView
) -> None:
    with options.client() as client:
        for item in client.iter_pages(build, view.items_key, cursor):
            write_line(item_line(item, view, options.output))


def _show_registration(options: GlobalOptions, response: ApiResponse) -> None:
    """The note and the registration: the whole `{callback, promise}` body in the data formats,
    the callback alone in table and id, or the promise when it had already completed."""
    printer = options.printer()
    body = response.body
    callback = body.get("callback")
    promise = body.get("promise") or {}
    if response.created:
        printer.note("created")
    elif callback is not None:
        printer.note("deduplicated")
    else:
        printer.note(f"not registered: the promise is already {promise.get('state')}")
    if options.output not in (OutputFormat.table, OutputFormat.id):
        printer.show_object(body, CALLBACK_VIEW)
    elif callback is not None:
        printer.show_object(callback, CALLBACK_VIEW)
    elif options.output is OutputFormat.table:
        printer.show_object(promise, PROMISE_VIEW)


@app.command("callback")
@client_command
def create_callback(
    options: GlobalOptions,
    promise_id: PromiseId,
    root_promise_id: Annotated[
        str,
        typer.Option(
            "--root-promise-id",
            "-r",
            metavar="ID",
            help="The root promise to resume when the promise completes.",
            show_default=False,
        ),
    ],
    timeout: RegistrationTimeoutOption,
    recv: RecvOption = "default",
) -> None:
    """Register a resume callback on a promise."""
    timeout_ms = deadline(timeout, "--timeout")
    target = parse_recv(recv)
    with options.client() as client:
        response = client.create_callback(promise_id, root_promise_id, target, timeout_ms)
    _show_registration(options, response)


@app.command("subscribe")
@client_command
def create_subscription(
    options: GlobalOptions,
    promise_id: PromiseId,
    subscription_id: Annotated[
        str,
        typer.Option(
            "--id",
            "-i",
            metavar="SUBID",
            help="The subscriber's id.",
            show_default=False,
        ),
    ],
    timeout: RegistrationTimeoutOption,
    recv: RecvOption = "default",
) -> None:
    """Subscribe to a promise: one notify message when it completes."""
    timeout_ms = deadline(timeout, "--timeout")
    target = parse_recv(recv)
    with options.client() as client:
        response = client.create_subscription(promise_id, subscription_id, target, timeout_ms)
    _show_registration(options, response)


# --- purge --------------------------------------------------------------------------------------

# Seconds between two progress lines of a purge on stderr; a module attribute for the tests.
PURGE_PROGRESS_SECONDS = 1.0


class PurgeInterrupted(CliError):
    """Ctrl-C while purging: the message says what was purged until then."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True, slots=True)
class PurgeQuery:
    """What `promises purge` deletes, but for its cutoff."""

    states: tuple[PurgeState, ...] | None
    id: str
    tags: dict[str, str]
    limit: int | None


@dataclass(slots=True)
class PurgeTotals:
    promises: int = 0
    tasks: int = 0
    before: int | None = None

    def text(self) -> str:
        return f"{_count(self.promises, 'promise')} ({_count(self.tasks, 'task')})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _completed_before(before: int) -> str:
    return f"completed before {format_timestamp(before, now_ms())}"


@app.command("purge")
@client_command
def purge_promises(
    options: GlobalOptions,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Purge promises completed at least this long ago (30d, 12h, 0s = until now).",
            show_default=False,
        ),
    ],
    state: Annotated[
        list[PurgeStateChoice] | None,
        typer.Option(
            "--state",
            case_sensitive=False,
            help="Only promises completed in this state; repeatable (default: all four).",
            show_default=False,
        ),
    ] = None,
    pattern: Annotated[
        str, typer.Option("--id", metavar="PATTERN", help="Id pattern; '*' is a wildcard.")
    ] = "*",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="K=V", help="Only promises with this tag; repeatable."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=10000,
            metavar="N",
            help="Promises deleted per request, 1 to 10000 (default: the server's "
            "retention batch size).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print how many would go, and some of their ids."),
    ] = False,
    yes: YesOption = False,
) -> None:
    """Delete completed promises older than a cutoff, with their tasks (destructive)."""
    older_than_ms = _duration(older_than, "--older-than")
    states: tuple[PurgeState, ...] | None = None
    if state:
        names = dict.fromkeys(choice.value.upper() for choice in state)
        states = tuple(cast("PurgeState", name) for name in names)
    query = PurgeQuery(states, pattern, key_values(tag, "--tag"), batch_size)
    printer = options.printer()
    if dry_run:
        with options.client() as client:
            dry = _purge_dry_run(client, older_than_ms, query)
        _show_dry_run(options, dry)
        return
    if not yes and not stdin_is_terminal():
        raise ConfirmationRequired("confirmation required: pass --yes to run without a terminal")
    with options.client() as client:
        before: int | None = None
        if not yes:
            dry = _purge_dry_run(client, older_than_ms, query)
            before = dry["before"]
            if dry["count"] == 0:
                _show_purged(options, PurgeTotals(before=before))
                return
            promises = _count(dry["count"], "promise")
            confirm_destructive(f"Purge {promises} {_completed_before(before)}?", yes)
        totals = _run_purge(
            client, printer, query, older_than_ms if before is None else None, before
        )
    _show_purged(options, totals)


def _purge_dry_run(client: ResonateClient, older_than_ms: int, query: PurgeQuery) -> JsonObject:
    from resonate.client import purge_dry_run

    response = client.purge_promises(
        older_than=older_than_ms,
        states=query.states,
        id=query.id,
        tags=query.tags,
        limit=query.limit,
        dry_run=True,
    )
    return purge_dry_run(response.body)


def _run_purge(
    client: ResonateClient,
    printer: Printer,
    query: PurgeQuery,
    older_than: int | None,
    before: int | None,
) -> PurgeTotals:
    """Every batch; a progress line on stderr about every PURGE_PROGRESS_SECONDS. Ctrl-C ends
    it with what was purged so far; a failure after some batches notes what they purged."""
    from resonate.client import ResonateClientError

    totals = PurgeTotals(before=before)
    last_progress = time.monotonic()
    batches = client.iter_purge(
        older_than=older_than,
        before=before,
        states=query.states,
        id=query.id,
        tags=query.tags,
        limit=query.limit,
    )
    in_flight = True
    try:
        for batch in batches:
            in_flight = False
            totals.promises += batch["promises"]
            totals.tasks += batch["tasks"]
            totals.before = batch["before"]
            now = time.monotonic()
            if batch["more"] and now - last_progress >= PURGE_PROGRESS_SECONDS:
                last_progress = now
                printer.note(f"purged {totals.text()}...")
            in_flight = True
    except KeyboardInterrupt:
        maybe = "; the batch under way may have been purged too" if in_flight else ""
        raise PurgeInterrupted(f"interrupted after purging {totals.text()}{maybe}") from None
    except ResonateClientError:
        if totals.promises or totals.tasks:
            printer.note(f"purged {totals.text()} before the error")
        raise
    return totals


def _show_dry_run(options: GlobalOptions, dry: JsonObject) -> None:
    sample = [str(promise_id) for promise_id in dry["sample"]]
    document = {"count": dry["count"], "sample": sample, "before": dry["before"]}
    printer = options.printer()
    if options.output is OutputFormat.id:
        for promise_id in sample:
            write_line(promise_id)
        return
    lines = [f"would purge {_count(dry['count'], 'promise')} {_completed_before(dry['before'])}"]
    lines.extend(f"  {promise_id}" for promise_id in sample)
    if len(sample) < dry["count"]:
        lines.append("  ...")
    printer.show_document(document, "\n".join(lines))


def _show_purged(options: GlobalOptions, totals: PurgeTotals) -> None:
    before = totals.before if totals.before is not None else now_ms()
    document = {"promises": totals.promises, "tasks": totals.tasks, "before": before}
    text = f"purged {totals.text()} {_completed_before(before)}"
    options.printer().show_document(document, text)
