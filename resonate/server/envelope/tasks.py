"""The task kinds of the 2026-04-01 protocol (protocol-2026.md §3.2, §4.2).

Each kind validates its ``data`` (nested actions included: a ``promise.create`` or
``promise.settle`` request inside ``task.create``, ``task.fulfill``, ``task.fence``,
``task.suspend``), runs one operation of ``resonate.server.tasks2026`` in one transaction and
renders the reply. ``task.suspend`` answers 300 when an awaited promise is already settled.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from resonate.core.clock import INT64_MAX
from resonate.core.schema import check_id
from resonate.core.task2026 import DELAY_TAG, TARGET_TAG, Task2026State
from resonate.server import tasks2026
from resonate.server.envelope.promises import (
    DEFAULT_LIMIT,
    new_promise,
    page_of,
    promise_record,
    same_origin,
    settle_request,
)
from resonate.server.envelope.protocol import VERSION, EnvelopeError, bad_request

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

TASK_STATES = {state.value for state in Task2026State}


class Redirect(Exception):
    """A success answered with another status than 200 (task.suspend's 300)."""

    def __init__(self, status: int, data: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.data = data


# A lease is now + ttl: a ttl up to 2^53 - 1 ms (JavaScript's largest exact integer, some
# 285,000 years) keeps it within 64 bits.
MAX_TTL = 2**53 - 1


def _int(name: str, value: Any, minimum: int, maximum: int = INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_request(
            f"Invalid '{name}' field — must be an integer from {minimum} to {maximum}"
        )
    return value


def _ttl(data: dict[str, Any]) -> int:
    return _int("ttl", data.get("ttl"), 1, MAX_TTL)


def _action(value: Any, kinds: tuple[str, ...], name: str = "action") -> tuple[str, dict[str, Any]]:
    """A nested request ``{kind, head?, data}`` of one of ``kinds``: (kind, data)."""
    if not isinstance(value, dict):
        raise bad_request(f"Invalid '{name}' field — must be a request object")
    kind = value.get("kind")
    if kind not in kinds:
        raise bad_request(f"Invalid '{name}' field — kind must be {' or '.join(kinds)}")
    data = value.get("data")
    if not isinstance(data, dict):
        raise bad_request(f"Invalid '{name}.data' field — must be an object")
    return kind, data


def _held(held: tasks2026.Held) -> dict[str, Any]:
    return {
        "task": held.task.to_json(),
        "promise": promise_record(held.promise),
        "preload": [promise_record(p) for p in held.preload],
    }


def _pid(data: dict[str, Any]) -> str:
    return check_id("pid", data.get("pid"))


async def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    _, action = _action(data.get("action"), ("promise.create",))
    request = new_promise(action)
    tags = request.tags or {}
    if TARGET_TAG not in tags:
        raise bad_request(f"Invalid 'action' field — its tags must include '{TARGET_TAG}'")
    if DELAY_TAG in tags:
        raise bad_request(f"Invalid 'action' field — its tags must not include '{DELAY_TAG}'")
    pid = _pid(data)
    ttl = _ttl(data)
    held = await ctx.store.run(
        partial(tasks2026.create_task, clock=ctx.clock, request=request, pid=pid, ttl=ttl)
    )
    return _held(held)


def _id_version(data: dict[str, Any]) -> tuple[str, int]:
    return check_id("id", data.get("id")), _int("version", data.get("version"), 0)


async def acquire(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id, version = _id_version(data)
    pid = _pid(data)
    ttl = _ttl(data)
    held = await ctx.store.run(
        partial(
            tasks2026.acquire_task,
            clock=ctx.clock,
            task_id=task_id,
            version=version,
            pid=pid,
            ttl=ttl,
        )
    )
    return _held(held)


async def release(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id, version = _id_version(data)
    await ctx.store.run(
        partial(tasks2026.release_task, clock=ctx.clock, task_id=task_id, version=version)
    )
    return {}


async def fulfill(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id, version = _id_version(data)
    _, action = _action(data.get("action"), ("promise.settle",))
    settle = settle_request(action)
    if settle.id != task_id:
        raise bad_request("Invalid 'action' field — it must settle the task's own promise")
    promise = await ctx.store.run(
        partial(
            tasks2026.fulfill_task, clock=ctx.clock, task_id=task_id, version=version, settle=settle
        )
    )
    return {"promise": promise_record(promise)}


async def suspend(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id, version = _id_version(data)
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise bad_request("Invalid 'actions' field — must be a non-empty list of requests")
    awaited: list[str] = []
    for index, item in enumerate(actions):
        name = f"actions[{index}]"
        _, callback = _action(item, ("promise.register_callback",), name)
        awaiter = check_id("awaiter", callback.get("awaiter"))
        if awaiter != task_id:
            raise bad_request(f"Invalid '{name}' field — its awaiter must be the task")
        awaited_id = check_id("awaited", callback.get("awaited"))
        same_origin(awaited_id, awaiter)
        awaited.append(awaited_id)
    suspension = await ctx.store.run(
        partial(
            tasks2026.suspend_task,
            clock=ctx.clock,
            task_id=task_id,
            version=version,
            awaited=awaited,
        )
    )
    if not suspension.suspended:
        raise Redirect(300, {"preload": [promise_record(p) for p in suspension.preload]})
    return {}


async def fence(ctx: Context, data: dict[str, Any], corr_id: str) -> dict[str, Any]:
    task_id, version = _id_version(data)
    kind, action = _action(data.get("action"), ("promise.create", "promise.settle"))
    if kind == "promise.create":
        request = new_promise(action)
        if request.id == task_id:
            raise bad_request("Invalid 'action' field — it must not name the task's promise")
        operation = partial(tasks2026.fence_create, request=request)
    else:
        settle = settle_request(action)
        if settle.id == task_id:
            raise bad_request("Invalid 'action' field — it must not name the task's promise")
        operation = partial(tasks2026.fence_settle, settle=settle)
    fenced = await ctx.store.run(
        partial(operation, clock=ctx.clock, task_id=task_id, version=version)
    )
    inner: dict[str, Any] = {
        "kind": kind,
        "head": {"corrId": corr_id, "status": fenced.status, "version": VERSION},
        "data": (
            {"promise": promise_record(fenced.promise)}
            if fenced.promise is not None
            else "Promise not found"
        ),
    }
    return {"action": inner, "preload": [promise_record(p) for p in fenced.preload]}


async def heartbeat(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    pid = _pid(data)
    items = data.get("tasks")
    if not isinstance(items, list) or not items:
        raise bad_request("Invalid 'tasks' field — must be a non-empty list of {id, version}")
    tasks: list[tuple[str, int]] = []
    for item in items:
        if not isinstance(item, dict):
            raise bad_request("Invalid 'tasks' field — must be a non-empty list of {id, version}")
        tasks.append(_id_version(item))
    # Tasks of several origins in one heartbeat are accepted (SDK 0.11.5 sends them so).
    await ctx.store.run(partial(tasks2026.heartbeat_tasks, clock=ctx.clock, pid=pid, tasks=tasks))
    return {}


async def halt(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id = check_id("id", data.get("id"))
    await ctx.store.run(partial(tasks2026.halt_task, clock=ctx.clock, task_id=task_id))
    return {}


async def resume(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """``task.continue``."""
    task_id = check_id("id", data.get("id"))
    await ctx.store.run(partial(tasks2026.continue_task, clock=ctx.clock, task_id=task_id))
    return {}


async def get(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    task_id = check_id("id", data.get("id"))
    task = await ctx.store.run(partial(tasks2026.get_task, clock=ctx.clock, task_id=task_id))
    return {"task": task.to_json()}


async def search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    state = data.get("state")
    if state is not None and state not in TASK_STATES:
        names = ", ".join(sorted(TASK_STATES))
        raise bad_request(f"Invalid 'state' field — must be one of {names}")
    limit, after = page_of(data, DEFAULT_LIMIT)
    tasks, next_cursor = await ctx.store.read(
        partial(tasks2026.search_tasks, state=state, after_id=after, limit=limit)
    )
    reply: dict[str, Any] = {"tasks": [task.to_json() for task in tasks]}
    if next_cursor is not None:
        reply["cursor"] = next_cursor
    return reply


__all__ = ["EnvelopeError", "Redirect"]
