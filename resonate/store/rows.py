"""Records <-> table rows, shared by the SQLite and PostgreSQL stores: both tables have the same
columns in the same order (http-api.md §14.2), so a record is encoded and decoded once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from resonate.core.callback import Callback
from resonate.core.promise import EMPTY_VALUE, Promise, PromiseState, Value
from resonate.core.schedule import Schedule
from resonate.core.task import Task, TaskState
from resonate.core.task2026 import Task2026, Task2026State
from resonate.store.base import Counts

Row = Sequence[Any]


def dump_map(mapping: dict[str, str] | None) -> str | None:
    return json.dumps(mapping, separators=(",", ":")) if mapping else None


def dump_json(value: Any) -> bytes:
    """Raw JSON for the BLOB/BYTEA columns (recv, mesg), as upstream stores them."""
    return json.dumps(value, separators=(",", ":")).encode()


def load_map(text: str | None) -> dict[str, str] | None:
    return json.loads(text) if text else None


# PromiseState by stored value: a dict lookup instead of the enum's call machinery (one per row).
_PROMISE_STATES = {state.value: state for state in PromiseState}


def _value(headers: str | None, data: bytes | None) -> Value:
    if headers is None and data is None:
        return EMPTY_VALUE  # immutable: one for every empty param and value
    return Value(load_map(headers), data)


def promise_from_row(row: Row) -> tuple[int, Promise]:
    (
        sort_id,
        promise_id,
        state,
        param_headers,
        param_data,
        value_headers,
        value_data,
        timeout,
        key_create,
        key_complete,
        tags,
        created_on,
        completed_on,
    ) = row
    promise_state = _PROMISE_STATES.get(state)
    if promise_state is None:
        promise_state = PromiseState(state)  # raises: not a state
    promise = Promise(
        id=promise_id,
        state=promise_state,
        param=_value(param_headers, param_data),
        value=_value(value_headers, value_data),
        timeout=timeout,
        idempotency_key_for_create=key_create,
        idempotency_key_for_complete=key_complete,
        tags=load_map(tags) or {},
        created_on=created_on,
        completed_on=completed_on,
    )
    return sort_id, promise


def callback_from_row(row: Row) -> Callback:
    """A callback from the `get_callback` columns."""
    callback_id, promise_id, root_promise_id, recv, mesg, timeout, created_on = row
    return Callback(
        callback_id,
        promise_id,
        root_promise_id,
        json.loads(recv),
        json.loads(mesg),
        timeout,
        created_on,
    )


def listed_callback_from_row(row: Row) -> tuple[int, Callback]:
    """A (sort id, callback) from the `list_callbacks` columns: the sort id, then those of
    `get_callback`."""
    return row[0], callback_from_row(row[1:])


def task_from_row(row: Row) -> tuple[int, Task]:
    (
        sort_id,
        task_id,
        process_id,
        state,
        root_promise_id,
        recv,
        mesg,
        timeout,
        counter,
        attempt,
        ttl,
        expires_at,
        created_on,
        completed_on,
    ) = row
    task = Task(
        id=task_id,
        state=TaskState(state),
        root_promise_id=root_promise_id,
        recv=json.loads(recv),
        message=json.loads(mesg),
        timeout=timeout,
        counter=counter,
        attempt=attempt,
        process_id=process_id,
        ttl=ttl,
        expires_at=expires_at,
        created_on=created_on,
        completed_on=completed_on,
    )
    return sort_id, task


def schedule_from_row(row: Row) -> tuple[int, Schedule]:
    (
        sort_id,
        schedule_id,
        description,
        cron,
        timezone,
        tags,
        promise_id,
        promise_timeout,
        param_headers,
        param_data,
        promise_tags,
        last_run_time,
        next_run_time,
        idempotency_key,
        created_on,
    ) = row
    schedule = Schedule(
        id=schedule_id,
        cron=cron,
        promise_id=promise_id,
        promise_timeout=promise_timeout,
        next_run_time=next_run_time,
        created_on=created_on,
        description=description,
        timezone=timezone,
        tags=load_map(tags) or {},
        promise_param=Value(load_map(param_headers), param_data),
        promise_tags=load_map(promise_tags) or {},
        last_run_time=last_run_time,
        idempotency_key=idempotency_key,
    )
    return sort_id, schedule


def promise_values(promise: Promise) -> tuple[Any, ...]:
    """The columns of `insert_promise`, in order."""
    return (
        promise.id,
        int(promise.state),
        dump_map(promise.param.headers),
        promise.param.data,
        dump_map(promise.value.headers),
        promise.value.data,
        promise.timeout,
        promise.idempotency_key_for_create,
        promise.idempotency_key_for_complete,
        dump_map(promise.tags),
        promise.created_on,
        promise.completed_on,
    )


def callback_values(callback: Callback) -> tuple[Any, ...]:
    """The columns of `insert_callback`, in order."""
    return (
        callback.id,
        callback.promise_id,
        callback.root_promise_id,
        dump_json(callback.recv),
        dump_json(callback.message),
        callback.timeout,
        callback.created_on,
    )


def task_values(task: Task) -> tuple[Any, ...]:
    """The columns of `insert_task`, in order."""
    return (
        task.id,
        task.process_id,
        int(task.state),
        task.root_promise_id,
        dump_json(task.recv),
        dump_json(task.message),
        task.timeout,
        task.counter,
        task.attempt,
        task.ttl,
        task.expires_at,
        task.created_on,
        task.completed_on,
    )


def swap_task_values(old: Task, new: Task) -> tuple[Any, ...]:
    """The parameters of `swap_task`: the new state, then the guard (id, old state, counter)."""
    return (
        new.process_id,
        int(new.state),
        new.counter,
        new.attempt,
        new.ttl,
        new.expires_at,
        new.completed_on,
        old.id,
        int(old.state),
        old.counter,
    )


def schedule_values(schedule: Schedule) -> tuple[Any, ...]:
    """The columns of `insert_schedule`, in order."""
    return (
        schedule.id,
        schedule.description,
        schedule.cron,
        schedule.timezone,
        dump_map(schedule.tags),
        schedule.promise_id,
        schedule.promise_timeout,
        dump_map(schedule.promise_param.headers),
        schedule.promise_param.data,
        dump_map(schedule.promise_tags),
        schedule.last_run_time,
        schedule.next_run_time,
        schedule.idempotency_key,
        schedule.created_on,
    )


def counts_from_rows(rows: Sequence[Row]) -> Counts:
    """The (table, state, count) rows of the count_records statement."""
    promises: dict[PromiseState, int] = {}
    tasks: dict[TaskState, int] = {}
    totals = {"schedules": 0, "locks": 0}
    for table, state, count in rows:
        if table == "promises":
            if count:
                promises[PromiseState(state)] = int(count)
        elif table == "tasks":
            tasks[TaskState(state)] = int(count)
        else:
            totals[table] = int(count)
    return Counts(promises, tasks, totals["schedules"], totals["locks"])


def task_2026_from_row(row: Row) -> Task2026:
    return Task2026(
        id=row[0],
        state=Task2026State(row[1]),
        version=int(row[2]),
        target=row[3],
        pid=row[4],
        ttl=None if row[5] is None else int(row[5]),
        lease_at=None if row[6] is None else int(row[6]),
        retry_at=None if row[7] is None else int(row[7]),
        resumes=int(row[8]),
        created_at=int(row[9]),
        updated_at=int(row[10]),
    )


def task_2026_values(task: Task2026) -> tuple[Any, ...]:
    """The stored columns of ``task`` in select_tasks_2026 order."""
    return (
        task.id,
        task.state.value,
        task.version,
        task.target,
        task.pid,
        task.ttl,
        task.lease_at,
        task.retry_at,
        task.resumes,
        task.created_at,
        task.updated_at,
    )
