"""Lazy and eager timeouts with an injected clock (transitions.md §4, http-api.md §2.7)."""

from __future__ import annotations

import pytest

from tests.support.live import START_MS

pytestmark = pytest.mark.asyncio

TIMER = {"resonate:timeout": "true"}


async def create(live, pid: str, timeout: int, tags: dict[str, str] | None = None) -> dict:
    response = await live.client.post(
        "/promises", json={"id": pid, "timeout": timeout, "tags": tags}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(("tags", "state"), [(None, "REJECTED_TIMEDOUT"), (TIMER, "RESOLVED")])
async def test_z1_z2_z3_eager_pass_times_out_at_the_deadline(live, tags, state):
    """Z3: completedOn is the promise's timeout, not the time of the pass."""
    await create(live, "p", START_MS + 5_000, tags)
    live.clock.advance(4_999)
    assert await live.time_out_promises() == 0
    assert (await live.client.get("/promises/p")).json()["state"] == "PENDING"

    live.clock.advance(60_000)
    assert await live.time_out_promises() == 1
    stored = await live.server.store.run(  # read the row without a lazy timeout in the way
        lambda tx: tx.get_promise("p")
    )
    assert stored.state.name == state
    assert stored.completed_on == START_MS + 5_000
    assert stored.idempotency_key_for_complete is None
    body = (await live.client.get("/promises/p")).json()
    assert body["state"] == state
    assert body["value"] == {}
    assert body["completedOn"] == START_MS + 5_000


async def test_eager_pass_is_batched_and_covers_every_overdue_promise(live):
    for i in range(250):
        await create(live, f"b{i}", START_MS + i)
    await create(live, "later", START_MS + 10_000_000)
    live.clock.advance(1_000)
    assert await live.time_out_promises() == 250
    assert await live.time_out_promises() == 0
    page = (await live.client.get("/promises", params={"id": "b*", "state": "pending"})).json()
    assert page["promises"] == []
    later = (await live.client.get("/promises/later")).json()
    assert later["state"] == "PENDING"


async def test_exactly_at_the_deadline_is_overdue(live):
    await create(live, "edge", START_MS + 10)
    live.clock.set(START_MS + 10)
    assert (await live.client.get("/promises/edge")).json()["state"] == "REJECTED_TIMEDOUT"


async def test_lazy_timeout_on_read_persists(live):
    await create(live, "r", START_MS + 10)
    live.clock.advance(11)
    assert (await live.client.get("/promises/r")).json()["state"] == "REJECTED_TIMEDOUT"
    assert await live.time_out_promises() == 0  # already persisted by the read


async def test_lazy_timeout_on_complete(live):
    await create(live, "c", START_MS + 10)
    live.clock.advance(11)
    response = await live.client.patch(
        "/promises/c", json={"state": "RESOLVED"}, headers={"strict": "true"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 40304
    response = await live.client.patch("/promises/c", json={"state": "RESOLVED"})
    assert response.status_code == 200
    assert response.json()["state"] == "REJECTED_TIMEDOUT"


async def test_lazy_timeout_in_search_applies_state_filter_after_timeout(live):
    await create(live, "s1", START_MS + 10)
    await create(live, "s2", START_MS + 10, TIMER)
    await create(live, "s3", START_MS + 1_000_000)
    live.clock.advance(100)
    pending = (await live.client.get("/promises", params={"id": "s*", "state": "pending"})).json()
    assert [p["id"] for p in pending["promises"]] == ["s3"]
    rejected = (await live.client.get("/promises", params={"id": "s*", "state": "rejected"})).json()
    assert [p["id"] for p in rejected["promises"]] == ["s1"]
    resolved = (await live.client.get("/promises", params={"id": "s*", "state": "resolved"})).json()
    assert [p["id"] for p in resolved["promises"]] == ["s2"]


async def test_create_on_overdue_id_times_it_out_first(live):
    await create(live, "x", START_MS + 10)
    live.clock.advance(11)
    response = await live.client.post("/promises", json={"id": "x", "timeout": START_MS + 99})
    assert response.status_code == 409
    assert (await live.client.get("/promises/x")).json()["completedOn"] == START_MS + 10


async def test_timeouts_count_in_promises_total(live):
    await create(live, "m1", START_MS + 1)
    await create(live, "m2", START_MS + 1, TIMER)
    live.clock.advance(2)
    await live.time_out_promises()
    metrics = live.server.metrics.render().decode()
    assert 'promises_total{state="rejected_timedout"} 1.0' in metrics
    assert 'promises_total{state="resolved"} 1.0' in metrics
    assert 'promises_total{state="created"} 2.0' in metrics
    assert 'background_runs_total{loop="timeout_promises",status="ok"}' in metrics


async def test_loop_sleeps_until_the_earliest_deadline_capped(live):
    loop = live.server.timeout_loop
    assert await loop.seconds_until_next_pass() == loop.signal_timeout  # nothing pending
    await create(live, "soon", START_MS + 250)
    assert await loop.seconds_until_next_pass() == pytest.approx(0.25)
    live.clock.advance(300)
    assert await loop.seconds_until_next_pass() == 0


def _counter(metrics_text: str, name: str, labels: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


async def test_background_loop_times_out_without_any_request(server_factory, tmp_path):
    """The eager loop of a real server completes an overdue promise nobody reads (Z1)."""
    import asyncio
    import time

    import httpx

    server = server_factory(tmp_path).start()
    async with httpx.AsyncClient(timeout=10) as client:
        deadline_ms = time.time_ns() // 1_000_000 + 300
        created = await client.post(
            server.url + "/promises", json={"id": "eager", "timeout": deadline_ms}
        )
        assert created.status_code == 201
        labels = 'state="rejected_timedout"'
        give_up = time.monotonic() + 10
        while True:
            text = (await client.get(server.metrics_url + "/metrics")).text
            if _counter(text, "promises_total", labels) == 1.0:
                break
            assert time.monotonic() < give_up, "the background loop never timed the promise out"
            await asyncio.sleep(0.05)
        body = (await client.get(server.url + "/promises/eager")).json()
    assert body["state"] == "REJECTED_TIMEDOUT"
    assert body["completedOn"] == deadline_ms
