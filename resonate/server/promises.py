"""Promise operations: the transactional logic of every promise route, written once.

Each operation is a coroutine over a store Transaction; protocol adapters (HTTP now, others
later), the CLI and the TUI all reach promises through these functions via the store. Time is
read from the injected clock inside the transaction, so "overdue" is decided at the moment
the operation runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from resonate.core.clock import Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.promise import (
    EMPTY_VALUE,
    Promise,
    PromiseState,
    Value,
    decide_complete_completed,
    decide_create_existing,
)
from resonate.core.routing import Router
from resonate.core.search import PromiseIdQuery, PromiseQuery, promise_cursor
from resonate.core.task import Task
from resonate.server.tasks import (
    TaskClaim,
    insert_routed_promise,
    invoke_task,
    refresh_claimed_invoke,
)
from resonate.store.base import Event, Shortcut, Store, Transaction

# A guarded write that lost a race re-reads and decides again; a few rounds always suffice,
# since every round observes a newer, completed state.
MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Fence:
    """The `task-id`/`task-counter` fencing token of a request (http-api.md §1.4)."""

    task_id: str
    counter: int


@dataclass(frozen=True, slots=True)
class CreatePromise:
    id: str
    timeout: int
    param: Value = EMPTY_VALUE
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    strict: bool = False
    fence: Fence | None = None
    head: dict[str, str] | None = None  # trace context, carried by the invoke task
    # The 2026 protocol's rules (protocol-2026.md §3.1): a repeat answers the stored promise
    # whatever the request says (no key compared), and a timeout already reached stores the
    # promise settled at once, created and settled at its timeout.
    repeat_returns_stored: bool = False
    settle_if_past_timeout: bool = False


@dataclass(frozen=True, slots=True)
class CompletePromise:
    id: str
    state: PromiseState
    value: Value = EMPTY_VALUE
    idempotency_key: str | None = None
    strict: bool = False
    fence: Fence | None = None
    # The 2026 protocol's rule: settling a settled promise answers it unchanged, never 403.
    repeat_returns_stored: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """A promise and whether this request created or completed it (201) or found it (200)."""

    promise: Promise
    created: bool
    task: Task | None = None  # the invoke task, for create-with-task answers


@dataclass(frozen=True, slots=True)
class PromisePage:
    promises: list[Promise]
    cursor: str | None


async def check_fence(tx: Transaction, fence: Fence | None) -> None:
    if fence is not None and not await tx.task_is_claimed(fence.task_id, fence.counter):
        raise ResonateError(Code.TASK_PRECONDITION_FAILED)


# One immutable event per final state, made once (an enum's name is a slow property).
_COMPLETED_EVENTS = {state: Event("promise", state.name.lower()) for state in PromiseState}


async def complete(
    tx: Transaction,
    promise_id: str,
    state: PromiseState,
    value: Value,
    idempotency_key: str | None,
    completed_on: int,
    *,
    unless_overdue_at: int | None = None,
    clock_now: int | None = None,
) -> Promise | None:
    """The single place a promise becomes completed, by a client or by its deadline.

    In the same transaction and in this order (http-api.md §2.8): the guarded update, then
    the tasks rooted at the promise are completed, then its callbacks and subscriptions become
    INIT tasks and are deleted.
    """
    now = clock_now if clock_now is not None else completed_on
    done = await tx.complete_promise(
        promise_id,
        state,
        value,
        idempotency_key,
        completed_on,
        now=now,
        unless_overdue_at=unless_overdue_at,
    )
    if done is None:
        return None
    tx.emit(_COMPLETED_EVENTS[state])
    if done.tasks_completed:
        tx.emit(Event("task", "completed", done.tasks_completed))
    if done.tasks_created:
        tx.emit(Event("task", "created", done.tasks_created))
    if done.tasks_woken:  # 2026 tasks whose execute is now due (protocol-2026.md §5)
        tx.emit(Event("task_2026", "due", done.tasks_woken))
    if done.unblocks:
        tx.emit(Event("unblock_2026", "queued", done.unblocks))
    return done.promise


async def time_out(tx: Transaction, promise: Promise, now: int) -> Promise:
    """Complete an overdue promise with its timed-out state; returns the stored result."""
    done = await complete(
        tx,
        promise.id,
        promise.timed_out_state,
        EMPTY_VALUE,
        None,
        promise.timeout,
        clock_now=now,
    )
    if done is not None:
        return done
    current = await tx.get_promise(promise.id)
    if current is None:  # pragma: no cover - promises are never deleted
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    return current


async def _current(tx: Transaction, promise_id: str, now: int) -> Promise | None:
    """The stored promise, timed out first if it is overdue (lazy timeout, §2.7)."""
    promise = await tx.get_promise(promise_id)
    if promise is not None and promise.is_overdue(now):
        promise = await time_out(tx, promise, now)
    return promise


async def current_promise(tx: Transaction, promise_id: str, now: int) -> Promise | None:
    """The stored promise after its lazy timeout (§2.7); None when there is none."""
    return await _current(tx, promise_id, now)


async def read_promise(tx: Transaction, clock: Clock, promise_id: str) -> Promise:
    promise = await _current(tx, promise_id, clock.now_ms())
    if promise is None:
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    return promise


def _new_promise(request: CreatePromise, now: int) -> Promise:
    if request.settle_if_past_timeout and request.timeout <= now:
        now = request.timeout  # created at its timeout, then timed out in the same transaction
    return Promise(
        id=request.id,
        state=PromiseState.PENDING,
        param=request.param,
        value=EMPTY_VALUE,
        timeout=request.timeout,
        idempotency_key_for_create=request.idempotency_key,
        idempotency_key_for_complete=None,
        tags=request.tags,
        created_on=now,
    )


async def create_promise(
    tx: Transaction,
    clock: Clock,
    request: CreatePromise,
    router: Router | None = None,
    claim: TaskClaim | None = None,
) -> Outcome:
    """Create a promise; when ``router`` matches it, its invoke task too, in the same
    transaction: INIT, or CLAIMED by ``claim`` (create-with-task, §2.5)."""
    if claim is None and request.fence is not None:  # create-with-task ignores fences (F6)
        await check_fence(tx, request.fence)
    now = clock.now_ms()
    for _ in range(MAX_ROUNDS):
        # Insert first: the common case (a new id) costs one statement.
        created = await _insert_new(tx, request, now, router, claim)
        if created is not None:
            if request.settle_if_past_timeout and created.promise.is_overdue(now):
                settled = await time_out(tx, created.promise, now)
                return Outcome(settled, created=True, task=created.task)
            return created
        existing = await _current(tx, request.id, now)
        if existing is not None:
            if not request.repeat_returns_stored:
                decide_create_existing(existing, request.idempotency_key, request.strict)
            task = None
            if claim is not None:
                task = await refresh_claimed_invoke(tx, request.id, claim, now)
            return Outcome(existing, created=False, task=task)
    raise ResonateError(Code.STORE_ERROR, "create kept losing races; giving up")


async def _insert_new(
    tx: Transaction,
    request: CreatePromise,
    now: int,
    router: Router | None,
    claim: TaskClaim | None,
) -> Outcome | None:
    """The promise with its invoke task, if the router matches it, in one statement; None
    when the id exists (nothing was written)."""
    promise = _new_promise(request, now)
    task = invoke_task(router, promise, now, request.head, claim)
    if not await insert_routed_promise(tx, promise, task):
        return None
    return Outcome(promise, created=True, task=task)


async def insert_new_promise(
    tx: Transaction,
    clock: Clock,
    request: CreatePromise,
    router: Router | None = None,
    claim: TaskClaim | None = None,
) -> Outcome | None:
    """The first round of create_promise on its own, for a request with no fence to check:
    one statement. None when the id exists (nothing was written)."""
    return await _insert_new(tx, request, clock.now_ms(), router, claim)


def _create_shortcut(
    clock: Clock, request: CreatePromise, router: Router | None, claim: TaskClaim | None
) -> Shortcut[Outcome] | None:
    """The store shortcut (one statement) for ``create_promise``, when the request has one:
    when there is no fence to check (create-with-task ignores fences, F6)."""
    if claim is None and request.fence is not None:
        return None
    if request.settle_if_past_timeout and request.timeout <= clock.now_ms():
        return None  # two statements: the insert, then the settlement
    return partial(insert_new_promise, clock=clock, request=request, router=router, claim=claim)


async def complete_promise(tx: Transaction, clock: Clock, request: CompletePromise) -> Outcome:
    if request.fence is not None:
        await check_fence(tx, request.fence)
    now = clock.now_ms()
    for _ in range(MAX_ROUNDS):
        # Complete first, guarded by "pending and not overdue": the common case costs one
        # statement; anything else is decided from the stored promise below.
        done = await _complete_pending(tx, request, now)
        if done is not None:
            return done
        stored = await _current(tx, request.id, now)
        if stored is None:
            raise ResonateError(Code.PROMISE_NOT_FOUND)
        if stored.state.is_completed:
            if not request.repeat_returns_stored:
                decide_complete_completed(
                    stored, request.state, request.idempotency_key, request.strict
                )
            return Outcome(stored, created=False)
    raise ResonateError(Code.STORE_ERROR, "complete kept losing races; giving up")


async def _complete_pending(tx: Transaction, request: CompletePromise, now: int) -> Outcome | None:
    done = await complete(
        tx,
        request.id,
        request.state,
        request.value,
        request.idempotency_key,
        now,
        unless_overdue_at=now,
    )
    return None if done is None else Outcome(done, created=True)


async def complete_pending_promise(
    tx: Transaction, clock: Clock, request: CompletePromise
) -> Outcome | None:
    """The first round of complete_promise on its own, for a request with no fence to check:
    one statement. None when the promise is not pending, or overdue (nothing was written)."""
    return await _complete_pending(tx, request, clock.now_ms())


def _complete_shortcut(clock: Clock, request: CompletePromise) -> Shortcut[Outcome] | None:
    """The store shortcut (one statement) for ``complete_promise``, when the request has one."""
    if request.fence is not None:
        return None
    return partial(complete_pending_promise, clock=clock, request=request)


async def run_create_promise(
    store: Store,
    clock: Clock,
    request: CreatePromise,
    router: Router | None = None,
    claim: TaskClaim | None = None,
) -> Outcome:
    """``create_promise`` as a request runs it: in one statement when the store can (a new
    id, no fence), else in a transaction."""
    return await store.run(
        partial(create_promise, clock=clock, request=request, router=router, claim=claim),
        shortcut=_create_shortcut(clock, request, router, claim),
    )


async def run_complete_promise(store: Store, clock: Clock, request: CompletePromise) -> Outcome:
    """``complete_promise`` as a request runs it: in one statement when the store can (a
    pending promise, no fence), else in a transaction."""
    return await store.run(
        partial(complete_promise, clock=clock, request=request),
        shortcut=_complete_shortcut(clock, request),
    )


async def search_promises(
    tx: Transaction, clock: Clock, query: PromiseQuery, timeout_batch: int = 100
) -> PromisePage:
    """A page of matching promises, after timing out the overdue ones the query touches."""
    now = clock.now_ms()
    while True:
        overdue = await tx.overdue_promises(now, timeout_batch, query)
        for promise in overdue:
            await time_out(tx, promise, now)
        if len(overdue) < timeout_batch:
            break
    return await _page(tx, query)


async def _page(tx: Transaction, query: PromiseQuery) -> PromisePage:
    rows = await tx.search_promises(query)
    cursor = promise_cursor(query, rows[-1][0]) if len(rows) == query.limit and rows else None
    return PromisePage([promise for _, promise in rows], cursor)


# ---- reads off the write path ------------------------------------------------------------------
# A read runs on Store.read (SQLite: a reader connection, so it never waits for the writer's
# batches). A read that would write, the lazy timeout of an overdue promise (§2.7), answers None
# there and runs again through the writer, which times the promise out first.


async def peek_promise(tx: Transaction, clock: Clock, promise_id: str) -> Promise | None:
    """The stored promise, or None when it is overdue (its lazy timeout must write)."""
    promise = await tx.get_promise(promise_id)
    if promise is None:
        raise ResonateError(Code.PROMISE_NOT_FOUND)
    return None if promise.is_overdue(clock.now_ms()) else promise


async def run_read_promise(store: Store, clock: Clock, promise_id: str) -> Promise:
    """``read_promise`` as a request runs it: off the write path unless it must write."""
    promise = await store.read(partial(peek_promise, clock=clock, promise_id=promise_id))
    if promise is None:
        promise = await store.run(partial(read_promise, clock=clock, promise_id=promise_id))
    return promise


async def peek_search(tx: Transaction, clock: Clock, query: PromiseQuery) -> PromisePage | None:
    """The page, or None when a promise the query touches is overdue (it must time out first)."""
    if await tx.overdue_promises(clock.now_ms(), 1, query):
        return None
    return await _page(tx, query)


async def run_search_promises(
    store: Store, clock: Clock, query: PromiseQuery, timeout_batch: int = 100
) -> PromisePage:
    """``search_promises`` as a request runs it: off the write path unless it must write."""
    page = await store.read(partial(peek_search, clock=clock, query=query))
    if page is None:
        page = await store.run(
            partial(search_promises, clock=clock, query=query, timeout_batch=timeout_batch)
        )
    return page


async def search_promises_by_id(tx: Transaction, query: PromiseIdQuery) -> PromisePage:
    """A page of matching promises in id order, as stored (no lazy timeout: the 2026
    protocol's search does not run one); the cursor, the last id, only when more rows exist."""
    rows = await tx.search_promises_by_id(query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return PromisePage(rows, rows[-1].id if more else None)


async def time_out_overdue(tx: Transaction, clock: Clock, limit: int) -> int:
    """One batch of the eager timeout loop (§2.7); returns how many promises timed out."""
    now = clock.now_ms()
    overdue = await tx.overdue_promises(now, limit)
    for promise in overdue:
        await time_out(tx, promise, now)
    return len(overdue)


async def earliest_pending_timeout(tx: Transaction) -> int | None:
    return await tx.earliest_pending_timeout()
