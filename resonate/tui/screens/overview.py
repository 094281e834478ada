"""`1`: the pulse of the server. Counts by state, rates over the last minutes as sparklines
(from `/metrics`), open poll connections per group, and the Stuck panel: pending promises past
their timeout, tasks whose lease is about to end or that were re-issued many times, schedules
that are late, locks whose holder stopped heart-beating. `enter` on a stuck row opens it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal
from textual.widgets import DataTable, Static

from resonate.tui.data import LEASE_WARNING_MS, REISSUE_WARNING_COUNTER, DataSource, Stuck
from resonate.tui.formatting import countdown, relative
from resonate.tui.metrics import SERIES
from resonate.tui.screens.base import LiveScreen
from resonate.tui.screens.resources import JsonObject, state_text
from resonate.tui.widgets.resource_table import ResourceTable
from resonate.tui.widgets.server_header import WIDE_COLUMNS
from resonate.tui.widgets.sparkline_panel import SparklinePanel

PROMISE_STATES = ("PENDING", "RESOLVED", "REJECTED", "REJECTED_CANCELED", "REJECTED_TIMEDOUT")
TASK_STATES = ("INIT", "ENQUEUED", "CLAIMED", "COMPLETED", "TIMEDOUT")
TASK_2026_STATES = ("pending", "acquired", "suspended", "halted", "fulfilled")


def counts_table(title: str, counts: Mapping[str, int], states: tuple[str, ...]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row(Text(title, style="bold"), Text(f"{sum(counts.values()):,}", style="bold"))
    for state in states:
        table.add_row(state_text(state), f"{counts.get(state, 0):,}")
    return table


def stuck_rows(stuck: Stuck, now: int) -> list[tuple[str, tuple[str | Text, ...], JsonObject]]:
    """(row key, cells, object) for each stuck thing, the worst kinds first."""
    rows: list[tuple[str, tuple[str | Text, ...], JsonObject]] = []
    for promise in stuck.promises:
        why = f"pending, timeout passed {relative(promise.get('timeout'), now)}"
        rows.append(
            (f"promise:{promise.get('id')}", ("promise", str(promise.get("id")), why), promise)
        )
    for task in stuck.tasks:
        if task.get("reason") == "lease":
            lease = countdown(task.get("expiresAt"), now)
            why = f"claimed by {task.get('processId') or '?'}, lease {lease}"
        else:
            why = f"re-issued: counter {task.get('counter')}, state {task.get('state')}"
        rows.append((f"task:{task.get('id')}", ("task", str(task.get("id")), why), task))
    for schedule in stuck.schedules:
        why = f"next run was due {relative(schedule.get('nextRunTime'), now)}"
        rows.append(
            (f"schedule:{schedule.get('id')}", ("schedule", str(schedule.get("id")), why), schedule)
        )
    for lock in stuck.locks:
        expiry = countdown(lock.get("expiresAt"), now)
        why = f"no heartbeat from {lock.get('processId')}, expires {expiry}"
        rows.append(
            (f"lock:{lock.get('resourceId')}", ("lock", str(lock.get("resourceId")), why), lock)
        )
    return rows


class OverviewScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "copy", "Copy")]
    view_name = "overview"

    def __init__(self) -> None:
        super().__init__()
        self.stuck_objects: dict[str, JsonObject] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="counts"):
            yield Static(id="count-promises", classes="count")
            yield Static(id="count-tasks", classes="count")
            yield Static(id="count-other", classes="count")
        with Grid(id="sparks"):
            for key, title, short_title, unit in SERIES:
                yield SparklinePanel(key, title, short_title, unit)
        yield Static(
            f" Stuck · pending past timeout · lease < {LEASE_WARNING_MS // 1000}s or counter ≥ "
            f"{REISSUE_WARNING_COUNTER} · late schedules · locks without heartbeat",
            id="stuck-title",
        )
        yield ResourceTable(("KIND", "ID", "WHY"), id="stuck")

    def on_mount(self) -> None:
        self.query_one("#stuck", ResourceTable).focus()
        self._show_counts()
        self._show_rates()

    async def fetch(self, data: DataSource) -> Stuck:
        return await data.stuck()

    def show_status(self) -> None:
        self._show_counts()

    def show(self, payload: Stuck) -> None:
        self._show_counts()
        self._show_rates()
        now = self.resonate.now_ms()
        rows = stuck_rows(payload, now)
        self.stuck_objects = {key: document for key, _, document in rows}
        table = self.query_one("#stuck", ResourceTable)
        table.show_rows([(key, cells) for key, cells, _ in rows], self.resonate.clock())
        title = self.query_one("#stuck-title", Static)
        title.set_class(bool(rows), "-alert")

    def _show_counts(self) -> None:
        status = self.resonate.connection.status
        if status is None:
            return
        self.query_one("#count-promises", Static).update(
            counts_table("promises", status.promises, PROMISE_STATES)
        )
        tasks = counts_table("tasks", status.tasks, TASK_STATES)
        if any(status.tasks_2026.values()):
            # The 2026 protocol's tasks (today's SDKs), their states in the same style: only
            # those with any, so a REST-only server's panel keeps its size.
            total = sum(status.tasks_2026.values())
            tasks.add_row(Text("2026 tasks", style="bold"), Text(f"{total:,}", style="bold"))
            for state in TASK_2026_STATES:
                if status.tasks_2026.get(state):
                    tasks.add_row(state_text(state.upper()), f"{status.tasks_2026[state]:,}")
        self.query_one("#count-tasks", Static).update(tasks)
        other = Table.grid(padding=(0, 1))
        other.add_column(no_wrap=True)
        other.add_column(justify="right", no_wrap=True)
        other.add_row(Text("schedules", style="bold"), f"{status.schedules:,}")
        other.add_row(Text("locks held", style="bold"), f"{status.locks:,}")
        other.add_row(Text("poll connections", style="bold"), "")
        groups = self.resonate.history.poll_connections()
        if self.resonate.metrics_error is not None:
            other.add_row(Text("  metrics unavailable", style="dim"), "")
        elif not groups:
            other.add_row(Text("  none", style="dim"), "")
        for group, count in sorted(groups.items()):
            other.add_row(f"  {group}", f"{count:,.0f}")
        self.query_one("#count-other", Static).update(other)

    def _show_rates(self) -> None:
        history = self.resonate.history
        available = self.resonate.metrics_error is None
        narrow = self.app.size.width < WIDE_COLUMNS
        for key, _, _, _ in SERIES:
            panel = self.query_one(f"#spark-{key}", SparklinePanel)
            panel.show(history.values(key), history.latest(key), available, narrow)

    def selected(self) -> JsonObject | None:
        key = self.query_one("#stuck", ResourceTable).selected_key
        return self.stuck_objects.get(key) if key else None

    def action_copy(self) -> None:
        self.resonate.copy_object("object", self.selected())

    @on(DataTable.RowSelected, "#stuck")
    def open_stuck(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        document = self.stuck_objects.get(key)
        if document is None:
            return
        kind = key.split(":", 1)[0]
        from resonate.tui.screens.locks import LockDetailScreen
        from resonate.tui.screens.promise_detail import PromiseDetailScreen
        from resonate.tui.screens.schedules import ScheduleDetailScreen
        from resonate.tui.screens.tasks import TaskDetailScreen

        if kind == "promise":
            self.app.push_screen(PromiseDetailScreen(str(document["id"])))
        elif kind == "task":
            self.app.push_screen(TaskDetailScreen(str(document["id"]), document))
        elif kind == "schedule":
            self.app.push_screen(ScheduleDetailScreen(str(document["id"]), document))
        elif kind == "lock":
            self.app.push_screen(LockDetailScreen(str(document["resourceId"]), document))
