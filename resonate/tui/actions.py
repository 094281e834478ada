"""The dashboard's writes, each a flow: read-only check, dialog(s), the call, a notification
and a refresh. Flows wait on dialogs, so they run in workers (`start`)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from resonate.client import is_2026_record
from resonate.tui.data import DataError
from resonate.tui.widgets.dialogs import ConfirmDialog, ScheduleForm, ValueEditor

if TYPE_CHECKING:
    from resonate.client import CompletionState
    from resonate.tui.app import ResonateApp

JsonObject = dict[str, Any]
COMPLETIONS: dict[str, tuple[CompletionState, str]] = {
    "resolve": ("RESOLVED", "Resolve"),
    "reject": ("REJECTED", "Reject"),
    "cancel": ("REJECTED_CANCELED", "Cancel"),
}


def start(app: ResonateApp, flow: Coroutine[Any, Any, None]) -> None:
    app.run_worker(flow, group="actions", exit_on_error=False)


async def _attempt(app: ResonateApp, what: str, call: Coroutine[Any, Any, Any]) -> Any:
    try:
        result = await call
    except DataError as error:
        app.notify(error.message, title=f"{what} failed", severity="error", timeout=8)
        return None
    app.refresh_now()
    return True if result is None else result


async def complete_promise(app: ResonateApp, promise: JsonObject | None, verb: str) -> None:
    if promise is None or app.refuse_in_read_only():
        return
    state, title = COMPLETIONS[verb]
    promise_id = str(promise.get("id"))
    if promise.get("state") != "PENDING":
        app.notify(f"{promise_id} is {promise.get('state')}, not PENDING", severity="warning")
        return
    edited = await app.push_screen_wait(
        ValueEditor(f"{title} {promise_id}: the value (optional)", "", as_json=True)
    )
    if edited is None:
        return
    shown = edited.data if edited.data is not None else "no data"
    if not await app.push_screen_wait(
        ConfirmDialog(f"{title} promise {promise_id!r} with {shown}?", title)
    ):
        return
    done = await _attempt(
        app, title, app.data.complete_promise(promise_id, state, edited.data, edited.headers)
    )
    if done:
        app.notify(f"{promise_id}: {done.get('state', state)}", title=f"{title}d")


async def drop_task(app: ResonateApp, task: JsonObject | None) -> None:
    if task is None or app.refuse_in_read_only():
        return
    task_id, counter = str(task.get("id")), task.get("counter")
    if is_2026_record(task):
        app.notify(f"{task_id} is a 2026-04-01 task: only REST tasks can be dropped")
        return
    if task.get("state") != "CLAIMED" or not isinstance(counter, int):
        app.notify(f"{task_id} is {task.get('state')}: only a CLAIMED task can be dropped")
        return
    question = (
        f"Drop task {task_id!r} (counter {counter}, held by {task.get('processId') or '?'})?"
        " It is re-issued to the group with the next counter."
    )
    if await app.push_screen_wait(ConfirmDialog(question, "Drop")) and await _attempt(
        app, "Drop", app.data.drop_task(task_id, counter)
    ):
        app.notify(f"task {task_id} dropped", title="Dropped")


async def delete_schedule(app: ResonateApp, schedule: JsonObject | None) -> None:
    if schedule is None or app.refuse_in_read_only():
        return
    schedule_id = str(schedule.get("id"))
    question = f"Delete schedule {schedule_id!r} ({schedule.get('cron')})? It stops firing."
    if await app.push_screen_wait(ConfirmDialog(question, "Delete")) and await _attempt(
        app, "Delete", app.data.delete_schedule(schedule_id)
    ):
        app.notify(f"schedule {schedule_id} deleted", title="Deleted")


async def release_lock(app: ResonateApp, lock: JsonObject | None) -> None:
    if lock is None or app.refuse_in_read_only():
        return
    resource, execution = str(lock.get("resourceId")), str(lock.get("executionId"))
    question = f"Release lock {resource!r} held by execution {execution!r}?"
    if await app.push_screen_wait(ConfirmDialog(question, "Release")) and await _attempt(
        app, "Release", app.data.release_lock(resource, execution)
    ):
        app.notify(f"lock {resource} released", title="Released")


async def new_schedule(app: ResonateApp) -> None:
    if app.refuse_in_read_only():
        return
    draft = await app.push_screen_wait(ScheduleForm())
    if draft is None:
        return
    question = f"Create schedule {draft.id!r} ({draft.cron}) making {draft.promise_id!r}?"
    if not await app.push_screen_wait(ConfirmDialog(question, "Create")):
        return
    created = await _attempt(
        app,
        "Create",
        app.data.create_schedule(
            draft.id,
            draft.cron,
            draft.promise_id,
            draft.promise_timeout_ms,
            description=draft.description,
            timezone=draft.timezone,
            promise_data=draft.promise_data,
            promise_tags=draft.promise_tags,
        ),
    )
    if created:
        app.notify(f"schedule {draft.id} created", title="Created")
