"""Schedule operations (http-api.md §7): create, read, delete, search, and one batch of the
firing loop, written once over a store Transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from resonate.core.clock import INT64_MAX, Clock
from resonate.core.errors import Code, ResonateError
from resonate.core.promise import EMPTY_VALUE, Promise, PromiseState, Value, keys_match
from resonate.core.routing import Router
from resonate.core.schedule import INVOCATION_TAG, SCHEDULE_TAG, Schedule, render_template
from resonate.core.search import ScheduleQuery, schedule_cursor
from resonate.server import tasks2026
from resonate.server.cron import parse_cron
from resonate.server.tasks import insert_routed_promise, invoke_task
from resonate.store.base import Event, Transaction

log = logging.getLogger("resonate.schedules")

# Counting the slots an outage skipped stops here (the metric is then a lower bound).
MAX_COUNTED_MISSES = 10_000


@dataclass(frozen=True, slots=True)
class CreateSchedule:
    id: str
    cron: str
    promise_id: str
    promise_timeout: int = 0
    description: str | None = None
    timezone: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    promise_param: Value = EMPTY_VALUE
    promise_tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleOutcome:
    schedule: Schedule
    created: bool


async def create_schedule(
    tx: Transaction, clock: Clock, request: CreateSchedule
) -> ScheduleOutcome:
    now = clock.now_ms()
    cron = parse_cron(request.cron, request.timezone)
    schedule = Schedule(
        id=request.id,
        cron=request.cron,
        promise_id=request.promise_id,
        promise_timeout=request.promise_timeout,
        next_run_time=cron.next_after(now),
        created_on=now,
        description=request.description,
        timezone=request.timezone,
        tags=request.tags,
        promise_param=request.promise_param,
        promise_tags=request.promise_tags,
        idempotency_key=request.idempotency_key,
    )
    if await tx.insert_schedule(schedule):
        tx.emit(Event("schedule", "created"))
        return ScheduleOutcome(schedule, created=True)
    stored = await tx.get_schedule(request.id)
    if stored is None:  # pragma: no cover - deleted between the two statements of one tx
        raise ResonateError(Code.STORE_ERROR, "schedule vanished during create")
    if keys_match(request.idempotency_key, stored.idempotency_key):
        return ScheduleOutcome(stored, created=False)
    raise ResonateError(Code.SCHEDULE_ALREADY_EXISTS)


async def read_schedule(tx: Transaction, schedule_id: str) -> Schedule:
    schedule = await tx.get_schedule(schedule_id)
    if schedule is None:
        raise ResonateError(Code.SCHEDULE_NOT_FOUND)
    return schedule


async def delete_schedule(tx: Transaction, schedule_id: str) -> None:
    if not await tx.delete_schedule(schedule_id):
        raise ResonateError(Code.SCHEDULE_NOT_FOUND)
    tx.emit(Event("schedule", "deleted"))


@dataclass(frozen=True, slots=True)
class SchedulePage:
    schedules: list[Schedule]
    cursor: str | None


async def search_schedules(tx: Transaction, query: ScheduleQuery) -> SchedulePage:
    rows = await tx.search_schedules(query)
    cursor = schedule_cursor(query, rows[-1][0]) if rows and len(rows) == query.limit else None
    return SchedulePage([schedule for _, schedule in rows], cursor)


async def create_schedule_2026(tx: Transaction, clock: Clock, request: CreateSchedule) -> Schedule:
    """``schedule.create`` of the 2026 protocol (protocol-2026.md §3.3): the stored schedule
    if the id exists (nothing compared), else the new one, marked so that it fires 2026
    promises."""
    schedule_request = replace(request, tags={tasks2026.PROTOCOL_TAG: tasks2026.PROTOCOL_VERSION})
    try:
        return (await create_schedule(tx, clock, schedule_request)).schedule
    except ResonateError as error:
        if error.code is not Code.SCHEDULE_ALREADY_EXISTS:
            raise
    return await read_schedule(tx, request.id)


async def search_schedules_2026(
    tx: Transaction, promise_tags: dict[str, str], after_id: str | None, limit: int
) -> tuple[list[Schedule], str | None]:
    rows = await tx.search_schedules_by_id(promise_tags, after_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


# ---- firing (§7.6) ----------------------------------------------------------------------------


def _slot_to_fire(schedule: Schedule, now: int, max_catch_up: int) -> tuple[int, int]:
    """The slot to fire and how many older due slots are skipped: after an outage at most
    ``max_catch_up`` missed slots fire, the most recent ones (0 = no limit)."""
    slot = schedule.next_run_time
    if max_catch_up <= 0:
        return slot, 0
    cron = parse_cron(schedule.cron, schedule.timezone)
    probe = slot
    for _ in range(max_catch_up):
        probe = cron.next_after(probe)
        if probe > now:
            return slot, 0  # at most max_catch_up slots are due
    keep = cron.earliest_of_last(max_catch_up, now, anchor=slot)
    return keep, cron.count_between(slot, keep, MAX_COUNTED_MISSES)


async def fire_due_schedules(
    tx: Transaction, clock: Clock, limit: int, router: Router, max_catch_up: int = 0
) -> int:
    """Fire one slot of each due schedule (the loop repeats batches, so missed slots fire one
    by one, in order); returns how many schedules were due."""
    now = clock.now_ms()
    due = await tx.due_schedules(now, limit)
    for schedule in due:
        slot, missed = _slot_to_fire(schedule, now, max_catch_up)
        following = parse_cron(schedule.cron, schedule.timezone).next_after(slot)
        # The guarded advance first: if another loop or server fired this slot, stop here.
        if not await tx.advance_schedule(schedule.id, schedule.next_run_time, slot, following):
            continue
        if missed:
            log.warning(
                "schedule %s: skipped %d missed slots (scheduleMaxCatchUp)", schedule.id, missed
            )
            tx.emit(Event("schedule_firing", "missed", missed))
        if tasks2026.is_2026_schedule(schedule):
            created = await tasks2026.fire_schedule(tx, clock, schedule, slot)
            tx.emit(Event("schedule_firing", "created" if created else "skipped"))
            continue
        promise_id = render_template(schedule.promise_id, schedule.id, slot)
        promise = Promise(
            id=promise_id,
            state=PromiseState.PENDING,
            param=schedule.promise_param,
            value=EMPTY_VALUE,
            timeout=min(slot + schedule.promise_timeout, INT64_MAX),
            idempotency_key_for_create=None,
            idempotency_key_for_complete=None,
            tags={**schedule.promise_tags, SCHEDULE_TAG: schedule.id, INVOCATION_TAG: "true"},
            created_on=now,
        )
        if await insert_routed_promise(tx, promise, invoke_task(router, promise, now, None)):
            tx.emit(Event("schedule_firing", "created"))
        else:
            log.info(
                "schedule %s: promise %s exists; slot %d skipped", schedule.id, promise_id, slot
            )
            tx.emit(Event("schedule_firing", "skipped"))
    return len(due)
