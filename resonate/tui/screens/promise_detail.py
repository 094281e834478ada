"""A promise in full: every field, its param and value decoded, its tags and headers, the tasks
of its invocation, and the call tree of its root (`enter` on a node opens that promise)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, Tree

from resonate.calltree import Node, label
from resonate.client import is_2026_record
from resonate.tui.data import DataSource, PromiseDetail
from resonate.tui.formatting import countdown, relative
from resonate.tui.screens.base import LiveScreen
from resonate.tui.screens.promises import PROMISE_BINDINGS, PromiseActions
from resonate.tui.screens.resources import JsonObject, state_text
from resonate.tui.screens.tasks import recv_text
from resonate.tui.widgets.detail_pane import DetailPane, field_rows
from resonate.tui.widgets.value_viewer import ValueViewer

PROMISE_TIMES = ("timeout", "createdOn", "completedOn")


def node_label(node: Node, current: str) -> Text:
    text = Text.assemble(
        state_text(node.state), " ", (node.id, "bold" if node.id == current else "")
    )
    name = label(node.promise)
    if name:
        text.append(f"  {name}", style="dim")
    return text


def _task_2026_summary(task: JsonObject) -> Text:
    """`ACQUIRED  version 1  2026  <pid>  ttl 60000 ms`: a 2026 task has no REST counter, type
    or lease end, but a version, a pid and a ttl while acquired, and resumes."""
    acquired = str(task.get("state")) == "acquired"
    return Text.assemble(
        state_text(task.get("state")),
        f"  version {task.get('version')}  ",
        ("2026", "cyan"),
        f"  {task.get('pid') or ''}  ttl {task.get('ttl')} ms" if acquired else "",
        f"  resumes {task.get('resumes')}" if task.get("resumes") else "",
    )


class PromiseDetailScreen(PromiseActions, LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("y", "copy", "Copy"),
        *PROMISE_BINDINGS,
    ]
    view_name = "promises"

    def __init__(self, promise_id: str) -> None:
        super().__init__()
        self.promise_id = promise_id
        self.detail: PromiseDetail | None = None
        self._tree_shape: list[tuple[int, str, str]] = []

    def compose_body(self) -> ComposeResult:
        yield Static(f" promise {self.promise_id}", id="detail-title")
        with Horizontal(id="detail"):
            with VerticalScroll(id="detail-left"):
                yield DetailPane("fields", id="fields")
                yield ValueViewer("param", None, id="param")
                yield ValueViewer("value", None, id="value")
            with VerticalScroll(id="detail-right"):
                tree: Tree[str] = Tree("call tree", id="calltree")
                tree.auto_expand = False  # enter opens the node's promise; space folds
                tree.border_title = "call tree of the root (space folds, enter opens)"
                yield tree
                yield DetailPane("tasks of this invocation", id="tasks")
                yield DetailPane("callbacks waiting on this promise", id="callbacks")

    async def fetch(self, data: DataSource) -> PromiseDetail:
        return await data.promise_detail(self.promise_id)

    def show(self, payload: PromiseDetail) -> None:
        self.detail = payload
        promise = payload.promise
        now = self.resonate.now_ms()
        self.query_one("#detail-title", Static).update(
            Text.assemble(
                " promise ", (self.promise_id, "bold"), "  ", state_text(promise.get("state"))
            )
        )
        self.query_one("#fields", DetailPane).show(
            field_rows(promise, now, PROMISE_TIMES, skip=("param", "value"))
        )
        self.query_one("#param", ValueViewer).show(promise.get("param"))
        self.query_one("#value", ValueViewer).show(promise.get("value"))
        self._show_tasks(payload.tasks, now)
        self._show_callbacks(payload.callbacks, now)
        self._show_tree(payload.tree)

    def _show_tasks(self, tasks: list[JsonObject], now: int) -> None:
        rows: list[tuple[str, str | Text]] = []
        for task in tasks:
            if is_2026_record(task):
                rows.append((str(task.get("id")), _task_2026_summary(task)))
                continue
            deadline = (
                countdown(task.get("expiresAt"), now) if task.get("state") == "CLAIMED" else ""
            )
            summary = Text.assemble(
                state_text(task.get("state")),
                f"  counter {task.get('counter')}  {task.get('type', '')}",
                f"  {task.get('processId') or ''}",
                f"  lease {deadline}" if deadline else "",
                f"  created {relative(task.get('createdOn'), now)}",
            )
            rows.append((str(task.get("id")), summary))
        self.query_one("#tasks", DetailPane).show(rows or [("", Text("none", style="dim"))])

    def _show_callbacks(self, callbacks: list[JsonObject], now: int) -> None:
        rows: list[tuple[str, str | Text]] = []
        for callback in callbacks:
            summary = Text.assemble(
                (str(callback.get("type", "")), "cyan"),
                f"  root {callback.get('rootPromiseId', '')}",
                f"  recv {recv_text(callback.get('recv'))}",
                f"  times out {relative(callback.get('timeout'), now)}",
            )
            rows.append((str(callback.get("id")), summary))
        self.query_one("#callbacks", DetailPane).show(rows or [("", Text("none", style="dim"))])

    def _show_tree(self, root: Node) -> None:
        shape = [(depth, node.id, node.state) for depth, node in root.walk()]
        tree: Tree[str] = self.query_one("#calltree", Tree)
        if shape == self._tree_shape:
            return  # unchanged: keep the user's expanded/collapsed nodes and cursor
        self._tree_shape = shape
        tree.clear()
        tree.root.set_label(node_label(root, self.promise_id))
        tree.root.data = root.id

        def add(parent: Any, node: Node) -> None:
            for child in node.children:
                branch = parent.add(node_label(child, self.promise_id), data=child.id, expand=True)
                add(branch, child)
                if not child.children:
                    branch.allow_expand = False

        add(tree.root, root)
        tree.root.expand()

    @on(Tree.NodeSelected, "#calltree")
    def node_chosen(self, event: Tree.NodeSelected[str]) -> None:
        promise_id = event.node.data
        if promise_id and promise_id != self.promise_id:
            self.app.push_screen(PromiseDetailScreen(promise_id))

    def selected_promise(self) -> JsonObject | None:
        return self.detail.promise if self.detail else None

    def action_copy(self) -> None:
        self.resonate.copy_object("promise", self.selected_promise())

    def action_back(self) -> None:
        self.dismiss()
