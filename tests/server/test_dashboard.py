"""The operator dashboard reads, GET /stats and GET /stuck (docs/server.md, "Dashboard reads"),
through real HTTP on both stores. Counts and stuck lists are checked on an in-process server
with a manual clock (a fresh store per test, loops run when a test asks); parameters,
credentials, the OpenAPI document and the client on the session server process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from resonate import __version__
from resonate.client import AsyncResonateClient, ResonateClient, get_stuck_request
from resonate.server.dashboard import CountsCache
from tests.support.live import START_MS
from tests.support.sse import Worker

HOUR = 3_600_000
PROMISE_STATES = ["PENDING", "RESOLVED", "REJECTED", "REJECTED_CANCELED", "REJECTED_TIMEDOUT"]
TASK_STATES = ["INIT", "ENQUEUED", "CLAIMED", "COMPLETED", "TIMEDOUT"]
TASK_2026_STATES = ["pending", "acquired", "suspended", "halted", "fulfilled"]


@pytest.fixture
def fresh(live):
    """The live server with its counts read at every call (no cache), so each check sees the
    change just made."""
    live.server.context.counts_cache = CountsCache(min_age_ms=0, cost_factor=0)
    return live


async def stats(live) -> dict[str, Any]:
    response = await live.client.get("/stats")
    assert response.status_code == 200, response.text
    return response.json()


def counts(zero: list[str], **nonzero: int) -> dict[str, int]:
    return {state: nonzero.get(state, 0) for state in zero}


async def promise_counts(live) -> dict[str, int]:
    return (await stats(live))["promises"]


async def task_counts(live) -> dict[str, int]:
    return (await stats(live))["tasks"]


async def stuck(live, **params: Any) -> dict[str, Any]:
    response = await live.client.get("/stuck", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def stuck_ids(live, kind: str, **params: Any) -> list[Any]:
    body = await stuck(live, **params)
    if kind == "tasks":
        return [(task["id"], task["reason"]) for task in body["tasks"]]
    key = "resourceId" if kind == "locks" else "id"
    return [item[key] for item in body[kind]]


async def create(live, promise_id: str, timeout: int = START_MS + HOUR, **tags: str) -> None:
    body = {"id": promise_id, "timeout": timeout, "tags": tags}
    response = await live.client.post("/promises", json=body)
    assert response.status_code == 201, response.text


async def complete(live, promise_id: str, state: str) -> None:
    response = await live.client.patch(f"/promises/{promise_id}", json={"state": state})
    assert response.status_code == 201, response.text


async def create_claimed(live, promise_id: str, ttl: int, timeout: int = START_MS + HOUR) -> None:
    """A promise with its invoke task CLAIMED by p1 (POST /promises/task)."""
    body = {
        "promise": {
            "id": promise_id,
            "timeout": timeout,
            "tags": {"resonate:invoke": "poll://any@g"},
        },
        "task": {"processId": "p1", "ttl": ttl},
    }
    response = await live.client.post("/promises/task", json=body)
    assert response.status_code == 201, response.text


async def task_call(live, verb: str, task_id: str, counter: int, **extra: Any) -> None:
    body = {"id": task_id, "counter": counter, **extra}
    response = await live.client.post(f"/tasks/{verb}", json=body)
    assert response.status_code in (200, 201), response.text


async def acquire(live, resource_id: str, ttl: int, execution_id: str = "e1") -> None:
    body = {"resourceId": resource_id, "executionId": execution_id, "processId": "p1", "ttl": ttl}
    response = await live.client.post("/locks/acquire", json=body)
    assert response.status_code == 201, response.text


# ---- GET /stats ---------------------------------------------------------------------------------


async def test_stats_of_an_empty_store_name_every_state(fresh, store_kind):
    fresh.clock.advance(1234)
    body = await stats(fresh)
    assert body == {
        "version": __version__,
        "store": store_kind,
        "startedAt": START_MS,
        "time": START_MS + 1234,
        "countedAt": START_MS + 1234,
        "promises": counts(PROMISE_STATES),
        "tasks": counts(TASK_STATES),
        "tasks2026": counts(TASK_2026_STATES),
        "schedules": 0,
        "locks": 0,
    }


async def test_2026_task_counts(fresh):
    """The 2026 protocol's tasks are counted by their own (lower-case) states."""

    async def envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": kind, "head": {"corrId": "c", "version": "2026-04-01"}, "data": data}
        response = await fresh.client.post("/", json=body)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    target = {"resonate:target": "poll://any@g"}
    for name in ("p1", "p2"):
        await envelope("promise.create", {"id": name, "timeoutAt": START_MS + HOUR, "tags": target})
    action = {"kind": "promise.create", "data": {"id": "a1", "timeoutAt": START_MS + HOUR}}
    action["data"]["tags"] = target
    await envelope("task.create", {"pid": "w", "ttl": HOUR, "action": action})
    await envelope("task.halt", {"id": "p2"})
    fresh.clock.advance(2000)  # past the counts cache
    assert (await stats(fresh))["tasks2026"] == counts(
        TASK_2026_STATES, pending=1, acquired=1, halted=1
    )


async def test_promise_counts_follow_every_transition(fresh):
    for name in ("a", "b", "c", "d"):
        await create(fresh, name)
    await create(fresh, "late", START_MS + 1000)
    await create(fresh, "timer", START_MS + 1000, **{"resonate:timeout": "true"})
    assert await promise_counts(fresh) == counts(PROMISE_STATES, PENDING=6)

    await complete(fresh, "a", "RESOLVED")
    await complete(fresh, "b", "REJECTED")
    await complete(fresh, "c", "REJECTED_CANCELED")
    assert await promise_counts(fresh) == counts(
        PROMISE_STATES, PENDING=3, RESOLVED=1, REJECTED=1, REJECTED_CANCELED=1
    )

    fresh.clock.advance(1000)
    assert await fresh.time_out_promises() == 2
    assert await promise_counts(fresh) == counts(
        PROMISE_STATES, PENDING=1, RESOLVED=2, REJECTED=1, REJECTED_CANCELED=1, REJECTED_TIMEDOUT=1
    )


async def test_task_counts_follow_every_task_state(fresh):
    await create(fresh, "init", **{"resonate:invoke": "poll://any@g"})
    assert await task_counts(fresh) == counts(TASK_STATES, INIT=1)

    async with Worker(f"{fresh.poll_url}/g/w1") as worker:
        await fresh.enqueue_tasks()
        await worker.next_event()
    assert await task_counts(fresh) == counts(TASK_STATES, ENQUEUED=1)

    await create_claimed(fresh, "claimed", ttl=HOUR)
    await create_claimed(fresh, "done", ttl=HOUR)
    await create_claimed(fresh, "expiring", ttl=HOUR, timeout=START_MS + 1000)
    assert await task_counts(fresh) == counts(TASK_STATES, ENQUEUED=1, CLAIMED=3)

    await task_call(fresh, "complete", "__invoke:done", 1)
    fresh.clock.advance(1000)
    await fresh.time_out_tasks()
    assert await task_counts(fresh) == counts(
        TASK_STATES, ENQUEUED=1, CLAIMED=1, COMPLETED=1, TIMEDOUT=1
    )


async def test_schedule_count_follows_creates_and_deletes(fresh):
    for name in ("s1", "s2"):
        body = {"id": name, "cron": "* * * * *", "promiseId": "{{.id}}.{{.timestamp}}"}
        assert (await fresh.client.post("/schedules", json=body)).status_code == 201
    assert (await stats(fresh))["schedules"] == 2
    assert (await fresh.client.delete("/schedules/s1")).status_code == 204
    assert (await stats(fresh))["schedules"] == 1


async def test_lock_count_is_the_locks_held_now(fresh):
    await acquire(fresh, "r1", ttl=1000)
    await acquire(fresh, "r2", ttl=5000)
    await acquire(fresh, "r3", ttl=5000)
    assert (await stats(fresh))["locks"] == 3
    body = {"resourceId": "r3", "executionId": "e1"}
    assert (await fresh.client.post("/locks/release", json=body)).status_code == 204
    assert (await stats(fresh))["locks"] == 2
    fresh.clock.advance(1000)  # r1 expired: no longer held, though the sweep has not run
    assert (await stats(fresh))["locks"] == 1
    assert await fresh.time_out_locks() == 1
    assert (await stats(fresh))["locks"] == 1


async def test_counts_are_shared_for_a_second_then_counted_again(live):
    """The default cache: callers within a second of a count get that count, and callers
    arriving together share one count of the store."""
    reads = 0
    store = live.server.context.store
    read = store.read

    async def counting_read(operation):
        nonlocal reads
        reads += 1
        return await read(operation)

    store.read = counting_read
    first = await stats(live)
    await create(live, "p")
    live.clock.advance(999)
    cached = await stats(live)
    assert (cached["promises"]["PENDING"], cached["countedAt"]) == (0, START_MS)
    assert cached["time"] == START_MS + 999
    assert reads == 1

    live.clock.advance(60_000)  # well past the cache's age, however long the count took
    together = await asyncio.gather(*(stats(live) for _ in range(5)))
    assert reads == 2
    assert {body["countedAt"] for body in together} == {START_MS + 60_999}
    assert {body["promises"]["PENDING"] for body in together} == {1}
    assert first["promises"]["PENDING"] == 0


# ---- GET /stuck ---------------------------------------------------------------------------------


async def test_stuck_of_an_empty_store(live):
    live.clock.advance(5)
    assert await stuck(live) == {
        "time": START_MS + 5,
        "promises": [],
        "tasks": [],
        "schedules": [],
        "locks": [],
    }


async def test_a_pending_promise_past_its_timeout_is_stuck_until_timed_out(live):
    await create(live, "later", START_MS + 2000)
    await create(live, "sooner", START_MS + 1000)
    await create(live, "far")
    assert await stuck_ids(live, "promises") == []
    live.clock.advance(1000)  # now == timeout: overdue
    assert await stuck_ids(live, "promises") == ["sooner"]
    live.clock.advance(1000)
    body = await stuck(live)
    assert [p["id"] for p in body["promises"]] == ["sooner", "later"]  # oldest timeout first
    assert body["promises"][0] == (await live.server.store.run(_get("sooner"))).to_json()
    assert body["promises"][0]["state"] == "PENDING"
    assert await stuck_ids(live, "promises", limit=1) == ["sooner"]
    assert await live.time_out_promises() == 2
    assert await stuck_ids(live, "promises") == []


def _get(promise_id: str):
    async def operation(tx):
        return await tx.get_promise(promise_id)

    return operation


async def test_a_claimed_task_whose_lease_ends_soon_is_stuck_for_its_lease(live):
    await create_claimed(live, "wf", ttl=60_000)
    assert await stuck_ids(live, "tasks") == []
    live.clock.advance(49_999)  # 10,001 ms left: not within the default 10 s
    assert await stuck_ids(live, "tasks") == []
    assert await stuck_ids(live, "tasks", leaseWithin=10_001) == [("__invoke:wf", "lease")]
    live.clock.advance(1)
    body = await stuck(live)
    assert [(t["id"], t["reason"]) for t in body["tasks"]] == [("__invoke:wf", "lease")]
    extended = (await live.client.get("/tasks/__invoke%3Awf")).json()
    assert body["tasks"][0] == {**extended, "reason": "lease"}

    await live.client.post("/tasks/heartbeat", json={"processId": "p1"})
    assert await stuck_ids(live, "tasks") == []
    live.clock.advance(70_000)  # lapsed, not yet re-issued by the loop: still stuck
    assert await stuck_ids(live, "tasks") == [("__invoke:wf", "lease")]
    await task_call(live, "complete", "__invoke:wf", 1)
    assert await stuck_ids(live, "tasks") == []


async def test_a_task_issued_min_counter_times_is_stuck_and_lease_wins(live):
    await create_claimed(live, "wf", ttl=HOUR)
    await task_call(live, "drop", "__invoke:wf", 1)  # INIT, counter 2
    assert await stuck_ids(live, "tasks") == []
    assert await stuck_ids(live, "tasks", minCounter=2) == [("__invoke:wf", "counter")]
    await task_call(live, "claim", "__invoke:wf", 2, processId="p1", ttl=HOUR)
    await task_call(live, "drop", "__invoke:wf", 2)  # INIT, counter 3: the default minimum
    assert await stuck_ids(live, "tasks") == [("__invoke:wf", "counter")]
    assert await stuck_ids(live, "tasks", minCounter=4) == []

    await task_call(live, "claim", "__invoke:wf", 3, processId="p1", ttl=HOUR)
    assert await stuck_ids(live, "tasks") == [("__invoke:wf", "counter")]
    live.clock.advance(HOUR - 10_000)  # its lease ends within 10 s too: listed once, as lease
    assert await stuck_ids(live, "tasks") == [("__invoke:wf", "lease")]
    await task_call(live, "complete", "__invoke:wf", 3)
    assert await stuck_ids(live, "tasks", minCounter=0) == []


async def test_stuck_tasks_keep_to_the_limit_leases_first(live):
    for name in ("a", "b"):
        await create_claimed(live, name, ttl=1000)
    await create_claimed(live, "c", ttl=HOUR)
    assert await stuck_ids(live, "tasks", minCounter=1) == [
        ("__invoke:a", "lease"),
        ("__invoke:b", "lease"),
        ("__invoke:c", "counter"),
    ]
    assert await stuck_ids(live, "tasks", minCounter=1, limit=2) == [
        ("__invoke:a", "lease"),
        ("__invoke:b", "lease"),
    ]


async def test_a_schedule_past_its_next_run_is_stuck_until_it_fires(live):
    body = {"id": "s", "cron": "* * * * *", "promiseId": "{{.id}}.{{.timestamp}}"}
    response = await live.client.post("/schedules", json=body)
    assert response.status_code == 201
    schedule = response.json()
    next_run = schedule["nextRunTime"]
    live.clock.set(next_run)  # due, not yet late
    assert await stuck_ids(live, "schedules") == []
    live.clock.set(next_run + 1)
    body = await stuck(live)
    assert body["schedules"] == [(await live.client.get("/schedules/s")).json()]
    assert await live.fire_schedules() == 1
    assert await stuck_ids(live, "schedules") == []


async def test_a_lock_not_renewed_for_half_its_ttl_is_stuck(live):
    await acquire(live, "r", ttl=10_000)
    live.clock.advance(5_000)  # exactly half left: not yet
    assert await stuck_ids(live, "locks") == []
    live.clock.advance(1)
    body = await stuck(live)
    assert body["locks"] == [(await live.client.get("/locks/r")).json()]
    await live.client.post("/locks/heartbeat", json={"processId": "p1"})
    assert await stuck_ids(live, "locks") == []
    live.clock.advance(20_000)  # expired, not yet swept
    assert await stuck_ids(live, "locks") == ["r"]
    assert await live.time_out_locks() == 1
    assert await stuck_ids(live, "locks") == []


async def test_stale_locks_longest_stale_first_and_ttl_zero_at_its_expiry(live):
    await acquire(live, "fresh", ttl=HOUR)
    await acquire(live, "short", ttl=100)
    await acquire(live, "zero", ttl=0)  # expires at once
    assert await stuck_ids(live, "locks") == ["zero"]
    live.clock.advance(51)
    assert await stuck_ids(live, "locks") == ["zero", "short"]
    assert await stuck_ids(live, "locks", limit=1) == ["zero"]


# ---- parameters, credentials, the OpenAPI document (the session server process) ---------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"leaseWithin": "-1"}, "leaseWithin"),
        ({"leaseWithin": "1e3"}, "leaseWithin"),
        ({"leaseWithin": str(2**63)}, "leaseWithin"),
        ({"leaseWithin": "9" * 5000}, "leaseWithin"),
        ({"minCounter": "-3"}, "minCounter"),
        ({"minCounter": " 3"}, "minCounter"),
    ],
)
def test_bad_stuck_parameters_are_400_naming_the_field(api, params, field):
    response = api.get("/stuck", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 40000
    assert error["details"][0]["metadata"]["field"] == field


@pytest.mark.parametrize(
    "params",
    [{}, {"limit": "1"}, {"limit": "100"}, {"leaseWithin": "0", "minCounter": "0"}, {"limit": ""}],
)
def test_good_stuck_parameters(api, params):
    response = api.get("/stuck", params=params)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"time", "promises", "tasks", "schedules", "locks"}


def test_the_session_server_reports_its_store_and_start(api, store_kind):
    body = api.get("/stats").json()
    assert (body["version"], body["store"]) == (__version__, store_kind)
    assert body["startedAt"] <= body["countedAt"] <= body["time"]
    assert set(body["promises"]) == set(PROMISE_STATES)
    assert set(body["tasks"]) == set(TASK_STATES)


def test_both_routes_are_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, schema in (("/stats", "Stats"), ("/stuck", "Stuck")):
        operation = document["paths"][path]["get"]
        response = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert response == {"$ref": f"#/components/schemas/{schema}"}
        assert "401" in operation["responses"] and "security" not in operation
    stuck_params = {p["name"]: p for p in document["paths"]["/stuck"]["get"]["parameters"]}
    assert stuck_params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    assert stuck_params["leaseWithin"]["schema"]["default"] == 10_000
    assert stuck_params["minCounter"]["schema"]["default"] == 3
    assert set(schemas["Stats"]["required"]) >= {"promises", "tasks", "schedules", "locks"}
    assert schemas["StuckTask"]["allOf"][0] == {"$ref": "#/components/schemas/ExtendedTask"}


# ---- the client (shared by the CLI and the TUI) -------------------------------------------------


def test_stuck_request_sends_only_the_parameters_given():
    assert get_stuck_request().params == ()
    assert get_stuck_request(lease_within=0, limit=5).params == (
        ("leaseWithin", "0"),
        ("limit", "5"),
    )
    assert get_stuck_request(min_counter=7).params == (("minCounter", "7"),)


def test_sync_client(server, uid):
    with ResonateClient(server.url) as client:
        body = client.get_stats().body
        assert set(body["promises"]) == set(PROMISE_STATES)
        client.create_promise(uid, 1)  # already overdue (the loop times it out within ~1 s)
        page = client.get_stuck(lease_within=0, min_counter=100, limit=100).body
        assert set(page) == {"time", "promises", "tasks", "schedules", "locks"}


async def test_async_client(live):
    await create(live, "late", START_MS)
    async with AsyncResonateClient(str(live.client.base_url)) as client:
        assert (await client.get_stats()).body["promises"]["PENDING"] == 1
        page = (await client.get_stuck(limit=1)).body
        assert [p["id"] for p in page["promises"]] == ["late"]


def test_dashboard_reads_need_credentials_when_auth_is_on(server_factory, tmp_path):
    secured = server_factory(tmp_path, extra_args=["--api-http-auth", "alice=s3cret"]).start()
    for path in ("/stats", "/stuck"):
        response = httpx.get(secured.url + path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 40100
        assert httpx.get(secured.url + path, auth=("alice", "s3cret")).status_code == 200
