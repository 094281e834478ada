"""A schedule that invokes a worker keeps its slots across server crashes and restarts: every
slot gets exactly one promise and one invoke task, none lost, none fired twice."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.servers import wait_until
from tests.support.sse import Worker

pytestmark = pytest.mark.slow


def slots(api: httpx.Client) -> list[int]:
    page = api.get("/promises", params={"id": "tick.*", "limit": 100}).json()
    return sorted(int(p["id"].split(".")[1]) for p in page["promises"])


@pytest.mark.parametrize("stop", ["kill", "terminate"])
async def test_schedule_survives_restart_without_losing_or_duplicating(
    server_factory, tmp_path, stop
):
    # Every second, so a restart spans several slots; catch-up must fire the missed ones.
    first = server_factory(tmp_path).start()
    with httpx.Client(base_url=first.url, timeout=10) as api:
        body = {
            "id": "tick",
            "cron": "* * * * * *",
            "promiseId": "{{.id}}.{{.timestamp}}",
            "promiseTimeout": 3_600_000,
            "promiseTags": {"resonate:invoke": "poll://any@default"},
        }
        assert api.post("/schedules", json=body).status_code == 201
        async with Worker(f"{first.poll_url}/default/w1") as worker:
            message = await worker.next_event(within=5)
            assert message["type"] == "invoke"
        wait_until(lambda: len(slots(api)) >= 2, time.monotonic() + 5, what="two firings")
    getattr(first, stop)()

    second = server_factory(tmp_path, db_path=first.db_path).start()
    with httpx.Client(base_url=second.url, timeout=10) as api:
        restarted_at = int(time.time() * 1000)
        wait_until(
            lambda: slots(api)[-1] > restarted_at + 1000,
            time.monotonic() + 6,
            what="firings after the restart",
        )
        fired = slots(api)
        # One promise per second from the first slot to the last: nothing lost over the outage.
        assert fired == list(range(fired[0], fired[-1] + 1000, 1000))
        for slot in fired:
            task = api.get(f"/tasks/__invoke:tick.{slot}").json()
            assert task["type"] == "invoke"
        schedule = api.get("/schedules/tick").json()
        assert schedule["lastRunTime"] >= fired[-1]
        assert schedule["nextRunTime"] == schedule["lastRunTime"] + 1000
        metrics = httpx.get(second.metrics_url + "/metrics").text
        assert 'schedule_firings_total{outcome="skipped"}' not in metrics
