"""Authorisation of `POST /` requests by kind (protocol-2026.md §9, P6).

A token limited to a prefix may name only ids that start with it: ``data.id`` for most kinds,
``awaited`` (and ``awaiter``) for callbacks and listeners, the schedule id and the ``promiseId``
template for ``schedule.create``, ``action.data.id`` for ``task.create``, every id of a
heartbeat, and the ids of the nested actions of ``task.fulfill``, ``task.suspend`` and
``task.fence``. Searches and the debug kinds reach every prefix and are refused to it, and so
is any kind not named here (fail closed).

Only string ids are checked: where a kind expects an id and finds something else, the kind
itself answers 400 before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from resonate.core.errors import Code, ResonateError
from resonate.core.schedule import template_fixed_prefix
from resonate.server.envelope.protocol import EnvelopeError
from resonate.server.http.auth import Principal, authorize_everything, authorize_ids

Ids = Callable[[dict[str, Any]], Iterator[tuple[str, Any]]]


def _field(*names: str) -> Ids:
    def ids(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        for name in names:
            yield name, data.get(name)

    return ids


def _action_id(data: dict[str, Any]) -> Any:
    action = data.get("action")
    inner = action.get("data") if isinstance(action, dict) else None
    return inner.get("id") if isinstance(inner, dict) else None


def _task_create(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "action.data.id", _action_id(data)


def _task_with_action(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "id", data.get("id")
    yield "action.data.id", _action_id(data)


def _task_suspend(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "id", data.get("id")
    actions = data.get("actions")
    for item in actions if isinstance(actions, list) else ():
        inner = item.get("data") if isinstance(item, dict) else None
        if isinstance(inner, dict):
            yield "actions[].data.awaited", inner.get("awaited")
            yield "actions[].data.awaiter", inner.get("awaiter")


def _task_heartbeat(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    items = data.get("tasks")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            yield "tasks[].id", item.get("id")


def _schedule_create(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    schedule_id = data.get("id")
    template = data.get("promiseId")
    yield "id", schedule_id
    if isinstance(schedule_id, str) and isinstance(template, str):
        try:
            yield "promiseId", template_fixed_prefix(template, schedule_id)
        except ResonateError:  # not a template: the kind answers 400
            return


EVERY_PREFIX: Ids = _field()  # a marker: the kind reaches ids of every prefix

TARGETS: dict[str, Ids] = {
    "promise.get": _field("id"),
    "promise.create": _field("id"),
    "promise.settle": _field("id"),
    "promise.register_callback": _field("awaited", "awaiter"),
    "promise.register_listener": _field("awaited"),
    "promise.search": EVERY_PREFIX,
    "task.create": _task_create,
    "task.acquire": _field("id"),
    "task.release": _field("id"),
    "task.fulfill": _task_with_action,
    "task.suspend": _task_suspend,
    "task.fence": _task_with_action,
    "task.heartbeat": _task_heartbeat,
    "task.get": _field("id"),
    "task.search": EVERY_PREFIX,
    "task.halt": _field("id"),
    "task.continue": _field("id"),
    "schedule.create": _schedule_create,
    "schedule.get": _field("id"),
    "schedule.delete": _field("id"),
    "schedule.search": EVERY_PREFIX,
}


def authorize_kind(principal: Principal, kind: str, data: dict[str, Any]) -> None:
    """403 ``"Forbidden"`` unless ``principal`` may run ``kind`` on ``data``."""
    if principal.everything:
        return
    try:
        targets = TARGETS.get(kind, EVERY_PREFIX)
        if targets is EVERY_PREFIX:
            authorize_everything(principal, kind)
        authorize_ids(principal)  # a token with neither the admin role nor a prefix
        for what, value in targets(data):
            if isinstance(value, str):
                authorize_ids(principal, {what: value})
    except ResonateError as error:
        if error.code is Code.FORBIDDEN:
            raise EnvelopeError(403, "Forbidden") from None
        raise
