"""Operations of the 2026-04-01 protocol's tasks, callbacks and listeners (protocol-2026.md
§3.1, §3.2, §4.2, §4.3, §7), written once over the store's Transaction as the REST operations.

Promises are the shared table and rules of ``resonate.server.promises`` (P3): creating,
settling and timing out go through it, and its one settlement cascade also fulfils the
promise's 2026 task, wakes the tasks awaiting it and queues its unblocks. What this module adds
is the 2026 task model: one task per targeted promise, with the promise's id, a version that
only an acquisition bumps, a lease while acquired and a retry timer while pending.

Executes are not written anywhere: a pending task whose ``retry_at`` has come is due, and the
delivery loop (``take_due``) sends its execute and moves the timer on by the retry timeout.
So there is at most one queued execute per task, and a lost one is sent again.

Refusals raise ``EnvelopeError`` (a ResonateError: writes made before it, a lazy timeout, are
kept).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from resonate.core.clock import INT64_MAX, Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.promise import EMPTY_VALUE, Promise, PromiseState, Value
from resonate.core.schedule import SCHEDULE_TAG, Schedule, render_template
from resonate.core.task2026 import (
    BRANCH_TAG,
    DELAY_TAG,
    TARGET_TAG,
    Task2026,
    Task2026State,
)
from resonate.server import promises
from resonate.server.envelope.protocol import EnvelopeError
from resonate.store.base import Event, Transaction

DUE = Event("task_2026", "due")  # a pending task whose execute is due: wakes delivery
CREATED = Event("task_2026", "created")


@dataclass(frozen=True, slots=True)
class NewPromise:
    """A validated ``promise.create`` (also the action of ``task.create`` and fenced creates)."""

    id: str
    timeout_at: int
    param: Value = EMPTY_VALUE
    tags: dict[str, str] | None = None

    def command(self) -> promises.CreatePromise:
        return promises.CreatePromise(
            id=self.id,
            timeout=self.timeout_at,
            param=self.param,
            tags=dict(self.tags or {}),
            repeat_returns_stored=True,
            settle_if_past_timeout=True,
        )


@dataclass(frozen=True, slots=True)
class Settle:
    """A validated ``promise.settle``."""

    id: str
    state: PromiseState
    value: Value = EMPTY_VALUE

    def command(self) -> promises.CompletePromise:
        return promises.CompletePromise(
            id=self.id, state=self.state, value=self.value, repeat_returns_stored=True
        )


@dataclass(frozen=True, slots=True)
class Held:
    """A task with its promise and preload: the answer of task.create and task.acquire."""

    task: Task2026
    promise: Promise
    preload: list[Promise]


@dataclass(frozen=True, slots=True)
class Fenced:
    """The inner answer of a fenced action: its status and promise (None for a 404)."""

    status: int
    promise: Promise | None
    preload: list[Promise]


def not_found(what: str) -> EnvelopeError:
    return EnvelopeError(404, f"{what} not found")


def conflict(message: str) -> EnvelopeError:
    return EnvelopeError(409, message)


# ---- promises with targets ------------------------------------------------------------------


async def _add_task(tx: Transaction, promise: Promise, now: int) -> Task2026 | None:
    """The task of a promise just created with a target: pending v0 and due (at its delay, if
    any), or fulfilled v0 when the promise was born settled. None without a target."""
    target = promise.tags.get(TARGET_TAG)
    if target is None:
        return None
    if promise.state.is_completed:
        task = Task2026(promise.id, Task2026State.FULFILLED, 0, target, now, now)
    else:
        delay = promise.tags.get(DELAY_TAG)
        retry_at = max(now, int(delay)) if delay is not None else now
        task = Task2026(promise.id, Task2026State.PENDING, 0, target, now, now, retry_at=retry_at)
        if retry_at <= now:
            tx.emit(DUE)
    await tx.insert_task_2026(task)
    tx.emit(CREATED)
    return task


async def create_promise(tx: Transaction, clock: Clock, request: NewPromise) -> Promise:
    """``promise.create``: the stored promise if the id exists (nothing compared); else the new
    one, with its pending task when it has a target (§3.1)."""
    return (await _create(tx, clock, request)).promise


async def _create(tx: Transaction, clock: Clock, request: NewPromise) -> promises.Outcome:
    outcome = await promises.create_promise(tx, clock, request.command())
    if outcome.created:
        await _add_task(tx, outcome.promise, clock.now_ms())
    return outcome


async def preload(tx: Transaction, promise: Promise) -> list[Promise]:
    """The other promises of the promise's branch, by id (§3.2)."""
    branch = promise.tags.get(BRANCH_TAG)
    if branch is None:
        return []
    return await tx.branch_promises(branch, promise.id)


async def _promise(tx: Transaction, promise_id: str, now: int) -> Promise:
    promise = await promises.current_promise(tx, promise_id, now)
    if promise is None:
        raise not_found("Promise")
    return promise


async def _task(tx: Transaction, task_id: str, now: int) -> tuple[Task2026, Promise | None]:
    """The task after the lazy timeout of its promise (which may fulfil it); 404 if none."""
    promise = await promises.current_promise(tx, task_id, now)
    task = await tx.get_task_2026(task_id)
    if task is None:
        raise not_found("Task")
    return task, promise


def _check_held(task: Task2026, version: int) -> None:
    if task.state is not Task2026State.ACQUIRED:
        raise conflict("Task is not acquired")
    if task.version != version:
        raise conflict("Version mismatch")


async def _swap(tx: Transaction, old: Task2026, new: Task2026) -> Task2026:
    if not await tx.swap_task_2026(old, new):
        raise conflict("Task changed concurrently")
    return new


def _acquired(task: Task2026, pid: str, ttl: int, now: int) -> Task2026:
    return replace(
        task,
        state=Task2026State.ACQUIRED,
        version=task.version + 1,
        pid=pid,
        ttl=ttl,
        lease_at=now + ttl,
        retry_at=None,
        resumes=0,
        updated_at=now,
    )


# ---- task kinds -----------------------------------------------------------------------------


async def create_task(
    tx: Transaction, clock: Clock, request: NewPromise, pid: str, ttl: int
) -> Held:
    """``task.create``: a new promise with its task born acquired v1 (no execute); on an
    existing promise, its pending task acquired, its fulfilled task returned, 409 for a live
    one, 422 when it has no task (§3.2)."""
    now = clock.now_ms()
    existing = await promises.current_promise(tx, request.id, now)
    if existing is None:
        outcome = await promises.create_promise(tx, clock, request.command())
        promise = outcome.promise
        if outcome.created:
            target = promise.tags.get(TARGET_TAG, "")
            if promise.state.is_completed:
                task = Task2026(promise.id, Task2026State.FULFILLED, 0, target, now, now)
                await tx.insert_task_2026(task)
                return Held(task, promise, [])
            task = _acquired(
                Task2026(promise.id, Task2026State.PENDING, 0, target, now, now), pid, ttl, now
            )
            await tx.insert_task_2026(task)
            tx.emit(CREATED)
            return Held(task, promise, await preload(tx, promise))
        existing = promise  # created by another request meanwhile
    stored = await tx.get_task_2026(request.id)
    if stored is None:
        raise EnvelopeError(422, "Promise exists without a task")
    if stored.state is Task2026State.PENDING:
        acquired = await _swap(tx, stored, _acquired(stored, pid, ttl, now))
        return Held(acquired, existing, await preload(tx, existing))
    if stored.state is Task2026State.FULFILLED:
        return Held(stored, existing, [])
    raise conflict("Already exists")


async def acquire_task(
    tx: Transaction, clock: Clock, task_id: str, version: int, pid: str, ttl: int
) -> Held:
    now = clock.now_ms()
    task, promise = await _task(tx, task_id, now)
    if task.state is not Task2026State.PENDING:
        raise conflict("Task is not pending")
    if task.version != version:
        raise conflict("Version mismatch")
    assert promise is not None
    task = await _swap(tx, task, _acquired(task, pid, ttl, now))
    return Held(task, promise, await preload(tx, promise))


async def release_task(tx: Transaction, clock: Clock, task_id: str, version: int) -> None:
    """Back to pending at the same version, its execute due at once."""
    now = clock.now_ms()
    task, _ = await _task(tx, task_id, now)
    _check_held(task, version)
    await _swap(tx, task, _pending(task, now))
    tx.emit(DUE)


def _pending(task: Task2026, now: int) -> Task2026:
    return replace(
        task,
        state=Task2026State.PENDING,
        pid=None,
        ttl=None,
        lease_at=None,
        retry_at=now,
        updated_at=now,
    )


async def fulfill_task(
    tx: Transaction, clock: Clock, task_id: str, version: int, settle: Settle
) -> Promise:
    """Settle the task's promise (the cascade fulfils the task); 409 unless held at
    ``version``, also when a lazy timeout fulfilled it a moment ago."""
    now = clock.now_ms()
    task, _ = await _task(tx, task_id, now)
    _check_held(task, version)
    outcome = await promises.complete_promise(tx, clock, settle.command())
    return outcome.promise


@dataclass(frozen=True, slots=True)
class Suspension:
    suspended: bool  # False: an awaited promise is settled, go on (300)
    preload: list[Promise]


async def suspend_task(
    tx: Transaction, clock: Clock, task_id: str, version: int, awaited: list[str]
) -> Suspension:
    now = clock.now_ms()
    task, promise = await _task(tx, task_id, now)
    _check_held(task, version)
    unique = list(dict.fromkeys(awaited))
    found: list[Promise] = []
    for awaited_id in unique:
        current = await promises.current_promise(tx, awaited_id, now)
        if current is None:
            raise EnvelopeError(422, f"Awaited promise not found: {awaited_id}")
        found.append(current)
    if any(p.state.is_completed for p in found):
        assert promise is not None
        return Suspension(False, await preload(tx, promise))
    for awaited_id in unique:
        await tx.insert_callback_2026(awaited_id, task_id, now)
    suspended = replace(
        task,
        state=Task2026State.SUSPENDED,
        pid=None,
        ttl=None,
        lease_at=None,
        retry_at=None,
        updated_at=now,
    )
    await _swap(tx, task, suspended)
    return Suspension(True, [])


async def fence_create(
    tx: Transaction, clock: Clock, task_id: str, version: int, request: NewPromise
) -> Fenced:
    now = clock.now_ms()
    task, promise = await _task(tx, task_id, now)
    _check_fence(task, version)
    created = await create_promise(tx, clock, request)
    assert promise is not None
    return Fenced(200, created, await preload(tx, promise))


async def fence_settle(
    tx: Transaction, clock: Clock, task_id: str, version: int, settle: Settle
) -> Fenced:
    now = clock.now_ms()
    task, promise = await _task(tx, task_id, now)
    _check_fence(task, version)
    assert promise is not None
    try:
        outcome = await promises.complete_promise(tx, clock, settle.command())
    except ResonateError as error:
        if error.code is Code.PROMISE_NOT_FOUND:
            return Fenced(404, None, await preload(tx, promise))
        raise
    # After the settle: the preload shows the child as it now is.
    return Fenced(200, outcome.promise, await preload(tx, promise))


def _check_fence(task: Task2026, version: int) -> None:
    """The version is the fencing token: the action runs only on the task held at it."""
    if task.state is not Task2026State.ACQUIRED or task.version != version:
        raise conflict("Version mismatch")


async def heartbeat_tasks(
    tx: Transaction, clock: Clock, pid: str, tasks: list[tuple[str, int]]
) -> int:
    """Extend the lease of each (id, version) acquired by ``pid``; the rest is skipped."""
    now = clock.now_ms()
    beaten = 0
    for task_id, version in tasks:
        beaten += await tx.heartbeat_task_2026(task_id, version, pid, now)
    return beaten


async def halt_task(tx: Transaction, clock: Clock, task_id: str) -> None:
    now = clock.now_ms()
    task, _ = await _task(tx, task_id, now)
    if task.state is Task2026State.FULFILLED:
        raise conflict("Task is fulfilled")
    if task.state is Task2026State.HALTED:
        return
    halted = replace(
        task,
        state=Task2026State.HALTED,
        pid=None,
        ttl=None,
        lease_at=None,
        retry_at=None,
        updated_at=now,
    )
    await _swap(tx, task, halted)


async def continue_task(tx: Transaction, clock: Clock, task_id: str) -> None:
    now = clock.now_ms()
    task, _ = await _task(tx, task_id, now)
    if task.state is not Task2026State.HALTED:
        raise conflict("Task is not halted")
    await _swap(tx, task, _pending(task, now))
    tx.emit(DUE)


async def get_task(tx: Transaction, clock: Clock, task_id: str) -> Task2026:
    task, _ = await _task(tx, task_id, clock.now_ms())
    return task


async def search_tasks(
    tx: Transaction, state: str | None, after_id: str | None, limit: int
) -> tuple[list[Task2026], str | None]:
    """A page in id order; the cursor (the last id) only when more rows exist."""
    rows = await tx.search_tasks_2026(state, after_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


# ---- callbacks and listeners ----------------------------------------------------------------


async def register_callback(
    tx: Transaction, clock: Clock, awaited_id: str, awaiter_id: str
) -> Promise:
    """Store awaited -> awaiter while both are pending; when the awaited is already settled,
    wake (suspended) or count (pending, acquired) the awaiter's task instead (§3.1)."""
    now = clock.now_ms()
    awaited = await _promise(tx, awaited_id, now)
    awaiter = await promises.current_promise(tx, awaiter_id, now)
    if awaiter is None or TARGET_TAG not in awaiter.tags:
        raise EnvelopeError(422, "Awaiter promise not found or without a target")
    task = await tx.get_task_2026(awaiter_id)
    if task is None:
        raise EnvelopeError(422, "Awaiter promise has no task")
    if awaiter.state.is_completed:
        return awaited
    if not awaited.state.is_completed:
        await tx.insert_callback_2026(awaited_id, awaiter_id, now)
        return awaited
    if task.state is Task2026State.SUSPENDED:
        woken = replace(_pending(task, now), resumes=task.resumes + 1)
        await _swap(tx, task, woken)
        tx.emit(DUE)
    elif task.state in (Task2026State.PENDING, Task2026State.ACQUIRED):
        await _swap(tx, task, replace(task, resumes=task.resumes + 1, updated_at=now))
    return awaited


async def register_listener(
    tx: Transaction, clock: Clock, promise_id: str, address: str
) -> Promise:
    """One unblock to ``address`` when the promise settles; nothing stored if it has."""
    now = clock.now_ms()
    promise = await _promise(tx, promise_id, now)
    if not promise.state.is_completed:
        await tx.insert_listener_2026(promise_id, address, now)
    return promise


# ---- timers and delivery (§6, §7) -----------------------------------------------------------


async def expire_leases(tx: Transaction, clock: Clock, limit: int) -> int:
    """Acquired tasks whose lease lapsed go back to pending, their execute due at once."""
    expired = await tx.expire_leases_2026(clock.now_ms(), limit)
    if expired:
        tx.emit(Event("task_2026", "lease_expired", expired))
    return expired


async def take_due(tx: Transaction, clock: Clock, limit: int, retry_timeout: int) -> list[Task2026]:
    """The pending tasks whose execute is due, their retry timer moved on."""
    now = clock.now_ms()
    return await tx.due_tasks_2026(now, limit, now + retry_timeout)


async def take_unblocks(tx: Transaction, limit: int) -> list[tuple[str, Promise]]:
    return await tx.take_unblocks_2026(limit)


# ---- schedules (§3.3) -----------------------------------------------------------------------

# A schedule created through the 2026 protocol carries this tag (REST schedule tags are not part
# of that protocol), so that its firings make 2026 promises and tasks.
PROTOCOL_TAG = "resonate:protocol"
PROTOCOL_VERSION = "2026-04-01"
LINEAGE_TAGS = ("resonate:origin", "resonate:branch", "resonate:parent", "resonate:prefix")


def is_2026_schedule(schedule: Schedule) -> bool:
    return schedule.tags.get(PROTOCOL_TAG) == PROTOCOL_VERSION


async def fire_schedule(tx: Transaction, clock: Clock, schedule: Schedule, slot: int) -> bool:
    """The promise of one slot, through the normal create path (task and execute); the id,
    origin, branch, parent and prefix tags all the rendered template. False if it existed."""
    promise_id = render_template(schedule.promise_id, schedule.id, slot)
    tags = {**schedule.promise_tags, SCHEDULE_TAG: schedule.id}
    tags.update(dict.fromkeys(LINEAGE_TAGS, promise_id))
    request = NewPromise(
        promise_id,
        min(slot + schedule.promise_timeout, INT64_MAX),
        schedule.promise_param,
        tags,
    )
    return (await _create(tx, clock, request)).created
