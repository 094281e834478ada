"""The CLI's two poll loops: `--wait` for a promise to complete, `--watch` on a search or object.

Neither subscribes to the server: a subscription needs a recv the CLI would have to listen on,
and reads are cheap. `--wait` backs off (100 ms, doubling up to 2 s), so a short function
answers quickly and a long wait costs one read every 2 s; `--watch` reads every `-n` seconds
(default 2).

The clock and the sleep of both loops come from `TIMING`, which tests replace, so that no test
waits for real time to pass.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from resonate.cli.errors import ExitCode
from resonate.cli.output import (
    JsonObject,
    OutputFormat,
    Printer,
    ResourceView,
    change_line,
    describe_error,
    field_table,
    item_line,
    live_console,
    now_ms,
    rows_table,
    write_line,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from resonate.cli.options import GlobalOptions
    from resonate.client import ApiResponse, PageRequest, ResonateClient


@dataclass(frozen=True, slots=True)
class PollTiming:
    """Where the poll loops read the time (seconds, monotonic) and how they pause."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


# Read by the loops at each run; tests replace it to drive them without waiting.
TIMING = PollTiming()


# --- --wait -------------------------------------------------------------------------------------

FIRST_WAIT_INTERVAL_SECONDS = 0.1
MAX_WAIT_INTERVAL_SECONDS = 2.0


def wait_for_completion(
    client: ResonateClient,
    promise_id: str,
    timeout_seconds: float | None,
    timing: PollTiming,
) -> JsonObject:
    """Read the promise until it is no longer PENDING or `timeout_seconds` (None: no limit)
    have passed; the last promise read, which is PENDING only when the time ran out.

    A read times an overdue promise out on the server (http-api.md §2.2), so a wait without a
    limit still ends, at the latest, at the promise's own timeout.
    """
    deadline = None if timeout_seconds is None else timing.clock() + timeout_seconds
    interval = FIRST_WAIT_INTERVAL_SECONDS
    while True:
        promise: JsonObject = client.get_promise(promise_id).body
        if promise.get("state") != "PENDING":
            return promise
        pause = interval
        if deadline is not None:
            remaining = deadline - timing.clock()
            if remaining <= 0:
                return promise
            pause = min(pause, remaining)
        timing.sleep(pause)
        interval = min(interval * 2, MAX_WAIT_INTERVAL_SECONDS)


def result_text(value: JsonObject | None) -> str:
    """A completed promise's value for humans: its data as text (SDKs store JSON), else base64."""
    from resonate.client import decode_value_text

    if not value or not value.get("data"):
        return ""
    text = decode_value_text(value)
    return text if text is not None else str(value["data"])


def _fail(options: GlobalOptions, message: str, exit_code: int) -> NoReturn:
    options.printer().error(message)
    raise typer.Exit(int(exit_code))


def wait_and_show(
    options: GlobalOptions,
    client: ResonateClient,
    promise_id: str,
    timeout_ms: int | None,
    timeout_text: str | None,
    show: Callable[[JsonObject], None],
) -> None:
    """The one `--wait` (`promises get`, `invoke`): wait, `show` the completed promise, and end
    with exit code 0 when it is RESOLVED, `ExitCode.NOT_RESOLVED` or `ExitCode.STILL_PENDING`
    otherwise. Ctrl-C is left to the root
    command (exit 130)."""
    timeout_seconds = None if timeout_ms is None else timeout_ms / 1000
    promise = wait_for_completion(client, promise_id, timeout_seconds, TIMING)
    state = promise.get("state")
    if state == "PENDING":
        _fail(
            options,
            f"promise {promise_id!r} is still PENDING after {timeout_text}; it goes on "
            f"(wait again: resonate promises get {shlex.quote(promise_id)} --wait)",
            ExitCode.STILL_PENDING,
        )
    show(promise)
    if state != "RESOLVED":
        reason = result_text(promise.get("value"))
        detail = f": {reason}" if reason else ""
        _fail(options, f"promise {promise_id!r} is {state}{detail}", ExitCode.NOT_RESOLVED)


# --- --watch ------------------------------------------------------------------------------------

DEFAULT_WATCH_INTERVAL_SECONDS = 2.0
MIN_WATCH_INTERVAL_SECONDS = 0.1

WatchOption = Annotated[
    bool,
    typer.Option(
        "--watch",
        "-w",
        help="Keep reading until Ctrl-C: a table redrawn in place, or with -o jsonl one line "
        "per change (created, changed, gone).",
    ),
]
IntervalOption = Annotated[
    float | None,
    typer.Option(
        "--interval",
        "-n",
        min=MIN_WATCH_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="Seconds between the reads of --watch.  [default: 2]",
        show_default=False,
    ),
]

# The items a read found, by id, in the server's order.
Snapshot = dict[str, JsonObject]


def watch_interval(options: GlobalOptions, watch: bool, interval: float | None) -> float | None:
    """The seconds between reads, or None without `--watch`; usage errors (exit 2) for
    `-n` alone and for the formats a change feed cannot have."""
    if not watch:
        if interval is not None:
            raise typer.BadParameter("needs --watch", param_hint="'--interval' / '-n'")
        return None
    if options.output in (OutputFormat.json, OutputFormat.yaml):
        raise typer.BadParameter(
            "--watch prints a table, -o jsonl (one line per change) or -o id (new matches)",
            param_hint="'--output'",
        )
    return DEFAULT_WATCH_INTERVAL_SECONDS if interval is None else interval


@dataclass(frozen=True, slots=True)
class Watched:
    """What a watch reads: the items' view, the name of one item (the key of a jsonl line), a
    title for the table, how to read the current items, and for `get` the one object's id."""

    view: ResourceView
    resource: str
    title: str
    read: Callable[[ResonateClient], Snapshot]
    object_id: str | None = None


def watched_search(
    view: ResourceView, resource: str, title: str, build: PageRequest, cursor: str | None
) -> Watched:
    """A search: every page of it (from `cursor` on) at each read."""

    def read(client: ResonateClient) -> Snapshot:
        items = client.iter_pages(build, view.items_key, cursor)
        return {str(item.get(view.id_key, "")): item for item in items}

    return Watched(view, resource, title, read)


def watched_object(
    view: ResourceView,
    resource: str,
    title: str,
    object_id: str,
    get: Callable[[ResonateClient], ApiResponse],
) -> Watched:
    """One object; a 404 means it is absent for now (a lock released, a schedule deleted)."""

    def read(client: ResonateClient) -> Snapshot:
        from resonate.client import ApiError

        try:
            return {object_id: get(client).body}
        except ApiError as error:
            if error.status == 404:
                return {}
            raise

    return Watched(view, resource, title, read, object_id)


def show_or_watch(
    options: GlobalOptions,
    watch: bool,
    interval: float | None,
    view: ResourceView,
    resource: str,
    title: str,
    object_id: str,
    get: Callable[[ResonateClient], ApiResponse],
) -> None:
    """A `get` command: read the object once and print it, or with --watch keep reading it."""
    watch_seconds = watch_interval(options, watch, interval)
    if watch_seconds is not None:
        run_watch(options, watched_object(view, resource, title, object_id, get), watch_seconds)
        return
    with options.client() as client:
        response = get(client)
    options.printer().show_object(response.body, view)


@dataclass(frozen=True, slots=True)
class Change:
    event: str  # "created" (new to the watch), "changed" (any field), "gone" (no longer found)
    item: JsonObject  # the item as read now; for "gone", as last seen


def changes_between(before: Snapshot, after: Snapshot) -> list[Change]:
    """What happened between two reads: new and changed items in the order of `after`, then
    the items that are gone."""
    changes = [
        Change("created" if key not in before else "changed", item)
        for key, item in after.items()
        if before.get(key) != item
    ]
    changes.extend(Change("gone", item) for key, item in before.items() if key not in after)
    return changes


def run_watch(options: GlobalOptions, watched: Watched, interval: float) -> None:
    """Read `watched` every `interval` seconds and show what changed, until Ctrl-C, which is
    how a watch is meant to end: exit 0, not the 130 of an interrupted command."""
    try:
        with options.client() as client, _display(options, watched, interval) as display:
            before: Snapshot = {}
            for snapshot in _reads(client, watched, interval, TIMING, display):
                display.show(snapshot, changes_between(before, snapshot))
                before = snapshot
    except KeyboardInterrupt:
        return


def _reads(
    client: ResonateClient,
    watched: Watched,
    interval: float,
    timing: PollTiming,
    display: _Display,
) -> Iterator[Snapshot]:
    """One snapshot per `interval` (counted from the start of each read). A first read that
    fails ends the watch with its exit code; later, a server that cannot be reached or
    answers 5xx is shown and read again, so a watch outlives a server restart."""
    from resonate.client import ApiError, ServerUnreachable

    first = True
    while True:
        started = timing.clock()
        try:
            snapshot = watched.read(client)
        except (ServerUnreachable, ApiError) as error:
            transient = isinstance(error, ServerUnreachable) or error.status >= 500
            if first or not transient:
                raise
            display.failed(error)
        else:
            first = False
            yield snapshot
        timing.sleep(max(0.0, started + interval - timing.clock()))


def _title(watched: Watched, interval: float, snapshot: Snapshot) -> str:
    """`Every 2s: promises search order-*  3 found  2025-03-01T12:00:00Z`."""
    moment = datetime.fromtimestamp(now_ms() / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    count = "" if watched.object_id else f"  {len(snapshot)} found"
    return f"Every {interval:g}s: {watched.title}{count}  {moment}"


class _Display:
    """Shows the reads of a watch; reports an outage once, and the recovery."""

    def __init__(self, printer: Printer, watched: Watched, interval: float) -> None:
        self.printer = printer
        self.watched = watched
        self.interval = interval
        self.failing = False

    def show(self, snapshot: Snapshot, changes: list[Change]) -> None:
        if self.failing:
            self.failing = False
            self.printer.note("reconnected")

    def failed(self, error: Exception) -> None:
        if not self.failing:
            self.failing = True
            self.printer.note(f"{describe_error(error)}; retrying every {self.interval:g}s")


class _ChangeFeed(_Display):
    """`-o jsonl`: `{"event": …, "<resource>": {…}}` per change; the first read's items are
    all `created`, as in other watch feeds (kubectl's ADDED)."""

    def show(self, snapshot: Snapshot, changes: list[Change]) -> None:
        super().show(snapshot, changes)
        for change in changes:
            write_line(change_line(change.event, self.watched.resource, change.item))


class _NewIds(_Display):
    """`-o id`: the id of each item as it appears."""

    def show(self, snapshot: Snapshot, changes: list[Change]) -> None:
        super().show(snapshot, changes)
        for change in changes:
            if change.event == "created":
                write_line(item_line(change.item, self.watched.view, OutputFormat.id))


class _TableLog(_Display):
    """A table on stdout that is not a terminal: the title and the table again at each change."""

    def __init__(self, printer: Printer, watched: Watched, interval: float) -> None:
        super().__init__(printer, watched, interval)
        self.shown = False

    def show(self, snapshot: Snapshot, changes: list[Change]) -> None:
        super().show(snapshot, changes)
        if self.shown and not changes:
            return
        if self.shown:
            write_line("")
        self.shown = True
        write_line(_title(self.watched, self.interval, snapshot))
        view = self.watched.view
        if self.watched.object_id is None:
            self.printer.show_page({"cursor": None, view.items_key: [*snapshot.values()]}, view)
        elif snapshot:
            self.printer.show_object(next(iter(snapshot.values())), view)
        else:
            write_line(f"not found: {self.watched.object_id}")


class _LiveTable(_Display):
    """A table on a terminal, redrawn in place at every read (the relative times move on)."""

    def __init__(self, printer: Printer, watched: Watched, interval: float, live: Live) -> None:
        super().__init__(printer, watched, interval)
        self.live = live
        self.snapshot: Snapshot = {}
        self.error: Exception | None = None

    def show(self, snapshot: Snapshot, changes: list[Change]) -> None:
        self.snapshot, self.error = snapshot, None
        self.live.update(self.render(), refresh=True)

    def failed(self, error: Exception) -> None:
        self.error = error
        self.live.update(self.render(), refresh=True)

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        now = now_ms()
        header = Text(_title(self.watched, self.interval, self.snapshot), style="dim")
        if self.error is not None:
            header.append(f"  {describe_error(self.error)} (retrying)", style="red")
        view = self.watched.view
        body: Any
        if self.watched.object_id is None:
            body = rows_table([*self.snapshot.values()], view, now)
        elif self.snapshot:
            body = field_table(next(iter(self.snapshot.values())), view, now)
        else:
            body = Text(f"not found: {self.watched.object_id}")
        return Group(header, Text(""), body)


@contextlib.contextmanager
def _display(options: GlobalOptions, watched: Watched, interval: float) -> Iterator[_Display]:
    printer = options.printer()
    if options.output is OutputFormat.jsonl:
        yield _ChangeFeed(printer, watched, interval)
    elif options.output is OutputFormat.id:
        yield _NewIds(printer, watched, interval)
    else:
        console = live_console(options.no_color)
        if not console.is_interactive:
            yield _TableLog(printer, watched, interval)
            return
        with _live(console) as live:
            yield _LiveTable(printer, watched, interval, live)


@contextlib.contextmanager
def _live(console: Console) -> Iterator[Live]:
    from rich.live import Live

    # Redrawn by each read, not by a timer thread: nothing changes between reads.
    with Live(console=console, auto_refresh=False) as live:
        yield live
