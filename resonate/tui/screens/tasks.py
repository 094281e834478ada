"""`3`: tasks with state, counter, attempt, recv, process and a live lease countdown; a task's
detail; `d` drops a claimed task (it is re-issued with the next counter)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from resonate.tui import actions
from resonate.tui.data import DataSource, Page, TaskFilter
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

TASK_STATES = ("init", "enqueued", "claimed", "completed", "timedout")
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


def deadline_text(task: JsonObject, now: int) -> str:
    """The lease (CLAIMED) or claim deadline (ENQUEUED) as a countdown; nothing once ended."""
    if task.get("state") in ("CLAIMED", "ENQUEUED"):
        return countdown(task.get("expiresAt"), now)
    return ""


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
    columns = ("ID", "STATE", "COUNTER", "ATTEMPT", "PROCESS", "RECV", "LEASE", "ROOT")
    filters = (
        FilterField("pattern", "id pattern (* wildcard)  [/]"),
        FilterField("state", "any state", TASK_STATES),
        FilterField("process", "process id"),
        FilterField("root", "root promise id"),
    )

    def parse_filter(self, values: dict[str, str]) -> TaskFilter:
        return TaskFilter(
            pattern=pattern_of(values.get("pattern", "")),
            state=values.get("state") or None,
            process_id=values.get("process") or None,
            root_promise_id=values.get("root") or None,
        )

    async def page(
        self, data: DataSource, where: TaskFilter, cursor: str | None, limit: int
    ) -> Page:
        return await data.tasks(where, cursor, limit)

    def cells(self, item: JsonObject, now: int) -> Cells:
        return (
            str(item.get("id", "")),
            state_text(item.get("state")),
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
        return await data.task(self.object_id)

    def extra_rows(self, document: JsonObject, now: int) -> list[Row]:
        rows: list[Row] = [("recv", recv_text(document.get("recv")))]
        deadline = deadline_text(document, now)
        if deadline:
            label = "lease ends in" if document.get("state") == "CLAIMED" else "claim within"
            rows.append((label, deadline))
        rows.append(("created", relative(document.get("createdOn"), now)))
        return rows

    def title_extra(self, document: JsonObject) -> tuple[Any, ...]:
        return ("  ", state_text(document.get("state")), f"  counter {document.get('counter')}")

    def selected_task(self) -> JsonObject | None:
        return self.document
