"""`1`: the pulse of the server. Counts by state, rates over the last minutes as sparklines
(from `/metrics`), the worker groups (open poll connections, undelivered tasks), and the Stuck
panel: the findings of the server's `GET /doctor` (overdue promises, re-issued, unroutable or
expired tasks, late schedules, stale locks, groups without connections, stalled loops, a slow
or full store), worst first, with the suggested action of the selected one. `enter` on a
finding about a promise, task, schedule or lock opens it. A server older than `/doctor` (404)
is read through `GET /stuck` instead, in that endpoint's own table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import DataTable, Static

from resonate.tui.data import (
    LEASE_WARNING_MS,
    REISSUE_WARNING_COUNTER,
    DataSource,
    Doctor,
    Finding,
    GroupHealth,
    Stuck,
)
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
# How each severity reads in the SEV column (a word, so it reads without colour too).
SEVERITY_CELLS = {
    "error": Text("error", style="bold red"),
    "warning": Text("warn", style="yellow"),
    "info": Text("info", style="dim"),
}
# Findings about these kinds, with an id, open that object's detail on `enter`.
OPENABLE_KINDS = ("promise", "task", "schedule", "lock")
# The ID column's width in the findings table (longer ids end in …), and the least the
# MESSAGE column gets; the table leaves room for its vertical scrollbar.
ID_CELLS_WIDE = 32
ID_CELLS_NARROW = 20
MESSAGE_MIN_WIDTH = 16
SCROLLBAR_WIDTH = 2
# Rows of worker groups the counts box has room for (it shows 6 lines, like the others).
GROUP_ROWS = 3
STUCK_TITLE = (
    f" Stuck · pending past timeout · lease < {LEASE_WARNING_MS // 1000}s or counter ≥ "
    f"{REISSUE_WARNING_COUNTER} · late schedules · locks without heartbeat"
)


def counts_table(title: str, counts: Mapping[str, int], states: tuple[str, ...]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row(Text(title, style="bold"), Text(f"{sum(counts.values()):,}", style="bold"))
    for state in states:
        table.add_row(state_text(state), f"{counts.get(state, 0):,}")
    return table


def finding_rows(doctor: Doctor, width: int) -> list[tuple[str, tuple[str | Text, ...], Finding]]:
    """(row key, cells, finding) for each finding of the doctor, worst first, each message cut
    to what is left of `width` columns (the whole of it shows under the table)."""
    id_width = ID_CELLS_WIDE if width >= WIDE_COLUMNS else ID_CELLS_NARROW
    cells_of: list[tuple[Text, str, Text]] = []
    for finding in doctor.findings:
        severity = SEVERITY_CELLS.get(finding.severity, Text(finding.severity, style="yellow"))
        subject = Text(finding.id or "", overflow="ellipsis", no_wrap=True)
        subject.truncate(id_width, overflow="ellipsis")
        cells_of.append((severity, finding.check, subject))
    used = sum(
        max([len(name), *(cell_len_of(cells[index]) for cells in cells_of)]) + 2
        for index, name in enumerate(("SEV", "CHECK", "ID"))
    )
    message_width = max(MESSAGE_MIN_WIDTH, width - used - 2 - SCROLLBAR_WIDTH)
    rows: list[tuple[str, tuple[str | Text, ...], Finding]] = []
    seen: set[str] = set()
    for finding, (severity, check, subject) in zip(doctor.findings, cells_of, strict=True):
        key = f"{finding.check}:{finding.id or ''}"
        if key in seen:  # the same check twice on one subject (or twice without one)
            key = f"{key}#{len(rows)}"
        seen.add(key)
        message = Text(finding.message, no_wrap=True)
        message.truncate(message_width, overflow="ellipsis")
        rows.append((key, (severity, check, subject, message), finding))
    return rows


def cell_len_of(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def doctor_title(doctor: Doctor) -> Text:
    """The panel's title line: the counts by severity, or that all is well."""
    title = Text(" Stuck · ")
    if doctor.ok:
        title.append("nothing stuck · healthy", style="bold green")
    else:
        parts = [
            f"{count} {noun}{'' if count == 1 else 's'}"
            for count, noun in (
                (doctor.count("error"), "error"),
                (doctor.count("warning"), "warning"),
            )
            if count
        ]
        title.append(" · ".join(parts) or "not ok")
    infos = doctor.count("info")
    if infos:
        title.append(f" · {infos} info", style="" if not doctor.ok else "dim")
    return title


def healthy_line(doctor: Doctor) -> Text:
    """What the doctor looked at, in one line: for a panel with nothing to select."""
    line = Text()
    loops = doctor.loops
    if loops:
        stalled = [str(loop.get("name")) for loop in loops if not loop.get("ok")]
        if stalled:
            line.append(f"loops stalled: {', '.join(stalled)}", style="red")
        else:
            line.append(f"{len(loops)} loops running", style="green")
    store = doctor.store
    if store:
        line.append(f"{' · ' if line else ''}store {store.get('kind') or '?'}")
        p99 = store.get("batchP99Ms")
        if isinstance(p99, int | float):
            line.append(f", batch p99 {p99:.1f} ms")
        free = store.get("diskFreeBytes")
        if isinstance(free, int) and not isinstance(free, bool):
            line.append(f", {free / 1e9:.1f} GB free")
        pending = store.get("migrationsPending")
        if pending:
            line.append(f", {pending} migrations pending", style="yellow")
    return line


def finding_line(finding: Finding) -> Text:
    """The selected finding in full: its message, its suggested action, where `enter` goes."""
    line = Text(f"{finding.message}\n")
    line.append("→ ", style="bold")
    line.append(finding.action or "no action suggested", style="" if finding.action else "dim")
    if finding.kind in OPENABLE_KINDS and finding.id:
        line.append(f"  (enter opens the {finding.kind})", style="dim")
    return line


def groups_rows(table: Table, groups: list[GroupHealth]) -> None:
    """The worker groups as `name  connections  undelivered`, the groups with tasks waiting
    and nobody connected first (in red), at most `GROUP_ROWS` lines."""
    table.add_row(
        Text("worker groups", style="bold"), Text("conn", style="dim"), Text("queued", style="dim")
    )
    if not groups:
        table.add_row(Text("  none", style="dim"), "", "")
        return
    ordered = sorted(groups, key=lambda g: (not (g.connections == 0 and g.undelivered), g.group))
    shown = ordered if len(ordered) <= GROUP_ROWS else ordered[: GROUP_ROWS - 1]
    for group in shown:
        style = "red" if group.connections == 0 and group.undelivered else ""
        table.add_row(
            Text(f"  {group.group}", style=style, overflow="ellipsis", no_wrap=True),
            f"{group.connections:,}",
            Text(f"{group.undelivered:,}", style=style),
        )
    if len(shown) < len(ordered):
        table.add_row(Text(f"  +{len(ordered) - len(shown)} more", style="dim"), "", "")


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
        self.findings: dict[str, Finding] = {}  # by row key, from GET /doctor
        self.groups: list[GroupHealth] | None = None  # None: not from /doctor (metrics)
        self.stuck_objects: dict[str, JsonObject] = {}  # by row key, from GET /stuck
        self.legacy = False  # the server has no /doctor: the /stuck table shows
        self.doctor: Doctor | None = None  # the last answer of GET /doctor
        self._width = 0  # the width the findings' cells were cut to

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="counts"):
            yield Static(id="count-promises", classes="count")
            yield Static(id="count-tasks", classes="count")
            yield Static(id="count-other", classes="count")
        with Grid(id="sparks"):
            for key, title, short_title, unit in SERIES:
                yield SparklinePanel(key, title, short_title, unit)
        yield Static(" Stuck", id="stuck-title")
        with Vertical(id="stuck-panel"):
            yield ResourceTable(("SEV", "CHECK", "ID", "MESSAGE"), id="findings")
            yield ResourceTable(("KIND", "ID", "WHY"), id="stuck")
            yield Static(id="finding")

    def on_mount(self) -> None:
        self.query_one("#stuck", ResourceTable).display = False
        self.query_one("#findings", ResourceTable).focus()
        self._show_counts()
        self._show_rates()

    async def fetch(self, data: DataSource) -> Doctor | Stuck:
        return await data.health()

    def show_status(self) -> None:
        self._show_counts()

    def show(self, payload: Doctor | Stuck) -> None:
        if isinstance(payload, Doctor):
            self.groups = payload.groups
            self._show_doctor(payload)
        else:
            self.groups = None
            self._show_stuck(payload)
        self._show_counts()
        self._show_rates()

    def _use_table(self, legacy: bool) -> ResourceTable:
        """Show the doctor's table or the /stuck one, focused unless something else on the
        screen has the focus; return it."""
        shown = self.query_one("#stuck" if legacy else "#findings", ResourceTable)
        self.query_one("#findings" if legacy else "#stuck", ResourceTable).display = False
        self.legacy = legacy
        shown.display = True
        if self.focused is None or isinstance(self.focused, ResourceTable):
            shown.focus()
        return shown

    def _show_doctor(self, doctor: Doctor) -> None:
        width = self.app.size.width
        rows = finding_rows(doctor, width)
        self.findings = {key: finding for key, _, finding in rows}
        self.stuck_objects = {}
        table = self._use_table(legacy=False)
        if width != self._width:  # cells cut to another width: columns sized afresh
            self._width = width
            table.remeasure()
        table.show_rows([(key, cells) for key, cells, _ in rows], self.resonate.clock())
        # Nothing to list: no empty table, the line of what was checked right under the title.
        table.display = bool(rows)
        title = self.query_one("#stuck-title", Static)
        title.update(doctor_title(doctor))
        title.set_class(not doctor.ok, "-alert")
        title.set_class(doctor.ok, "-healthy")
        self.doctor = doctor
        self._show_selected()

    def _show_stuck(self, stuck: Stuck) -> None:
        rows = stuck_rows(stuck, self.resonate.now_ms())
        self.stuck_objects = {key: document for key, _, document in rows}
        self.findings = {}
        self.doctor = None
        table = self._use_table(legacy=True)
        table.show_rows([(key, cells) for key, cells, _ in rows], self.resonate.clock())
        title = self.query_one("#stuck-title", Static)
        title.update(STUCK_TITLE)
        title.set_class(bool(rows), "-alert")
        title.set_class(False, "-healthy")
        self.query_one("#finding", Static).update(
            Text("this server has no GET /doctor (older version): read from GET /stuck", "dim")
        )

    def _show_selected(self) -> None:
        """The lines under the findings: the selected one in full, or what was checked."""
        if self.doctor is None:
            return
        finding = self.selected_finding()
        line = self.query_one("#finding", Static)
        line.update(healthy_line(self.doctor) if finding is None else finding_line(finding))

    @on(DataTable.RowHighlighted, "#findings")
    def finding_highlighted(self) -> None:
        self._show_selected()

    def on_resize(self) -> None:
        if self.doctor is not None:
            self._show_doctor(self.doctor)

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
        other.add_column(no_wrap=True, overflow="ellipsis")
        other.add_column(justify="right", no_wrap=True)
        if self.groups is not None:
            # From /doctor: connections and undelivered tasks, without needing /metrics.
            other.add_column(justify="right", no_wrap=True)
            other.add_row(Text("schedules", style="bold"), f"{status.schedules:,}", "")
            other.add_row(Text("locks held", style="bold"), f"{status.locks:,}", "")
            groups_rows(other, self.groups)
            self.query_one("#count-other", Static).update(other)
            return
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

    def selected_finding(self) -> Finding | None:
        key = self.query_one("#findings", ResourceTable).selected_key
        return self.findings.get(key) if key else None

    def selected(self) -> JsonObject | None:
        if not self.legacy:
            finding = self.selected_finding()
            return finding.document if finding is not None else None
        key = self.query_one("#stuck", ResourceTable).selected_key
        return self.stuck_objects.get(key) if key else None

    def action_copy(self) -> None:
        self.resonate.copy_object("finding" if not self.legacy else "object", self.selected())

    @on(DataTable.RowSelected, "#findings")
    def open_finding(self, event: DataTable.RowSelected) -> None:
        finding = self.findings.get(event.row_key.value or "")
        if finding is None or finding.kind not in OPENABLE_KINDS or not finding.id:
            return
        self._open(finding.kind, finding.id, None)

    @on(DataTable.RowSelected, "#stuck")
    def open_stuck(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        document = self.stuck_objects.get(key)
        if document is None:
            return
        kind = key.split(":", 1)[0]
        object_id = document["resourceId"] if kind == "lock" else document["id"]
        self._open(kind, str(object_id), document)

    def _open(self, kind: str, object_id: str, document: JsonObject | None) -> None:
        """The detail of a promise, task, schedule or lock (read from the server when no
        document comes with it)."""
        from resonate.tui.screens.locks import LockDetailScreen
        from resonate.tui.screens.promise_detail import PromiseDetailScreen
        from resonate.tui.screens.schedules import ScheduleDetailScreen
        from resonate.tui.screens.tasks import TaskDetailScreen

        if kind == "promise":
            self.app.push_screen(PromiseDetailScreen(object_id))
        elif kind == "task":
            self.app.push_screen(TaskDetailScreen(object_id, document))
        elif kind == "schedule":
            self.app.push_screen(ScheduleDetailScreen(object_id, document))
        elif kind == "lock":
            self.app.push_screen(LockDetailScreen(object_id, document))
