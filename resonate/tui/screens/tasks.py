"""`3`: tasks with state, counter, attempt, recv, process and a live lease countdown; a task's
detail; `d` drops a claimed task (it is re-issued with the next counter).

The tasks of the 2026-04-01 protocol are listed after the REST ones (PROTO `2026`): their
version in COUNTER, their pid in PROCESS, their state in capitals like a REST state; their
detail shows version, resumes, and pid/ttl while acquired. Dropping is a REST verb."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from resonate.client import is_2026_record
from resonate.tui import actions
from resonate.tui.data import DataError, DataSource, Page, TaskFilter
from resonate.tui.formatting import countdown, relative
from resonate.tui.screens.detail import ObjectDetailScreen
from resonate.tui.screens.resources import (
    FilterField,
    JsonObject,
    ResourceListScreen,
    pattern_of,
    state_text,
)
from resonate.tui.widgets.detail_pane import Row
from resonate.tui.widgets.resource_table import Cells

TASK_STATES = (
    *("init", "enqueued", "claimed", "completed", "timedout"),
    *("pending", "acquired", "suspended", "halted", "fulfilled"),
)
PROTOCOLS = ("rest", "2026")
TASK_TIMES = ("timeout", "expiresAt", "createdOn", "completedOn")


def recv_text(recv: Any) -> str:
    if isinstance(recv, str):
        return recv
    if isinstance(recv, dict):
        data = recv.get("data")
        if isinstance(data, dict):
            where = data.get("url") or "/".join(str(data.get(k, "")) for k in ("group", "id"))
            return f"{recv.get('type', '')}:{where}".rstrip("/")
        return json.dumps(recv, separators=(",", ":"))
    return ""


def protocol_text(task: JsonObject) -> str:
    return "2026" if is_2026_record(task) else "rest"


def root_text(task: JsonObject) -> str:
    """A REST task's root promise; a 2026 task's origin, the part of its id before `:`."""
    if is_2026_record(task):
        return str(task.get("id", "")).split(":", 1)[0]
    return str(task.get("rootPromiseId", ""))


def deadline_text(task: JsonObject, now: int) -> str:
    """The lease (CLAIMED) or claim deadline (ENQUEUED) as a countdown; nothing once ended."""
    if task.get("state") in ("CLAIMED", "ENQUEUED"):
        return countdown(task.get("expiresAt"), now)
    return ""


def task_2026_rows(task: JsonObject) -> list[Row]:
    """What a 2026 task's fields mean: who holds it (pid and ttl exist only while acquired)
    and how many awaited promises settled since its last acquisition."""
    if str(task.get("state")) == "acquired":
        held = f"{task.get('pid') or '?'} (lease ttl {task.get('ttl')} ms)"
    else:
        held = "nobody"
    return [
        ("held by", held),
        ("resumes", f"{task.get('resumes', 0)} awaited settled since the last acquire"),
        ("drop (d)", "for REST tasks only"),
    ]


class DropTask:
    def selected_task(self) -> JsonObject | None:
        raise NotImplementedError

    def action_drop_task(self) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        actions.start(app, actions.drop_task(app, self.selected_task()))


class TasksScreen(DropTask, ResourceListScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "drop_task", "Drop")]
    view_name = "tasks"
    kind = "task"
    columns = ("ID", "STATE", "PROTO", "COUNTER", "ATTEMPT", "PROCESS", "RECV", "LEASE", "ROOT")
    filters = (
        FilterField("pattern", "id pattern (* wildcard)  [/]"),
        FilterField("state", "any state", TASK_STATES),
        FilterField("protocol", "rest+2026", PROTOCOLS, width=18),
        FilterField("process", "process id"),
        FilterField("root", "root promise id"),
    )

    def parse_filter(self, values: dict[str, str]) -> TaskFilter:
        return TaskFilter(
            pattern=pattern_of(values.get("pattern", "")),
            state=values.get("state") or None,
            process_id=values.get("process") or None,
            root_promise_id=values.get("root") or None,
            protocol=values.get("protocol") or None,
        )

    async def page(
        self, data: DataSource, where: TaskFilter, cursor: str | None, limit: int
    ) -> Page:
        return await data.tasks(where, cursor, limit)

    def cells(self, item: JsonObject, now: int) -> Cells:
        if is_2026_record(item):
            return (
                str(item.get("id", "")),
                state_text(item.get("state")),
                protocol_text(item),
                str(item.get("version", "")),
                "",
                str(item.get("pid") or ""),
                "",
                "",
                root_text(item),
            )
        return (
            str(item.get("id", "")),
            state_text(item.get("state")),
            protocol_text(item),
            str(item.get("counter", "")),
            str(item.get("attempt", "")),
            str(item.get("processId") or ""),
            recv_text(item.get("recv")),
            deadline_text(item, now),
            str(item.get("rootPromiseId", "")),
        )

    def open_detail(self, item: JsonObject) -> None:
        self.app.push_screen(TaskDetailScreen(str(item["id"]), item))

    def selected_task(self) -> JsonObject | None:
        return self.selected()


class TaskDetailScreen(DropTask, ObjectDetailScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "drop_task", "Drop")]
    view_name = "tasks"
    kind = "task"
    time_fields = TASK_TIMES

    async def read(self, data: DataSource) -> JsonObject:
        if self.document is not None and is_2026_record(self.document):
            found = await data.task_2026(self.object_id)
            if found is None:
                raise DataError("task not found", 404)
            return found
        return await data.task(self.object_id)

    def extra_rows(self, document: JsonObject, now: int) -> list[Row]:
        if is_2026_record(document):
            return task_2026_rows(document)
        rows: list[Row] = [("recv", recv_text(document.get("recv")))]
        deadline = deadline_text(document, now)
        if deadline:
            label = "lease ends in" if document.get("state") == "CLAIMED" else "claim within"
            rows.append((label, deadline))
        rows.append(("created", relative(document.get("createdOn"), now)))
        return rows

    def title_extra(self, document: JsonObject) -> tuple[Any, ...]:
        if is_2026_record(document):
            return ("  ", state_text(document.get("state")), f"  version {document.get('version')}")
        return ("  ", state_text(document.get("state")), f"  counter {document.get('counter')}")

    def selected_task(self) -> JsonObject | None:
        return self.document
