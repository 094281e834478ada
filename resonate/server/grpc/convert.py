"""Between the gRPC messages and the records and request fields of the operations layer.

Requests are checked by the HTTP API's own schemas (resonate.server.http.routes): a message
becomes the JSON object the HTTP route would have parsed, minus the values (bytes here, base64
there), which are checked by the same function the schemas use for their headers.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from resonate.core.callback import Callback
from resonate.core.errors import invalid
from resonate.core.lock import Lock
from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.schedule import Schedule
from resonate.core.schema import MAX_ID_BYTES, check_string_map
from resonate.core.search import parse_limit
from resonate.core.task import Task, TaskState
from resonate.server.grpc.gen import (
    callback_t_pb2,
    promise_pb2,
    promise_t_pb2,
    resonate_pb2,
    schedule_t_pb2,
)

# ---- requests ---------------------------------------------------------------------------------


def text(name: str, value: str, max_bytes: int | None = MAX_ID_BYTES) -> str:
    """A string field held to the rules of ids and headers (http-api.md §1.3): no U+0000 and,
    unless ``max_bytes`` is None, at most that many UTF-8 bytes. (Protobuf has checked that it
    is valid UTF-8.)"""
    if "\x00" in value:
        raise invalid(name, f"The field {name} must not contain U+0000.")
    if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
        raise invalid(name, f"The field {name} must be at most {max_bytes} bytes.")
    return value


def optional_text(name: str, value: str) -> str | None:
    """An optional string field: empty (proto3's absent) is None."""
    return text(name, value) or None


def value(name: str, message: promise_t_pb2.Value) -> Value:
    """A param or value: the headers checked as the schemas check them, empty parts None."""
    headers = check_string_map(f"{name}.headers", dict(message.headers))
    return Value(headers or None, bytes(message.data) or None)


def recv(message: callback_t_pb2.Recv, present: bool) -> Any:
    """The JSON form of a recv, for the schemas' RECV check: a logical recv is its string, a
    physical one ``{"type", "data"}`` with its data decoded from JSON; None when absent."""
    if not present:
        return None
    kind = message.WhichOneof("recv")
    if kind == "logical":
        return message.logical
    if kind == "physical":
        data: Any = None
        if message.physical.data:
            try:
                data = json.loads(message.physical.data)
            except ValueError:
                raise invalid("recv", "The field recv.data must be JSON.") from None
        return {"type": message.physical.type, "data": data}
    return None


def limit(raw: int) -> int:
    """A page size: 0 is the default, as an absent ``limit`` is over HTTP."""
    return parse_limit(str(raw) if raw else None)


SEARCH_STATES: dict[int, str | None] = {
    promise_pb2.SEARCH_ALL: None,
    promise_pb2.SEARCH_PENDING: "pending",
    promise_pb2.SEARCH_RESOLVED: "resolved",
    promise_pb2.SEARCH_REJECTED: "rejected",
}

TASK_STATE_NAMES: dict[int, str | None] = {
    resonate_pb2.TASK_STATE_UNSPECIFIED: None,
    resonate_pb2.INIT: "init",
    resonate_pb2.ENQUEUED: "enqueued",
    resonate_pb2.CLAIMED: "claimed",
    resonate_pb2.COMPLETED: "completed",
    resonate_pb2.TIMEDOUT: "timedout",
}

COMPLETION_STATES: dict[int, PromiseState] = {
    resonate_pb2.RESOLVED: PromiseState.RESOLVED,
    resonate_pb2.REJECTED: PromiseState.REJECTED,
    resonate_pb2.REJECTED_CANCELED: PromiseState.REJECTED_CANCELED,
}


# ---- answers ----------------------------------------------------------------------------------

PROMISE_STATES: dict[PromiseState, int] = {
    PromiseState.PENDING: promise_t_pb2.PENDING,
    PromiseState.RESOLVED: promise_t_pb2.RESOLVED,
    PromiseState.REJECTED: promise_t_pb2.REJECTED,
    PromiseState.REJECTED_TIMEDOUT: promise_t_pb2.REJECTED_TIMEDOUT,
    PromiseState.REJECTED_CANCELED: promise_t_pb2.REJECTED_CANCELED,
}

TASK_STATES: dict[TaskState, int] = {
    TaskState.INIT: resonate_pb2.INIT,
    TaskState.ENQUEUED: resonate_pb2.ENQUEUED,
    TaskState.CLAIMED: resonate_pb2.CLAIMED,
    TaskState.COMPLETED: resonate_pb2.COMPLETED,
    TaskState.TIMEDOUT: resonate_pb2.TIMEDOUT,
}


def value_message(record: Value) -> promise_t_pb2.Value:
    return promise_t_pb2.Value(headers=record.headers or {}, data=record.data or b"")


def promise_message(record: Promise) -> promise_t_pb2.Promise:
    return promise_t_pb2.Promise(
        id=record.id,
        state=PROMISE_STATES[record.state],  # type: ignore[arg-type]
        param=value_message(record.param),
        value=value_message(record.value),
        timeout=record.timeout,
        idempotencyKeyForCreate=record.idempotency_key_for_create or "",
        idempotencyKeyForComplete=record.idempotency_key_for_complete or "",
        tags=record.tags,
        createdOn=record.created_on or 0,
        completedOn=record.completed_on or 0,
    )


def promise_json_message(body: dict[str, Any] | None) -> promise_t_pb2.Promise | None:
    """A promise from its JSON object (the claim answer of the operations layer)."""
    if body is None:
        return None
    return promise_t_pb2.Promise(
        id=body["id"],
        state=PROMISE_STATES[PromiseState[body["state"]]],  # type: ignore[arg-type]
        param=_value_json_message(body.get("param")),
        value=_value_json_message(body.get("value")),
        timeout=body["timeout"],
        idempotencyKeyForCreate=body.get("idempotencyKeyForCreate") or "",
        idempotencyKeyForComplete=body.get("idempotencyKeyForComplete") or "",
        tags=body.get("tags") or {},
        createdOn=body.get("createdOn") or 0,
        completedOn=body.get("completedOn") or 0,
    )


def _value_json_message(body: dict[str, Any] | None) -> promise_t_pb2.Value:
    body = body or {}
    data = body.get("data")
    return promise_t_pb2.Value(
        headers=body.get("headers") or {}, data=base64.b64decode(data) if data else b""
    )


def callback_message(record: Callback) -> callback_t_pb2.Callback:
    return callback_t_pb2.Callback(
        id=record.id,
        promiseId=record.promise_id,
        timeout=record.timeout,
        createdOn=record.created_on,
    )


def recv_message(stored: Any) -> callback_t_pb2.Recv:
    """A recv as stored (a logical string, or ``{"type", "data"}``) as a message."""
    if isinstance(stored, str):
        return callback_t_pb2.Recv(logical=stored)
    if isinstance(stored, dict):
        data = stored.get("data")
        raw = b"" if data is None else json.dumps(data, separators=(",", ":")).encode()
        return callback_t_pb2.Recv(
            physical=callback_t_pb2.PhysicalRecv(type=str(stored.get("type") or ""), data=raw)
        )
    return callback_t_pb2.Recv()


def task_message(record: Task) -> resonate_pb2.Task:
    return resonate_pb2.Task(
        id=record.id,
        state=TASK_STATES[record.state],  # type: ignore[arg-type]
        type=record.type,
        counter=record.counter,
        attempt=record.attempt,
        rootPromiseId=record.root_promise_id,
        leafPromiseId=record.leaf_promise_id or "",
        processId=record.process_id or "",
        recv=recv_message(record.recv),
        timeout=record.timeout,
        ttl=record.ttl,
        expiresAt=record.expires_at,
        createdOn=record.created_on or 0,
        completedOn=record.completed_on or 0,
    )


def lock_message(record: Lock) -> resonate_pb2.Lock:
    return resonate_pb2.Lock(
        resourceId=record.resource_id,
        executionId=record.execution_id,
        processId=record.process_id,
        ttl=record.ttl,
        expiresAt=record.expires_at,
    )


def schedule_message(record: Schedule) -> schedule_t_pb2.Schedule:
    return schedule_t_pb2.Schedule(
        id=record.id,
        description=record.description or "",
        cron=record.cron,
        tags=record.tags,
        promiseId=record.promise_id,
        promiseTimeout=record.promise_timeout,
        promiseParam=value_message(record.promise_param),
        promiseTags=record.promise_tags,
        idempotencyKey=record.idempotency_key or "",
        lastRunTime=record.last_run_time or 0,
        nextRunTime=record.next_run_time,
        createdOn=record.created_on,
    )
