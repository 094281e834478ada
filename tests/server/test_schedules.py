"""Schedules (transitions.md §12 H1-H10, http-api.md §7): the API, cron forms and time zones,
firing with an injected clock, catch-up with its cap, and schedules that start invocations."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.live import LiveServer

MINUTE = 60_000
HOUR = 60 * MINUTE


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


# 2026-01-01T00:00:00Z, a Thursday: a round start makes cron slots easy to read.
START = ms("2026-01-01T00:00:00+00:00")


@pytest.fixture
async def clocked(tmp_path: Path):
    """The in-process server with its manual clock at START."""
    live = LiveServer(tmp_path / "db")
    live.clock.set(START)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


async def create(
    live, schedule_id="s", cron="*/5 * * * *", promise_id="{{.id}}.{{.timestamp}}", **extra
):
    body = {"id": schedule_id, "cron": cron, "promiseId": promise_id, **extra}
    headers = {}
    if "key" in body:
        headers["idempotency-key"] = body.pop("key")
    return await live.client.post("/schedules", json=body, headers=headers)


async def promise_ids(live, pattern="*"):
    page = await live.client.get("/promises", params={"id": pattern, "limit": 100})
    return sorted(p["id"] for p in page.json()["promises"])


# ---- API (H1-H5, H8-H10) ---------------------------------------------------------------------


async def test_create_read_search_delete(clocked):  # H1, H9, H10
    response = await create(
        clocked,
        promiseTimeout=MINUTE,
        tags={"team": "a"},
        promiseTags={"k": "v"},
        promiseParam={"headers": {"h": "1"}, "data": "eyJ4IjoxfQ=="},
        key="k1",
    )
    assert response.status_code == 201
    schedule = response.json()
    assert schedule == {
        "id": "s",
        "cron": "*/5 * * * *",
        "tags": {"team": "a"},
        "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": MINUTE,
        "promiseParam": {"headers": {"h": "1"}, "data": "eyJ4IjoxfQ=="},
        "promiseTags": {"k": "v"},
        "nextRunTime": START + 5 * MINUTE,
        "idempotencyKey": "k1",
        "createdOn": START,
    }
    assert (await clocked.client.get("/schedules/s")).json() == schedule
    page = (await clocked.client.get("/schedules", params={"id": "*"})).json()
    assert page == {"cursor": None, "schedules": [schedule]}
    by_tag = await clocked.client.get("/schedules", params={"id": "*", "tags[team]": "b"})
    assert by_tag.json()["schedules"] == []
    assert (await clocked.client.delete("/schedules/s")).status_code == 204
    again = await clocked.client.delete("/schedules/s")
    assert (again.status_code, again.json()["error"]["code"]) == (404, 40401)
    assert (await clocked.client.get("/schedules/s")).status_code == 404


async def test_idempotent_create(clocked):  # H2, H3
    first = await create(clocked, key="k")
    clocked.clock.advance(MINUTE)
    same = await create(clocked, cron="@daily", key="k")
    assert (same.status_code, same.json()) == (200, first.json())
    other = await create(clocked, key="other")
    assert (other.status_code, other.json()["error"]["code"]) == (409, 40901)
    assert (await create(clocked)).status_code == 409  # no key never matches


@pytest.mark.parametrize(
    "cron", ["* * *", "61 * * * *", "hello", "@every 0s", "@often", "* * * * * * *", "  "]
)
async def test_invalid_cron_is_400(clocked, cron):  # H4
    response = await create(clocked, cron=cron)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["metadata"]["field"] == "cron"


@pytest.mark.parametrize(
    "template",
    ["{{.foo}}", "{{.id", "a}}b", "{{ .id }}{{", "{{id}}", "x" * 1020 + "{{.timestamp}}"],
)
async def test_invalid_template_is_400(clocked, template):  # H5
    response = await create(clocked, promise_id=template)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["metadata"]["field"] == "promiseId"


async def test_bad_timezone_and_negative_timeout_are_400(clocked):
    response = await create(clocked, timezone="Mars/Olympus")
    assert response.json()["error"]["details"][0]["metadata"]["field"] == "timezone"
    response = await create(clocked, cron="TZ=Nowhere/Land * * * * *")
    assert response.status_code == 400
    assert (await create(clocked, promiseTimeout=-1)).status_code == 400
    assert await promise_ids(clocked) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"desc": "d"}, "d"), ({"description": "x"}, "x"), ({"desc": "d", "description": "x"}, "x")],
)
async def test_description_or_desc(clocked, body, expected):  # H8
    schedule = (await create(clocked, **body)).json()
    assert schedule["description"] == expected
    assert "desc" not in schedule


async def test_search_pages(clocked):
    for index in range(5):
        await create(clocked, f"page{index}")
    seen = []
    page = (await clocked.client.get("/schedules", params={"id": "page*", "limit": 2})).json()
    while True:
        seen += [s["id"] for s in page["schedules"]]
        if page["cursor"] is None:
            break
        page = (await clocked.client.get("/schedules", params={"cursor": page["cursor"]})).json()
    assert seen == [f"page{i}" for i in range(4, -1, -1)]
    assert (await clocked.client.get("/schedules")).status_code == 400  # id is required


# ---- next run times: cron forms and zones ---------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "timezone", "expected"),
    [
        ("*/5 * * * *", None, "2026-01-01T00:05:00+00:00"),
        ("*/10 * * * * *", None, "2026-01-01T00:00:10+00:00"),  # leading seconds field
        ("@hourly", None, "2026-01-01T01:00:00+00:00"),
        ("@daily", None, "2026-01-02T00:00:00+00:00"),
        ("@every 90s", None, "2026-01-01T00:01:30+00:00"),
        ("0 9 * jan MON", None, "2026-01-05T09:00:00+00:00"),
        ("0 0 ? * *", None, "2026-01-02T00:00:00+00:00"),
        ("0 9 * * *", "Europe/Paris", "2026-01-01T08:00:00+00:00"),
        ("CRON_TZ=America/New_York 0 9 * * *", None, "2026-01-01T14:00:00+00:00"),
        ("TZ=Asia/Tokyo 0 9 * * *", "Europe/Paris", "2026-01-02T00:00:00+00:00"),  # prefix wins
    ],
)
async def test_next_run_time(clocked, cron, timezone, expected):
    extra = {"timezone": timezone} if timezone else {}
    schedule = (await create(clocked, cron=cron, **extra)).json()
    assert schedule["nextRunTime"] == ms(expected)
    assert schedule["cron"] == cron


# ---- firing (H6, H7, §7.6) -------------------------------------------------------------------


async def test_every_five_minutes_fires_each_slot(clocked):  # H6
    await create(
        clocked,
        promise_id="{{ .id }}-{{.timestamp}}",
        promiseTimeout=MINUTE,
        promiseTags={"k": "v"},
        promiseParam={"data": "eA=="},
    )
    clocked.clock.advance(5 * MINUTE - 1)
    assert await clocked.fire_schedules() == 0
    clocked.clock.advance(1)
    await clocked.fire_schedules()
    slot = START + 5 * MINUTE
    promise = (await clocked.client.get(f"/promises/s-{slot}")).json()
    assert promise["state"] == "PENDING"
    assert promise["timeout"] == slot + MINUTE
    assert promise["createdOn"] == slot
    assert promise["param"] == {"data": "eA=="}
    assert promise["tags"] == {"k": "v", "resonate:schedule": "s", "resonate:invocation": "true"}
    schedule = (await clocked.client.get("/schedules/s")).json()
    assert (schedule["lastRunTime"], schedule["nextRunTime"]) == (slot, slot + 5 * MINUTE)
    await clocked.fire_schedules()  # nothing more is due
    assert len(await promise_ids(clocked)) == 1


async def test_existing_id_is_skipped_and_the_schedule_advances(clocked):  # H7, D4
    await create(clocked, promise_id="fixed-{{.id}}")
    await clocked.client.post("/promises", json={"id": "fixed-s", "timeout": START + HOUR})
    clocked.clock.advance(5 * MINUTE)
    await clocked.fire_schedules()
    schedule = (await clocked.client.get("/schedules/s")).json()
    assert schedule["nextRunTime"] == START + 10 * MINUTE
    metrics = clocked.server.metrics.render().decode()
    assert 'schedule_firings_total{outcome="skipped"} 1.0' in metrics
    assert 'schedule_firings_total{outcome="created"}' not in metrics


async def test_missed_slots_fire_one_by_one_in_order(clocked):
    await create(clocked)
    clocked.clock.advance(21 * MINUTE)  # slots at 5, 10, 15, 20 were missed
    await clocked.fire_schedules()
    expected = [f"s.{START + n * 5 * MINUTE}" for n in (1, 2, 3, 4)]
    assert await promise_ids(clocked) == sorted(expected)
    schedule = (await clocked.client.get("/schedules/s")).json()
    assert (schedule["lastRunTime"], schedule["nextRunTime"]) == (
        START + 20 * MINUTE,
        START + 25 * MINUTE,
    )


async def test_catch_up_cap_skips_and_counts_the_oldest(tmp_path):
    live = LiveServer(tmp_path / "db", "--system-schedule-max-catch-up", "3")
    live.clock.set(START)
    await live.start()
    try:
        await create(live, cron="* * * * *")
        live.clock.advance(10 * MINUTE)  # slots at minutes 1..10 are due
        await live.fire_schedules()
        assert await promise_ids(live) == sorted(f"s.{START + n * MINUTE}" for n in (8, 9, 10))
        metrics = live.server.metrics.render().decode()
        assert 'schedule_firings_total{outcome="missed"} 7.0' in metrics
        assert 'schedule_firings_total{outcome="created"} 3.0' in metrics
    finally:
        await live.stop()


async def test_dst_change_in_a_zone(clocked):
    """02:30 local does not exist on 2026-03-08 in New York; 01:30 happens twice on 11-01."""
    clocked.clock.set(ms("2026-03-07T12:00:00+00:00"))
    await create(clocked, "spring", cron="30 2 * * *", timezone="America/New_York")
    fired = []
    for _ in range(3):
        schedule = (await clocked.client.get("/schedules/spring")).json()
        clocked.clock.set(schedule["nextRunTime"])
        fired.append(schedule["nextRunTime"])
        await clocked.fire_schedules()
    local = [datetime.fromtimestamp(t / 1000, UTC).isoformat() for t in fired]
    # The skipped 02:30 runs at 03:00 EDT (07:00Z); then 02:30 EDT (06:30Z) each day.
    assert local == [
        "2026-03-08T07:00:00+00:00",
        "2026-03-09T06:30:00+00:00",
        "2026-03-10T06:30:00+00:00",
    ]
    clocked.clock.set(ms("2026-10-31T12:00:00+00:00"))
    await create(clocked, "fall", cron="0 * * * *", timezone="America/New_York")
    hours = []
    for _ in range(4):
        schedule = (await clocked.client.get("/schedules/fall")).json()
        clocked.clock.set(schedule["nextRunTime"])
        await clocked.fire_schedules()
        hours.append(schedule["nextRunTime"])
    assert all(b - a == HOUR for a, b in itertools.pairwise(hours))


async def test_schedule_with_invoke_tag_creates_tasks(clocked):
    await create(clocked, cron="* * * * *", promiseTags={"resonate:invoke": "poll://any@default"})
    clocked.clock.advance(2 * MINUTE)
    await clocked.fire_schedules()
    tasks = (await clocked.client.get("/tasks", params={"state": "init"})).json()["tasks"]
    assert sorted(t["id"] for t in tasks) == sorted(
        f"__invoke:s.{START + n * MINUTE}" for n in (1, 2)
    )


async def test_deleted_schedule_stops_firing(clocked):
    await create(clocked)
    await clocked.client.delete("/schedules/s")
    clocked.clock.advance(HOUR)
    await clocked.fire_schedules()
    assert await promise_ids(clocked) == []


async def test_metrics_count_schedules(clocked):
    await create(clocked, "a")
    await create(clocked, "b")
    await clocked.client.delete("/schedules/a")
    metrics = clocked.server.metrics.render().decode()
    assert 'schedules_total{state="created"} 2.0' in metrics
    assert 'schedules_total{state="deleted"} 1.0' in metrics


@pytest.mark.parametrize(
    ("cron", "step"),
    [("*/10 * * * * *", 10_000), ("@hourly", HOUR), ("@every 90s", 90_000)],
)
async def test_seconds_descriptors_and_every_fire_on_their_slots(clocked, cron, step):
    await create(clocked, cron=cron)
    clocked.clock.advance(3 * step)
    await clocked.fire_schedules()
    assert await promise_ids(clocked) == sorted(f"s.{START + n * step}" for n in (1, 2, 3))
