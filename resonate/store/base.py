"""The narrow storage interface the server's operations are written against.

An *operation* is an ``async def op(tx) -> T`` over a :class:`Transaction`. A store runs it
inside a transaction and returns its result once the transaction has committed durably
(http-api.md §14.1). Domain errors (:class:`ResonateError`) raised by an operation are answers,
not failures: the writes the operation made before raising are kept (a lazy timeout persists
even when the request answers 409). Any other exception rolls the operation back alone.

Operations must only await the transaction's methods: the SQLite backend drives them
synchronously inside its writer thread, where nothing else may suspend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from resonate.core.callback import Callback, CallbackQuery
from resonate.core.lock import Lock, LockQuery
from resonate.core.promise import Promise, PromiseState, Value
from resonate.core.schedule import Schedule
from resonate.core.search import PromiseIdQuery, PromiseQuery, ScheduleQuery, TaskQuery
from resonate.core.task import Task, TaskState
from resonate.core.task2026 import Task2026

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened inside a committed transaction (for metrics and wake-ups)."""

    kind: str  # "promise" | "task" | "schedule" | "schedule_firing" | "lock"
    name: str  # e.g. "created", "resolved", "rejected_timedout"; for tasks the tasks_total state
    count: int = 1


@dataclass(frozen=True, slots=True)
class Completion:
    """A promise just completed, with the tasks its completion completed and created."""

    promise: Promise
    tasks_completed: int
    tasks_created: int
    tasks_woken: int = 0  # 2026 tasks now pending and due for an execute
    unblocks: int = 0  # 2026 unblock messages queued


@dataclass(frozen=True, slots=True)
class Counts:
    """How many records there are: promises and tasks by state (states without any are
    absent), schedules, and locks held (not expired) at the time counted."""

    promises: dict[PromiseState, int]
    tasks: dict[TaskState, int]
    schedules: int
    locks: int
    tasks_2026: dict[str, int] = field(default_factory=dict)  # 2026-protocol tasks by state


@dataclass(frozen=True, slots=True)
class Purged:
    """What one retention batch deleted: promises, and the tasks (REST and 2026) that went
    with them."""

    promises: int = 0
    tasks: int = 0


# The states a purge may delete: every final one, never PENDING.
FINAL_STATES: tuple[PromiseState, ...] = tuple(s for s in PromiseState if s.is_completed)


@dataclass(frozen=True, slots=True)
class PurgeQuery:
    """Which completed promises a purge may delete (the retention loop and
    ``POST /promises/purge`` alike): those in a state of ``cutoffs`` completed at or before
    that state's cutoff (ms), whose id matches the ``*`` pattern ``id`` and which hold every
    tag of ``tags``. A state absent from ``cutoffs`` is never purged; the keep rules of
    ``Transaction.purge_promises`` apply on top."""

    cutoffs: Mapping[PromiseState, int]
    id: str = "*"
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if PromiseState.PENDING in self.cutoffs:
            raise ValueError("a pending promise is never purged")

    def by_cutoff(self) -> list[tuple[int, tuple[PromiseState, ...]]]:
        """The states grouped by cutoff, earliest cutoff first: one SQL condition per group
        (usually one group: the same cutoff for every state)."""
        groups: dict[int, list[PromiseState]] = {}
        for state, cutoff in sorted(self.cutoffs.items()):
            groups.setdefault(cutoff, []).append(state)
        return [(cutoff, tuple(states)) for cutoff, states in sorted(groups.items())]

    @property
    def all_states(self) -> bool:
        """Every completed state, at one cutoff: then no condition on the state is needed
        beyond "completed"."""
        return set(self.cutoffs) == set(FINAL_STATES) and len(set(self.cutoffs.values())) == 1


class Transaction(Protocol):
    def emit(self, event: Event) -> None:
        """Publish ``event`` if and when the transaction commits."""

    async def get_promise(self, promise_id: str) -> Promise | None: ...

    async def insert_promise(self, promise: Promise, invoke: Task | None = None) -> bool:
        """Insert unless the id exists, with the promise's ``invoke`` task if given, in one
        statement where the store can; False (and nothing written) when the id exists.

        The invoke task's id derives from the new promise's id, so it cannot exist already;
        if it did, the whole insert fails rather than store the promise without its task."""

    async def complete_promise(
        self,
        promise_id: str,
        state: PromiseState,
        value: Value,
        idempotency_key: str | None,
        completed_on: int,
        *,
        now: int,
        unless_overdue_at: int | None = None,
    ) -> Completion | None:
        """Complete the promise if it is still PENDING (and, with ``unless_overdue_at``, its
        timeout is after that time), then, in this order (http-api.md §2.8), complete the
        INIT, ENQUEUED and CLAIMED tasks rooted at it and turn its callbacks and subscriptions
        into INIT tasks created at ``now``, deleting them. The same call runs the 2026 steps
        (protocol-2026.md §5): the promise's 2026 task is fulfilled and its callbacks as
        awaiter dropped; the tasks awaiting it count a resume, suspended ones become pending
        and due at ``now``; its listeners become queued unblocks. None when nothing changed."""

    async def search_promises(self, query: PromiseQuery) -> list[tuple[int, Promise]]:
        """A page of (sort id, promise), newest first, after the query's position."""

    async def search_promises_by_id(self, query: PromiseIdQuery) -> list[Promise]:
        """Up to ``query.limit + 1`` promises in id order (byte order of the UTF-8 id) with
        an id after ``query.after_id``, the exact state and every tag of the query; as stored,
        overdue ones included. The extra row tells the caller that another page exists."""

    async def overdue_promises(
        self, now: int, limit: int, query: PromiseQuery | None = None
    ) -> list[Promise]:
        """PENDING promises with ``timeout <= now``, optionally restricted by a search query's
        id pattern and tags."""

    async def earliest_pending_timeout(self) -> int | None: ...

    async def task_is_claimed(self, task_id: str, counter: int) -> bool:
        """The fencing check: a task with this id and counter exists and is CLAIMED."""

    async def get_callback(self, callback_id: str) -> Callback | None: ...

    async def insert_callback(self, callback: Callback) -> bool:
        """Register unless the id exists; False when it does."""

    async def list_callbacks(self, query: CallbackQuery) -> list[tuple[int, Callback]]:
        """A page of (sort id, callback) registered on the query's promise, oldest first,
        after the query's position."""

    async def get_task(self, task_id: str) -> Task | None: ...

    async def insert_task(self, task: Task) -> bool:
        """Insert unless the id exists; False when it does."""

    async def swap_task(self, old: Task, new: Task) -> bool:
        """Write ``new`` over the stored task if it is still in ``old``'s state and counter
        (every task transition is this guarded update, http-api.md §4.2)."""

    async def heartbeat_tasks(self, process_id: str, now: int) -> int:
        """Extend the lease of every task CLAIMED by ``process_id``; how many there were."""

    async def search_tasks(self, query: TaskQuery) -> list[tuple[int, Task]]:
        """A page of (sort id, task), newest first, after the query's position."""

    async def sendable_tasks(self, now: int, limit: int) -> list[Task]:
        """INIT tasks due by ``now``: the oldest per root, skipping roots that already have
        an ENQUEUED or CLAIMED task (§4.7)."""

    async def expired_tasks(self, now: int, limit: int) -> list[Task]:
        """ENQUEUED or CLAIMED tasks whose claim deadline or lease passed, or that timed out."""

    # ---- the 2026-04-01 protocol (protocol-2026.md §3.2, §4) ----

    async def get_task_2026(self, task_id: str) -> Task2026 | None: ...

    async def insert_task_2026(self, task: Task2026) -> bool:
        """Insert unless the id exists; False when it does."""

    async def swap_task_2026(self, old: Task2026, new: Task2026) -> bool:
        """Write ``new`` over the stored task if it is still in ``old``'s state and version."""

    async def search_tasks_2026(
        self, state: str | None, after_id: str | None, limit: int
    ) -> list[Task2026]:
        """Up to ``limit`` tasks in id order after ``after_id``, with that state if given."""

    async def leases_ending_2026(self, before: int, limit: int) -> list[Task2026]:
        """Up to ``limit`` acquired tasks whose lease ends at or before ``before``, soonest
        first (GET /doctor)."""

    async def heartbeat_task_2026(self, task_id: str, version: int, pid: str, now: int) -> bool:
        """Extend the lease (now + its ttl) of the task if acquired by ``pid`` at ``version``."""

    async def insert_callback_2026(self, awaited: str, awaiter: str, now: int) -> bool: ...

    async def delete_callbacks_2026_of_awaiter(self, awaiter: str) -> None: ...

    async def insert_listener_2026(self, promise_id: str, address: str, now: int) -> bool: ...

    async def branch_promises(self, branch: str, except_id: str) -> list[Promise]:
        """Every promise whose ``resonate:branch`` tag is ``branch`` but ``except_id``, by id."""

    async def due_tasks_2026(self, now: int, limit: int, next_retry_at: int) -> list[Task2026]:
        """Pending tasks with ``retry_at <= now`` (earliest first), their timer moved to
        ``next_retry_at`` in the same statement: the executes to send."""

    async def expire_leases_2026(self, now: int, limit: int) -> int:
        """Acquired tasks whose lease lapsed by ``now`` back to pending, due at ``now``."""

    async def take_unblocks_2026(self, limit: int) -> list[tuple[str, Promise]]:
        """Remove and return the oldest queued unblocks: (address, the settled promise)."""

    async def count_tasks_2026(self) -> dict[str, int]:
        """2026 tasks by state (states without any are absent)."""

    # ---- debug mode (`resonate dev`; protocol-2026.md §3.4) ----

    async def debug_rows(self, table: str) -> list[tuple[object, ...]]:
        """Every row of one of ``DEBUG_TABLES``, in its column order."""

    async def debug_wipe(self) -> None:
        """Delete every row of every table of ``DEBUG_TABLES``."""

    # ---- locks (http-api.md §8) ----

    async def get_lock(self, resource_id: str) -> Lock | None: ...

    async def acquire_lock(self, lock: Lock, now: int) -> bool:
        """Write ``lock`` over the resource's lock only when there is none, it is held by the
        same execution, or it expired by ``now`` (D5); False when another execution holds it."""

    async def release_lock(self, resource_id: str, execution_id: str) -> bool:
        """Delete the lock if this execution holds it; False when there was no such lock."""

    async def heartbeat_locks(self, process_id: str, now: int) -> int:
        """Set ``expires_at = now + ttl`` on every lock of the process; how many there were."""

    async def search_locks(self, query: LockQuery) -> list[Lock]:
        """A page of locks, by resource id ascending, after the query's position."""

    async def delete_expired_locks(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` locks with ``expires_at <= now``; how many were deleted."""

    async def count_locks(self) -> int: ...

    async def purge_promises(self, query: PurgeQuery, limit: int) -> Purged:
        """Retention and purge: delete at most ``limit`` promises the query selects (oldest
        completion first) that nothing refers to any more: not pending, no INIT/ENQUEUED/
        CLAIMED task rooted at them, no callback or subscription on them, no callback whose
        task will resume them, no 2026 awaiter, listener, queued unblock or unfulfilled 2026
        task, no pending root, origin or parent. Their tasks, their 2026 task and the 2026
        callbacks they registered as awaiter go with them."""

    async def count_purgeable(self, query: PurgeQuery, sample: int) -> tuple[int, list[str]]:
        """A purge's dry run: how many promises ``purge_promises`` would delete now, over all
        its batches (the same conditions and keep rules), and the ids of the first ``sample``
        of them in the order it would take them."""

    async def purge_tasks(self, before: int, limit: int) -> int:
        """Retention of REST tasks: delete at most ``limit`` COMPLETED or TIMEDOUT tasks
        completed at or before ``before``, oldest first; how many were deleted."""

    async def oldest_completed(self) -> tuple[int | None, int | None]:
        """The completion time of the oldest completed promise and of the oldest completed
        (COMPLETED or TIMEDOUT) REST task, None where there is none: each one probe of its
        partial index."""

    async def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    async def insert_schedule(self, schedule: Schedule) -> bool:
        """Insert unless the id exists; False when it does."""

    async def delete_schedule(self, schedule_id: str) -> bool: ...

    async def search_schedules(self, query: ScheduleQuery) -> list[tuple[int, Schedule]]:
        """A page of (sort id, schedule), newest first, after the query's position."""

    async def search_schedules_by_id(
        self, promise_tags: dict[str, str], after_id: str | None, limit: int
    ) -> list[Schedule]:
        """Up to ``limit`` schedules in id order after ``after_id`` whose promise tags hold
        every given tag (the 2026 protocol's ``schedule.search``)."""

    async def due_schedules(self, now: int, limit: int) -> list[Schedule]:
        """Schedules with ``next_run_time <= now``, by (next run time, creation order)."""

    async def advance_schedule(
        self, schedule_id: str, expected_next: int, last_run_time: int, next_run_time: int
    ) -> bool:
        """Move a schedule to its next slot if its next run time is still ``expected_next``
        (so two loops or two servers never fire one slot twice)."""

    # ---- operator dashboard reads (read-only; each statement served by an index) ----

    async def count_records(self, now: int) -> Counts:
        """Promises and tasks by state, schedules, and locks with ``expires_at > now``: one
        statement, so one snapshot. Index scans, but over every row: callers cache it."""

    async def stuck_promises(self, now: int, limit: int) -> list[Promise]:
        """PENDING promises with ``timeout <= now`` (not yet timed out by the loop), by
        timeout then id. Unlike ``overdue_promises``, locks nothing."""

    async def tasks_with_lease_ending(self, until: int, limit: int) -> list[Task]:
        """CLAIMED tasks with ``expires_at <= until``, by expiry then id."""

    async def reissued_tasks(self, min_counter: int, limit: int) -> list[Task]:
        """INIT, ENQUEUED or CLAIMED tasks with ``counter >= min_counter``, highest counter
        first, then by id."""

    async def waiting_tasks(self, limit: int) -> list[Task]:
        """INIT tasks (waiting to be sent), soonest due first (``expires_at`` then sort id)."""

    async def overdue_schedules(self, now: int, limit: int) -> list[Schedule]:
        """Schedules with ``next_run_time < now``, by next run time then id. Unlike
        ``due_schedules``, locks nothing."""

    async def stale_locks(self, now: int, limit: int) -> list[Lock]:
        """Locks whose holder has not renewed them for more than half their ttl
        (``expires_at - now < ttl / 2``), expired ones included, longest stale first."""


# The tables `debug.snap` reads and `debug.reset` wipes.
DEBUG_TABLES = (
    "promises",
    "callbacks",
    "tasks",
    "schedules",
    "locks",
    "tasks_2026",
    "callbacks_2026",
    "listeners_2026",
    "outbox_2026",
)

Operation = Callable[[Transaction], Awaitable[T]]
Shortcut = Callable[[Transaction], Awaitable[T | None]]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: int
    latest: int

    @property
    def pending(self) -> bool:
        return self.current < self.latest


class Store(Protocol):
    kind: str

    async def run(self, operation: Operation[T], *, shortcut: Shortcut[T] | None = None) -> T:
        """Run ``operation`` in its own transaction; its result once committed.

        ``shortcut`` serves the common case of a request in fewer round trips: an operation
        that issues exactly one statement, so that it is atomic on its own, and returns None
        when that statement did not settle the request (and changed nothing). A store where a
        statement costs a round trip (PostgreSQL) runs it outside a transaction and runs
        ``operation`` only after a None; a store where a transaction costs nothing extra
        (SQLite) runs ``operation`` alone. Both ways give the same answer.
        """

    async def read(self, operation: Operation[T]) -> T:
        """Run a read-only ``operation`` (it must not write) away from the write path where
        the store can: SQLite runs it on one of its reader connections, each in a thread of its
        own, on a snapshot of the last commit, so a long read never holds up the writer's
        batches (an in-memory database has one connection and reads through the writer);
        PostgreSQL runs each of its statements on its own on a pooled connection, without
        BEGIN and COMMIT."""

    async def schema_status(self) -> SchemaStatus:
        """The database's schema version and the latest this server knows; raises if the store
        does not answer."""

    async def close(self) -> None: ...


class StoreUnavailable(Exception):
    """The store cannot be opened or does not answer."""


class MigrationError(Exception):
    """The schema is not at the version this server expects."""
