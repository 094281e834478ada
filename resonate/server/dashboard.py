"""The operator dashboard reads (GET /stats, GET /stuck), written once over a Transaction.

Both are read-only and go through ``Store.read``, so on SQLite they never wait for, nor hold
up, the writer's batches. Every statement is served by an index (migration 004), but counting
still visits every row of a state, so counts are shared by all callers for a while
(``CountsCache``); the stuck lists are short indexed range scans and are read on each call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from functools import partial

from resonate.core.clock import Clock
from resonate.core.lock import Lock
from resonate.core.promise import Promise
from resonate.core.schedule import Schedule
from resonate.core.task import Task, add_ms
from resonate.store.base import Counts, Store, Transaction

# ---- counts (GET /stats) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountSnapshot:
    counts: Counts
    counted_at: int  # the clock when counted, ms


class CountsCache:
    """One count at a time, shared by every caller until it is ``min_age_ms`` old AND
    ``cost_factor`` times older than the count took: polling dashboards then cost the store
    at most 1/``cost_factor`` of its time, however many rows and callers there are. Age is
    read from the injected clock (a clock moved back counts again)."""

    def __init__(self, min_age_ms: int = 1_000, cost_factor: int = 20) -> None:
        self.min_age_ms = min_age_ms
        self.cost_factor = cost_factor
        self._snapshot: CountSnapshot | None = None
        self._keep_ms = 0
        self._counting: asyncio.Future[CountSnapshot] | None = None

    def fresh(self, now: int) -> CountSnapshot | None:
        snapshot = self._snapshot
        if (
            snapshot is not None
            and snapshot.counted_at <= now < snapshot.counted_at + self._keep_ms
        ):
            return snapshot
        return None

    async def get(self, store: Store, clock: Clock) -> CountSnapshot:
        snapshot = self.fresh(clock.now_ms())
        if snapshot is not None:
            return snapshot
        if self._counting is None:
            self._counting = asyncio.ensure_future(self._count(store, clock))
            # Retrieved here too, in case every caller waiting for it went away.
            self._counting.add_done_callback(lambda done: done.cancelled() or done.exception())
        # Shielded: a caller that goes away does not cancel the count the others wait for.
        return await asyncio.shield(self._counting)

    async def _count(self, store: Store, clock: Clock) -> CountSnapshot:
        try:
            now = clock.now_ms()
            started = time.perf_counter()
            counts = await store.read(partial(_count_all, now=now))
            took_ms = (time.perf_counter() - started) * 1000
            snapshot = CountSnapshot(counts, now)
            self._snapshot = snapshot
            self._keep_ms = max(self.min_age_ms, round(self.cost_factor * took_ms))
            return snapshot
        finally:
            self._counting = None


async def _count_all(tx: Transaction, now: int) -> Counts:
    counts = await tx.count_records(now)
    return replace(counts, tasks_2026=await tx.count_tasks_2026())


# ---- stuck work (GET /stuck) --------------------------------------------------------------------

DEFAULT_LEASE_WITHIN_MS = 10_000
DEFAULT_MIN_COUNTER = 3
DEFAULT_STUCK_LIMIT = 20
MAX_STUCK_LIMIT = 100


@dataclass(frozen=True, slots=True)
class StuckQuery:
    lease_within: int = DEFAULT_LEASE_WITHIN_MS  # ms; a CLAIMED lease ending sooner is stuck
    min_counter: int = DEFAULT_MIN_COUNTER  # an active task issued this many times is stuck
    limit: int = DEFAULT_STUCK_LIMIT  # per list


@dataclass(frozen=True, slots=True)
class StuckTask:
    task: Task
    reason: str  # "lease" | "counter"


@dataclass(frozen=True, slots=True)
class Stuck:
    time: int
    promises: list[Promise]
    tasks: list[StuckTask]
    schedules: list[Schedule]
    locks: list[Lock]


async def find_stuck(tx: Transaction, clock: Clock, query: StuckQuery) -> Stuck:
    """What looks stuck at the clock's now: pending promises past their timeout, tasks whose
    lease is (about to be) up or that were re-issued ``min_counter`` times, schedules past
    their next run, locks not renewed for more than half their ttl. Each list at most
    ``limit`` long; a task that qualifies both ways is listed once, as "lease"."""
    now = clock.now_ms()
    limit = query.limit
    leases = await tx.tasks_with_lease_ending(add_ms(now, query.lease_within), limit)
    stuck_tasks = [StuckTask(task, "lease") for task in leases]
    listed = {task.id for task in leases}
    if len(stuck_tasks) < limit:
        # Up to `limit` more, as some may already be listed for their lease.
        for task in await tx.reissued_tasks(query.min_counter, limit):
            if task.id not in listed and len(stuck_tasks) < limit:
                stuck_tasks.append(StuckTask(task, "counter"))
    return Stuck(
        time=now,
        promises=await tx.stuck_promises(now, limit),
        tasks=stuck_tasks,
        schedules=await tx.overdue_schedules(now, limit),
        locks=await tx.stale_locks(now, limit),
    )
