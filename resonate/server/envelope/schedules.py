"""The schedule kinds of the 2026-04-01 protocol (protocol-2026.md §3.3, §4.1).

Schedules are the REST schedules' table and firing loop; one created here is marked so that its
firings make 2026 promises (with their task and execute) tagged with the schedule and the
lineage tags. Cron: 5 fields (a leading seconds field 0 is implied) or 6 (seconds first), in UTC.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from resonate.core.clock import INT64_MAX
from resonate.core.errors import Code, ResonateError
from resonate.core.schedule import Schedule, check_template
from resonate.core.schema import check_id, check_string, check_string_map, check_value
from resonate.core.task2026 import TARGET_TAG
from resonate.server import schedules
from resonate.server.envelope.promises import check_address, page_of
from resonate.server.envelope.protocol import EnvelopeError, bad_request

if TYPE_CHECKING:
    from resonate.server.http.routes import Context

DEFAULT_LIMIT = 10  # §3.3: schedule.search's default page is smaller than the others'


def schedule_record(schedule: Schedule) -> dict[str, Any]:
    """The §4.1 record; ``lastRunAt`` omitted until the first firing (P5)."""
    record: dict[str, Any] = {
        "id": schedule.id,
        "cron": schedule.cron,
        "promiseId": schedule.promise_id,
        "promiseTimeout": schedule.promise_timeout,
        "promiseParam": schedule.promise_param.to_json(),
        "promiseTags": schedule.promise_tags or {},
        "createdAt": schedule.created_on,
        "nextRunAt": schedule.next_run_time,
    }
    if schedule.last_run_time is not None:
        record["lastRunAt"] = schedule.last_run_time
    return record


def _not_found(error: ResonateError) -> EnvelopeError | ResonateError:
    if error.code is Code.SCHEDULE_NOT_FOUND:
        return EnvelopeError(404, "Schedule not found")
    return error


async def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    schedule_id = check_id("id", data.get("id"))
    if "." in schedule_id:
        raise bad_request("Invalid 'id' field — a schedule id must not contain '.'")
    cron = check_string("cron", data.get("cron"))
    if len(cron.split()) not in (5, 6):
        raise bad_request("Invalid 'cron' field — must have 5 fields, or 6 with seconds first")
    template = check_template(check_id("promiseId", data.get("promiseId")), schedule_id)
    timeout = data.get("promiseTimeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= INT64_MAX:
        raise bad_request("Invalid 'promiseTimeout' field — must be an integer of ms ≥ 0")
    tags = check_string_map("promiseTags", data.get("promiseTags"))
    target = tags.get(TARGET_TAG)
    if target is None:
        raise bad_request(f"Invalid 'promiseTags' field — must include '{TARGET_TAG}'")
    check_address(target, f"tag '{TARGET_TAG}'")
    request = schedules.CreateSchedule(
        id=schedule_id,
        cron=cron,
        promise_id=template,
        promise_timeout=timeout,
        timezone="UTC",
        promise_param=check_value("promiseParam", data.get("promiseParam")),
        promise_tags=tags,
    )
    schedule = await ctx.store.run(
        partial(schedules.create_schedule_2026, clock=ctx.clock, request=request)
    )
    return {"schedule": schedule_record(schedule)}


async def get(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    schedule_id = check_id("id", data.get("id"))
    try:
        schedule = await ctx.store.read(partial(schedules.read_schedule, schedule_id=schedule_id))
    except ResonateError as error:
        raise _not_found(error) from None
    return {"schedule": schedule_record(schedule)}


async def delete(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    schedule_id = check_id("id", data.get("id"))
    try:
        await ctx.store.run(partial(schedules.delete_schedule, schedule_id=schedule_id))
    except ResonateError as error:
        raise _not_found(error) from None
    return {}


async def search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    limit, after = page_of(data, DEFAULT_LIMIT)
    found, next_cursor = await ctx.store.read(
        partial(
            schedules.search_schedules_2026,
            promise_tags=check_string_map("tags", data.get("tags")),
            after_id=after,
            limit=limit,
        )
    )
    reply: dict[str, Any] = {"schedules": [schedule_record(s) for s in found]}
    if next_cursor is not None:
        reply["cursor"] = next_cursor
    return reply
