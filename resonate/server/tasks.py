"""Task operations: the state machine of http-api.md §4.2, written once.

Every transition is a guarded swap (expected state and counter), so concurrent claims,
completions, drops and loop passes (also from other servers sharing the database) cannot both
win; the loser re-reads and decides again.

The enqueue loop marks a task ENQUEUED (with its claim deadline) in the same transaction that
selects it, and only then delivers it: a task and counter can reach at most one worker, even
with several servers on one database. A failed delivery puts the task back to INIT with the
plugin's retry delay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from resonate.core.clock import Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.promise import Promise, PromiseState
from resonate.core.routing import Destination, Router, Sender
from resonate.core.search import TaskQuery, task_cursor
from resonate.core.task import (
    Task,
    TaskState,
    add_ms,
    invoke_id,
    promise_link,
    task_message,
)
from resonate.store.base import Event, Transaction

log = logging.getLogger("resonate.tasks")

MAX_ROUNDS = 8
UNKNOWN_RECV_RETRY_MS = 15_000
DELAY_TAG = "resonate:delay"


def _changed(tx: Transaction, name: str) -> None:
    tx.emit(Event("task", name))


def _lost_races() -> ResonateError:
    return ResonateError(Code.STORE_ERROR, "task update kept losing races; giving up")


# ---- creation (router, §4.3-§4.4) -------------------------------------------------------------


def _delay(tags: dict[str, str]) -> int:
    raw = tags.get(DELAY_TAG)
    if raw is None:
        return 0
    try:
        return int(raw, 10)
    except ValueError:
        log.warning("ignoring %s=%r: not a decimal int64", DELAY_TAG, raw)
        return 0


@dataclass(frozen=True, slots=True)
class TaskClaim:
    """The `task` part of `POST /promises/task`: who holds the new invoke task, and how long."""

    process_id: str
    ttl: int


def invoke_task(
    router: Router | None,
    promise: Promise,
    now: int,
    head: dict[str, str] | None,
    claim: TaskClaim | None = None,
) -> Task | None:
    """The invoke task of a new promise when ``router`` matches it: INIT (after
    `resonate:delay`), or CLAIMED by ``claim`` (§2.5); None when nothing matches."""
    recv = router.route(promise.tags) if router is not None else None
    if recv is None:
        return None
    task = Task.invoke(
        promise.id, recv, promise.timeout, now, head, expires_at=_delay(promise.tags)
    )
    if claim is not None:
        task = replace(
            task,
            state=TaskState.CLAIMED,
            process_id=claim.process_id,
            ttl=claim.ttl,
            expires_at=add_ms(now, claim.ttl),
        )
    return task


PROMISE_CREATED = Event("promise", "created")  # immutable: one for every create


async def insert_routed_promise(tx: Transaction, promise: Promise, invoke: Task | None) -> bool:
    """Insert a new promise together with its invoke task (see ``invoke_task``), in one
    statement where the store can; False, with nothing written, when the id exists."""
    if not await tx.insert_promise(promise, invoke):
        return False
    tx.emit(PROMISE_CREATED)
    if invoke is not None:
        _changed(tx, "created")
        if invoke.state is TaskState.CLAIMED:
            _changed(tx, "claimed")
    return True


async def refresh_claimed_invoke(
    tx: Transaction, promise_id: str, claim: TaskClaim, now: int
) -> Task | None:
    """D18: a re-sent create-with-task from the process that holds the invoke task gets that
    task back, with its lease refreshed; None otherwise."""
    for _ in range(MAX_ROUNDS):
        task = await tx.get_task(invoke_id(promise_id))
        if (
            task is None
            or task.state is not TaskState.CLAIMED
            or task.process_id != claim.process_id
        ):
            return None
        refreshed = replace(task, ttl=claim.ttl, expires_at=add_ms(now, claim.ttl))
        if await tx.swap_task(task, refreshed):
            return refreshed
    raise _lost_races()


# ---- worker requests (§4.8, §4.9) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimTask:
    id: str
    counter: int
    process_id: str
    ttl: int


def _promise_ref(base_url: str, promise_id: str, promise: Promise | None) -> dict[str, Any]:
    return {
        "id": promise_id,
        "href": promise_link(base_url, promise_id),
        "data": promise.to_json() if promise is not None else None,
    }


async def _claim_body(tx: Transaction, base_url: str, task: Task) -> dict[str, Any]:
    root = await tx.get_promise(task.root_promise_id)
    promises = {"root": _promise_ref(base_url, task.root_promise_id, root)}
    if task.type == "resume":
        leaf_id = task.leaf_promise_id or task.root_promise_id
        leaf = await tx.get_promise(leaf_id)
        promises["leaf"] = _promise_ref(base_url, leaf_id, leaf)
    return {"type": task.type, "promises": promises}


async def claim_task(
    tx: Transaction, clock: Clock, request: ClaimTask, base_url: str
) -> dict[str, Any]:
    """Claim a task; the claim answer body (always a 201 when it returns)."""
    now = clock.now_ms()
    for _ in range(MAX_ROUNDS):
        task = await tx.get_task(request.id)
        if task is None:
            raise ResonateError(Code.TASK_NOT_FOUND)
        if task.state is TaskState.CLAIMED:
            if task.process_id != request.process_id or task.counter != request.counter:
                raise ResonateError(Code.TASK_ALREADY_CLAIMED)
            # D17: a repeated claim by the holder answers like the first one.
            claimed = replace(task, ttl=request.ttl, expires_at=add_ms(now, request.ttl))
        elif task.state in (TaskState.COMPLETED, TaskState.TIMEDOUT):
            raise ResonateError(Code.TASK_ALREADY_COMPLETED)
        elif task.counter != request.counter:
            raise ResonateError(Code.TASK_INVALID_COUNTER)
        else:
            claimed = replace(
                task,
                state=TaskState.CLAIMED,
                process_id=request.process_id,
                ttl=request.ttl,
                expires_at=add_ms(now, request.ttl),
            )
        if await tx.swap_task(task, claimed):
            if task.state is not TaskState.CLAIMED:
                _changed(tx, "claimed")
            return await _claim_body(tx, base_url, claimed)
    raise _lost_races()


def _completed(task: Task, now: int) -> Task:
    return replace(
        task,
        state=TaskState.COMPLETED,
        process_id=None,
        attempt=0,
        ttl=0,
        expires_at=0,
        completed_on=now,
    )


def _reissued(task: Task) -> Task:
    """Back to INIT with the next counter, to be sent again at once."""
    return replace(
        task,
        state=TaskState.INIT,
        counter=task.counter + 1,
        process_id=None,
        attempt=0,
        ttl=0,
        expires_at=0,
    )


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    task: Task
    created: bool  # 201: this request changed it; 200: it was already final


async def complete_task(tx: Transaction, clock: Clock, task_id: str, counter: int) -> TaskOutcome:
    now = clock.now_ms()
    for _ in range(MAX_ROUNDS):
        task = await tx.get_task(task_id)
        if task is None:
            raise ResonateError(Code.TASK_NOT_FOUND)
        if task.state in (TaskState.COMPLETED, TaskState.TIMEDOUT):
            return TaskOutcome(task, created=False)
        if task.state is not TaskState.CLAIMED:
            raise ResonateError(Code.TASK_INVALID_STATE)
        if task.counter != counter:
            raise ResonateError(Code.TASK_INVALID_COUNTER)
        done = _completed(task, now)
        if await tx.swap_task(task, done):
            _changed(tx, "completed")
            return TaskOutcome(done, created=True)
    raise _lost_races()


async def drop_task(tx: Transaction, clock: Clock, task_id: str, counter: int) -> bool:
    """Give a claimed task back; True (201) when dropped, False (200) when nothing changed."""
    for _ in range(MAX_ROUNDS):
        task = await tx.get_task(task_id)
        if task is None:
            raise ResonateError(Code.TASK_NOT_FOUND)
        if task.state is not TaskState.CLAIMED:
            return False
        if task.counter != counter:
            raise ResonateError(Code.TASK_INVALID_COUNTER)
        if await tx.swap_task(task, _reissued(task)):
            _changed(tx, "dropped")
            return True
    raise _lost_races()


async def heartbeat_tasks(tx: Transaction, clock: Clock, process_id: str) -> int:
    return await tx.heartbeat_tasks(process_id, clock.now_ms())


# ---- operator reads (§4.10) ---------------------------------------------------------------------


async def read_task(tx: Transaction, task_id: str) -> Task:
    task = await tx.get_task(task_id)
    if task is None:
        raise ResonateError(Code.TASK_NOT_FOUND)
    return task


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[Task]
    cursor: str | None


async def search_tasks(tx: Transaction, query: TaskQuery) -> TaskPage:
    rows = await tx.search_tasks(query)
    cursor = task_cursor(query, rows[-1][0]) if rows and len(rows) == query.limit else None
    return TaskPage([task for _, task in rows], cursor)


# ---- the enqueue loop's transactions (§4.7) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message to send, for a task already marked as sent (ENQUEUED, or COMPLETED for a
    notify) in the transaction that selected it."""

    task: Task
    destination: Destination
    message: dict[str, Any]

    @property
    def head(self) -> dict[str, str] | None:
        return self.task.head


@dataclass(frozen=True, slots=True)
class EnqueuePass:
    selected: int
    deliveries: list[Delivery]
    unknown: list[Task]  # tasks whose recv could not be resolved


# Claim deadline while a delivery is in flight for a plugin without one (ttc = 0): if this
# server dies mid-send, the task is re-issued instead of waiting forever.
IN_FLIGHT_GUARD_MS = 120_000


async def take_sendable(
    tx: Transaction,
    clock: Clock,
    limit: int,
    sender: Sender,
    ttc_of: Callable[[str], int],
    base_url: str,
) -> EnqueuePass:
    """Select due INIT tasks (one per idle root) and apply the INIT rows of §4.2: time out,
    complete (root no longer pending), or mark as sent and return what to deliver."""
    now = clock.now_ms()
    selected = await tx.sendable_tasks(now, limit)
    deliveries: list[Delivery] = []
    unknown: list[Task] = []
    for task in selected:
        if now >= task.timeout:
            timed_out = replace(task, state=TaskState.TIMEDOUT, completed_on=task.timeout)
            if await tx.swap_task(task, timed_out):
                _changed(tx, "timedout")
            continue
        root = await tx.get_promise(task.root_promise_id)
        destination = sender.resolve(task.recv)
        if task.type == "notify":
            # A notify is sent once, whatever happens to the send.
            if not await tx.swap_task(task, _completed(task, now)):
                continue
            _changed(tx, "completed")
            if destination is None or root is None:
                unknown.append(task)
            else:
                message = {"type": "notify", "promise": root.to_json()}
                deliveries.append(Delivery(task, destination, message))
            continue
        if root is None or root.state is not PromiseState.PENDING:
            if await tx.swap_task(task, _completed(task, now)):
                _changed(tx, "completed")
            continue
        if destination is None:
            retry = replace(task, attempt=task.attempt + 1, expires_at=now + UNKNOWN_RECV_RETRY_MS)
            if await tx.swap_task(task, retry):
                unknown.append(retry)
            continue
        ttc = ttc_of(destination.plugin)
        sent = replace(
            task,
            state=TaskState.ENQUEUED,
            attempt=task.attempt + 1,
            expires_at=add_ms(now, ttc or IN_FLIGHT_GUARD_MS),
        )
        if await tx.swap_task(task, sent):
            deliveries.append(Delivery(sent, destination, task_message(base_url, sent)))
    return EnqueuePass(len(selected), deliveries, unknown)


@dataclass(frozen=True, slots=True)
class SendResult:
    task: Task  # as marked ENQUEUED
    delivered: bool
    ttr: int  # retry delay of its plugin
    ttc: int  # claim deadline of its plugin (0 = none)


async def record_sends(tx: Transaction, clock: Clock, results: list[SendResult]) -> None:
    """Write the outcome of deliveries: a failure goes back to INIT after ``ttr``; a success
    through a plugin without a claim deadline drops the in-flight guard. A task that moved on
    meanwhile (claimed, completed, re-issued) is left alone."""
    now = clock.now_ms()
    for result in results:
        task = result.task
        if not result.delivered:
            await tx.swap_task(
                task, replace(task, state=TaskState.INIT, expires_at=add_ms(now, result.ttr))
            )
        elif result.ttc == 0:
            await tx.swap_task(task, replace(task, expires_at=0))


async def time_out_tasks(tx: Transaction, clock: Clock, limit: int) -> int:
    """One batch of the task timeout loop: re-issue tasks whose claim deadline or lease passed,
    time out those past their timeout. Returns how many tasks it examined."""
    now = clock.now_ms()
    expired = await tx.expired_tasks(now, limit)
    for task in expired:
        if now >= task.timeout:
            if await tx.swap_task(
                task, replace(task, state=TaskState.TIMEDOUT, completed_on=task.timeout)
            ):
                _changed(tx, "timedout")
        elif await tx.swap_task(task, _reissued(task)):
            _changed(tx, "reissued")
    return len(expired)
