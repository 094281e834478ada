"""The schedule kinds of the 2026-04-01 protocol (docs/server.md, "Kinds"): create, get, delete,
search, and firings through the REST schedule loop that make 2026 promises with their task, the
lineage tags and an execute, on both stores, with a manual clock (`live`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.protocol_2026_support import AsyncApi, any_at, deliver, execute_of, stream
from tests.support.live import START_MS

pytestmark = pytest.mark.asyncio

MINUTE = 60_000


@pytest.fixture
def v(live: Any) -> AsyncApi:
    return AsyncApi(live.client)


def schedule(schedule_id: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": schedule_id,
        "cron": "* * * * *",
        "promiseId": "{{.id}}-{{.timestamp}}",
        "promiseTimeout": MINUTE,
        "promiseParam": {"headers": {}, "data": "e30="},
        "promiseTags": {"resonate:target": any_at("g")},
    }
    data.update(overrides)
    return data


def next_minute(ms: int) -> int:
    return (ms // MINUTE + 1) * MINUTE


async def test_create_renders_the_record_and_a_repeat_returns_it(v: AsyncApi) -> None:
    record = (await v.ok("schedule.create", schedule("s1")))["schedule"]
    assert record == {
        "id": "s1",
        "cron": "* * * * *",
        "promiseId": "{{.id}}-{{.timestamp}}",
        "promiseTimeout": MINUTE,
        "promiseParam": {"data": "e30="},  # empty headers are omitted, as in promise records
        "promiseTags": {"resonate:target": any_at("g")},
        "createdAt": START_MS,
        "nextRunAt": next_minute(START_MS),
    }
    # An existing id answers the stored schedule, whatever the request says.
    again = await v.ok("schedule.create", schedule("s1", cron="*/5 * * * *"))
    assert again["schedule"] == record
    assert (await v.ok("schedule.get", {"id": "s1"}))["schedule"] == record


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": "a.b"}, "Invalid 'id'"),
        ({"cron": "not a cron"}, "Invalid 'cron'"),
        ({"cron": "0 0 * * * * 2030"}, "Invalid 'cron'"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"promiseTimeout": -1}, "Invalid 'promiseTimeout'"),
        ({"promiseTags": {}}, "Invalid 'promiseTags'"),
        ({"promiseTags": {"resonate:target": "nowhere"}}, "Invalid tag 'resonate:target'"),
        ({"promiseId": ""}, "promiseId"),
    ],
)
async def test_create_refuses_invalid_data(
    v: AsyncApi, overrides: dict[str, Any], message: str
) -> None:
    status, data = await v.status("schedule.create", schedule("bad", **overrides))
    assert status == 400
    assert message in data


async def test_get_and_delete_of_a_missing_schedule_are_404(v: AsyncApi) -> None:
    assert await v.status("schedule.get", {"id": "nope"}) == (404, "Schedule not found")
    assert await v.status("schedule.delete", {"id": "nope"}) == (404, "Schedule not found")


async def test_delete(v: AsyncApi) -> None:
    await v.ok("schedule.create", schedule("gone"))
    assert await v.ok("schedule.delete", {"id": "gone"}) == {}
    assert (await v.status("schedule.get", {"id": "gone"}))[0] == 404


async def test_search_pages_by_id_and_filters_by_promise_tags(v: AsyncApi) -> None:
    for index in range(12):
        tags = {"resonate:target": any_at("g"), "team": "a" if index % 2 else "b"}
        await v.ok("schedule.create", schedule(f"s{index:02d}", promiseTags=tags))
    first = await v.ok("schedule.search", {})
    assert [s["id"] for s in first["schedules"]] == [f"s{i:02d}" for i in range(10)]
    assert first["cursor"] == "s09"  # default limit 10
    rest = await v.ok("schedule.search", {"cursor": first["cursor"]})
    assert [s["id"] for s in rest["schedules"]] == ["s10", "s11"]
    assert "cursor" not in rest
    team_a = await v.ok("schedule.search", {"tags": {"team": "a"}, "limit": 1000})
    assert [s["id"] for s in team_a["schedules"]] == [f"s{i:02d}" for i in range(1, 12, 2)]
    assert (await v.status("schedule.search", {"limit": 1001}))[0] == 400


async def test_a_firing_makes_a_2026_promise_with_its_task_and_execute(
    live: Any, v: AsyncApi
) -> None:
    await v.ok("schedule.create", schedule("tick"))
    slot = next_minute(START_MS)
    async with stream(live, "g", "w1") as worker:
        live.clock.set(slot + 10)
        assert await live.fire_schedules() >= 1
        promise_id = f"tick-{slot}"
        promise = await v.promise(promise_id)
        assert promise["state"] == "pending"
        assert promise["timeoutAt"] == slot + MINUTE
        assert promise["param"] == {"data": "e30="}
        assert promise["tags"] == {
            "resonate:target": any_at("g"),
            "resonate:schedule": "tick",
            "resonate:origin": promise_id,
            "resonate:branch": promise_id,
            "resonate:parent": promise_id,
            "resonate:prefix": promise_id,
        }
        assert await v.task(promise_id) == {
            "id": promise_id,
            "state": "pending",
            "version": 0,
            "resumes": 0,
        }
        await deliver(live)
        assert execute_of(await worker.next_event()) == (promise_id, 0)
    stored = (await v.ok("schedule.get", {"id": "tick"}))["schedule"]
    assert stored["lastRunAt"] == slot
    assert stored["nextRunAt"] == slot + MINUTE


async def test_missed_slots_fire_one_by_one_and_an_existing_id_is_skipped(
    live: Any, v: AsyncApi
) -> None:
    await v.ok("schedule.create", schedule("catch", promiseId="{{.id}}"))
    live.clock.set(next_minute(START_MS) + 3 * MINUTE + 5)
    await live.fire_schedules()
    # One promise id for every slot: the first firing creates it, the others are skipped, and
    # the schedule still advances past every slot.
    assert (await v.promise("catch"))["tags"]["resonate:schedule"] == "catch"
    stored = (await v.ok("schedule.get", {"id": "catch"}))["schedule"]
    assert stored["nextRunAt"] == next_minute(START_MS) + 4 * MINUTE


async def test_a_slot_past_its_timeout_makes_a_settled_promise_and_a_fulfilled_task(
    live: Any, v: AsyncApi
) -> None:
    await v.ok("schedule.create", schedule("late", promiseTimeout=1_000))
    slot = next_minute(START_MS)
    live.clock.set(slot + 5_000)  # the loop runs after the promise's timeout
    await live.fire_schedules()
    promise = await v.promise(f"late-{slot}")
    assert promise["state"] == "rejected_timedout"
    assert (await v.task(f"late-{slot}"))["state"] == "fulfilled"


async def test_rest_sees_a_2026_schedule_and_its_marker(live: Any, v: AsyncApi) -> None:
    await v.ok("schedule.create", schedule("both"))
    response = await live.client.get("/schedules/both")
    assert response.status_code == 200
    assert response.json()["tags"] == {"resonate:protocol": "2026-04-01"}
