"""Tasks (transitions.md §7, §8, §11; http-api.md §2.5, §4): router, claim, complete, drop,
heartbeat, the enqueue and timeout loops, link forms, operator reads. In-process server with a
manual clock; loops run one pass when a test asks."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.live import START_MS, LiveServer
from tests.support.sse import Worker

HOUR = 3_600_000
TTR = 15_000
TTC = 60_000


def enc(task_id: str) -> str:
    return quote(task_id, safe="")


async def create(live, promise_id, recv="poll://any@g", *, timeout=None, tags=None, **headers):
    tags = dict(tags or {})
    if recv is not None:
        tags["resonate:invoke"] = recv
    body = {"id": promise_id, "timeout": timeout or START_MS + HOUR, "tags": tags}
    return await live.client.post("/promises", json=body, headers=headers)


async def task(live, task_id):
    response = await live.client.get(f"/tasks/{enc(task_id)}")
    return response.json() if response.status_code == 200 else None


async def claim(live, task_id, counter=1, pid="p1", ttl=10_000):
    body = {"id": task_id, "counter": counter, "processId": pid, "ttl": ttl}
    return await live.client.post("/tasks/claim", json=body)


async def complete_task(live, task_id, counter=1):
    return await live.client.post("/tasks/complete", json={"id": task_id, "counter": counter})


async def drop(live, task_id, counter=1):
    return await live.client.post("/tasks/drop", json={"id": task_id, "counter": counter})


async def resolve(live, promise_id, **headers):
    return await live.client.patch(
        f"/promises/{promise_id}", json={"state": "RESOLVED"}, headers=headers
    )


async def enqueued(live, promise_id) -> dict:
    """A routed promise whose invoke task was delivered to a connected worker (ENQUEUED)."""
    async with Worker(f"{live.poll_url}/g/w1") as worker:
        await create(live, promise_id)
        await live.enqueue_tasks()
        await worker.next_event()
    return await task(live, f"__invoke:{promise_id}")


# ---- router (§4.4) ---------------------------------------------------------------------------


async def test_router_creates_an_init_invoke_task(live):
    response = await create(live, "wf", timeout=START_MS + 5000, traceparent="00-abc-def-01")
    assert response.status_code == 201
    got = await task(live, "__invoke:wf")
    assert got == {
        "id": "__invoke:wf",
        "state": "INIT",
        "type": "invoke",
        "counter": 1,
        "attempt": 0,
        "rootPromiseId": "wf",
        "leafPromiseId": "wf",
        "recv": "poll://any@g",
        "timeout": START_MS + 5000,
        "ttl": 0,
        "expiresAt": 0,
        "createdOn": START_MS,
    }


@pytest.mark.parametrize("value", ["{}", "5", '"x"', '{"type": "poll"}', '{"type":"","data":1}'])
async def test_router_ignores_json_that_is_not_a_physical_recv(live, value):
    assert (await create(live, "p", value)).status_code == 201
    assert await task(live, "__invoke:p") is None


async def test_router_physical_recv_is_stored_as_an_object(live):
    recv = {"type": "poll", "data": {"group": "g", "id": "p"}}
    await create(live, "p", json.dumps(recv))
    assert (await task(live, "__invoke:p"))["recv"] == recv


async def test_no_routing_tag_no_task(live):
    await create(live, "p", None, tags={"other": "x"})
    assert (await live.client.get("/tasks", params={"rootPromiseId": "p"})).json()["tasks"] == []


async def test_a_dedup_create_makes_no_second_task(live):
    await create(live, "p", **{"idempotency-key": "k"})
    assert (await create(live, "p", **{"idempotency-key": "k"})).status_code == 200
    assert len((await live.client.get("/tasks")).json()["tasks"]) == 1


async def test_delay_tag_sets_not_before(live):
    await create(live, "p", tags={"resonate:delay": str(START_MS + 7000)})
    assert (await task(live, "__invoke:p"))["expiresAt"] == START_MS + 7000
    await create(live, "q", tags={"resonate:delay": "soon"})
    assert (await task(live, "__invoke:q"))["expiresAt"] == 0


async def test_configured_router_sources_come_first(tmp_path: Path):
    sources = json.dumps([{"name": "mine", "type": "tag", "data": {"key": "target"}}])
    live = LiveServer(tmp_path / "db", "--aio-router-sources", sources)
    await live.start()
    try:
        await create(live, "p", None, tags={"target": "poll://any@x", "resonate:invoke": "y"})
        assert (await task(live, "__invoke:p"))["recv"] == "poll://any@x"
        await create(live, "q", "default")
        assert (await task(live, "__invoke:q"))["recv"] == "default"
    finally:
        await live.stop()


# ---- claim (T1-T6, D17) ----------------------------------------------------------------------


async def test_claim_unknown_task_is_404(live):  # T1
    response = await claim(live, "__invoke:nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 40403


async def test_claim_init_task(live):  # T5
    await create(live, "wf")
    response = await claim(live, "__invoke:wf", ttl=5000)
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "invoke"
    assert set(body["promises"]) == {"root"}
    root = body["promises"]["root"]
    assert root["id"] == "wf"
    assert root["href"] == f"http://127.0.0.1:{live.client.base_url.port}/promises/wf"
    assert root["data"]["state"] == "PENDING"
    got = await task(live, "__invoke:wf")
    assert got["state"] == "CLAIMED"
    assert got["processId"] == "p1"
    assert got["ttl"] == 5000
    assert got["expiresAt"] == START_MS + 5000


async def test_claim_enqueued_task(live):  # T5 from ENQUEUED
    assert (await enqueued(live, "wf"))["state"] == "ENQUEUED"
    assert (await claim(live, "__invoke:wf")).status_code == 201


async def test_repeated_claim_by_the_holder_answers_201_again(live):  # T2r, D17
    await create(live, "wf")
    first = await claim(live, "__invoke:wf", ttl=5000)
    live.clock.advance(1000)
    again = await claim(live, "__invoke:wf", ttl=8000)
    assert again.status_code == 201
    assert again.json() == first.json()
    got = await task(live, "__invoke:wf")
    assert (got["ttl"], got["expiresAt"]) == (8000, START_MS + 1000 + 8000)


@pytest.mark.parametrize(("pid", "counter"), [("p2", 1), ("p1", 2)])
async def test_claim_of_a_claimed_task_is_403(live, pid, counter):  # T2
    await create(live, "wf")
    await claim(live, "__invoke:wf")
    response = await claim(live, "__invoke:wf", counter=counter, pid=pid)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 40306


async def test_claim_of_a_completed_task_is_403(live):  # T3
    await create(live, "wf")
    await resolve(live, "wf")
    response = await claim(live, "__invoke:wf")
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40307)


async def test_claim_with_a_wrong_counter_is_403(live):  # T4
    await create(live, "wf")
    response = await claim(live, "__invoke:wf", counter=2)
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40308)


@pytest.mark.parametrize("path", ["/tasks/claim", "/tasks/complete", "/tasks/drop"])
@pytest.mark.parametrize("counter", [0, None, "1", -0])
async def test_counter_zero_or_missing_is_400(live, path, counter):  # T6
    body = {"id": "__invoke:x", "processId": "p", "ttl": 1}
    if counter is not None:
        body["counter"] = counter
    response = await live.client.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 40000


@pytest.mark.parametrize(
    "body",
    [
        {"id": "t", "counter": 1, "ttl": 1},
        {"id": "t", "counter": 1, "processId": "", "ttl": 1},
        {"id": "t", "counter": 1, "processId": "p", "ttl": -1},
        {"counter": 1, "processId": "p"},
    ],
)
async def test_claim_validation(live, body):
    assert (await live.client.post("/tasks/claim", json=body)).status_code == 400


# ---- complete, drop, heartbeat (T7-T17, E4) --------------------------------------------------


async def test_complete_table(live):
    assert (await complete_task(live, "__invoke:nope")).status_code == 404  # T7
    await create(live, "wf")
    response = await complete_task(live, "__invoke:wf")  # T9 (INIT)
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40309)
    await claim(live, "__invoke:wf")
    response = await complete_task(live, "__invoke:wf", counter=2)  # T10
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40308)
    live.clock.advance(10)
    response = await complete_task(live, "__invoke:wf")  # T11
    assert response.status_code == 201
    assert response.json() == {
        "id": "__invoke:wf",
        "counter": 1,
        "timeout": START_MS + HOUR,
        "rootPromiseId": "wf",
        "createdOn": START_MS,
        "completedOn": START_MS + 10,
    }
    again = await complete_task(live, "__invoke:wf", counter=7)  # T8, any counter
    assert (again.status_code, again.json()) == (200, response.json())


async def test_complete_of_an_enqueued_task_is_403(live):  # T9 (ENQUEUED)
    await enqueued(live, "wf")
    response = await complete_task(live, "__invoke:wf")
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40309)


async def test_worker_resolves_root_then_completes_task(live):  # E4
    await create(live, "wf")
    await claim(live, "__invoke:wf")
    assert (await resolve(live, "wf")).status_code == 201
    got = await task(live, "__invoke:wf")
    assert (got["state"], got.get("processId"), got["ttl"], got["expiresAt"]) == (
        "COMPLETED",
        None,
        0,
        0,
    )
    response = await complete_task(live, "__invoke:wf")
    assert response.status_code == 200
    assert "processId" not in response.json()


async def test_drop_table(live):
    assert (await drop(live, "__invoke:nope")).status_code == 404  # T12
    await create(live, "wf")
    response = await drop(live, "__invoke:wf")  # T13 (INIT): no change
    assert (response.status_code, response.content) == (200, b"")
    await claim(live, "__invoke:wf")
    response = await drop(live, "__invoke:wf", counter=3)  # T14
    assert (response.status_code, response.json()["error"]["code"]) == (403, 40308)
    response = await drop(live, "__invoke:wf")  # T15
    assert (response.status_code, response.content) == (201, b"")
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["counter"], got.get("processId"), got["expiresAt"]) == (
        "INIT",
        2,
        None,
        0,
    )
    await resolve(live, "wf")
    assert (await drop(live, "__invoke:wf", counter=2)).status_code == 200  # T13 (COMPLETED)


async def test_dropped_task_is_sent_again_with_the_next_counter(live):
    async with Worker(f"{live.poll_url}/g/w1") as worker:
        await create(live, "wf")
        await live.enqueue_tasks()
        assert (await worker.next_event())["task"]["counter"] == 1
        await claim(live, "__invoke:wf")
        await drop(live, "__invoke:wf")
        await live.enqueue_tasks()
        assert (await worker.next_event())["task"]["counter"] == 2


async def test_heartbeat_extends_every_claim_of_a_process(live):  # T16, T17
    for name in ("a", "b"):
        await create(live, name)
        await claim(live, f"__invoke:{name}", pid="proc", ttl=1000 if name == "a" else 3000)
    await create(live, "c")
    await claim(live, "__invoke:c", pid="other", ttl=1000)
    live.clock.advance(500)
    response = await live.client.post("/tasks/heartbeat", json={"processId": "proc"})
    assert response.json() == {"tasksAffected": 2}
    assert (await task(live, "__invoke:a"))["expiresAt"] == START_MS + 1500
    assert (await task(live, "__invoke:b"))["expiresAt"] == START_MS + 3500
    assert (await task(live, "__invoke:c"))["expiresAt"] == START_MS + 1000
    unknown = await live.client.post("/tasks/heartbeat", json={"processId": "ghost"})
    assert (unknown.status_code, unknown.json()) == (200, {"tasksAffected": 0})
    assert (await live.client.post("/tasks/heartbeat", json={})).status_code == 400


# ---- link forms (§4.8, D10) ------------------------------------------------------------------


async def test_links_claim_heartbeat_complete(live):
    async with Worker(f"{live.poll_url}/g/w1") as worker:
        await create(live, "a/b c")
        await live.enqueue_tasks()
        message = await worker.next_event()
    href = message["href"]
    base = f"http://127.0.0.1:{live.client.base_url.port}"
    assert href == {
        "base": base,
        "claim": f"{base}/tasks/claim/__invoke:a%2Fb%20c/1",
        "complete": f"{base}/tasks/complete/__invoke:a%2Fb%20c/1",
        "heartbeat": f"{base}/tasks/heartbeat/__invoke:a%2Fb%20c/1",
    }
    response = await live.client.get(href["claim"])
    assert response.status_code == 201
    got = await task(live, "__invoke:a/b c")
    assert (got["processId"], got["ttl"]) == ("__invoke:a/b c/1", 60_000)
    beat = await live.client.get(href["heartbeat"])
    assert beat.json() == {"tasksAffected": 1}
    done = await live.client.get(href["complete"])
    assert done.status_code == 201
    assert (await live.client.get(f"{base}/tasks/drop/__invoke:a%2Fb%20c/1")).status_code == 200


@pytest.mark.parametrize("ref", ["__invoke:x/zero", "__invoke:x/0", "nocounter"])
async def test_bad_links_are_400(live, ref):
    response = await live.client.get(f"/tasks/claim/{ref}")
    assert response.status_code == 400


# ---- create with task (§2.5, W1-W8) ----------------------------------------------------------


async def create_with_task(live, promise_id, recv="poll://any@g", pid="q", ttl=5000, **kw):
    tags = {"resonate:invoke": recv} if recv is not None else {}
    body = {
        "promise": {"id": promise_id, "timeout": START_MS + HOUR, "tags": tags, **kw},
        "task": {"processId": pid, "ttl": ttl},
    }
    return await live.client.post("/promises/task", json=body, headers={"idempotency-key": "k"})


async def test_create_with_task_claims_the_invoke_task(live):  # W1
    response = await create_with_task(live, "wf")
    assert response.status_code == 201
    body = response.json()
    assert body["promise"]["id"] == "wf"
    assert body["task"] == {
        "id": "__invoke:wf",
        "counter": 1,
        "timeout": START_MS + HOUR,
        "rootPromiseId": "wf",
        "processId": "q",
        "createdOn": START_MS,
    }
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["expiresAt"]) == ("CLAIMED", START_MS + 5000)


@pytest.mark.parametrize("recv", [None, "{}", "5", '"x"'])
async def test_create_with_task_unrouted_has_no_task(live, recv):  # W2, W3
    response = await create_with_task(live, "wf", recv)
    assert (response.status_code, response.json()["task"]) == (201, None)
    assert await task(live, "__invoke:wf") is None


async def test_create_with_task_physical_recv(live):  # W4
    recv = {"type": "poll", "data": {"group": "g", "id": "p"}}
    assert (await create_with_task(live, "wf", json.dumps(recv))).status_code == 201
    assert (await task(live, "__invoke:wf"))["recv"] == recv


async def test_create_with_task_dedup(live):  # W5, W5r, W6
    await create_with_task(live, "wf")
    live.clock.advance(1000)
    again = await create_with_task(live, "wf")  # the holder re-sends (D18)
    assert again.status_code == 200
    assert again.json()["task"]["processId"] == "q"
    assert (await task(live, "__invoke:wf"))["expiresAt"] == START_MS + 1000 + 5000
    other = await create_with_task(live, "wf", pid="someone-else")
    assert (other.status_code, other.json()["task"]) == (200, None)
    await resolve(live, "wf")
    after = await create_with_task(live, "wf")
    assert (after.status_code, after.json()["task"]) == (200, None)
    response = await live.client.post(
        "/promises/task",
        json={"promise": {"id": "wf", "timeout": 1}, "task": {"processId": "q"}},
        headers={"idempotency-key": "other"},
    )
    assert response.status_code == 409  # W6: another key


@pytest.mark.parametrize(
    "task_part", [{"processId": "q", "ttl": -1}, {"ttl": 5}, {"processId": ""}, None]
)
async def test_create_with_task_validation(live, task_part):  # W7
    body = {"promise": {"id": "wf", "timeout": 1}}
    if task_part is not None:
        body["task"] = task_part
    response = await live.client.post("/promises/task", json=body)
    assert response.status_code == 400
    assert await task(live, "__invoke:wf") is None


async def test_create_with_task_without_heartbeat_is_reissued(live):  # W8
    await create_with_task(live, "wf", ttl=5000)
    live.clock.advance(5000)
    assert await live.time_out_tasks() == 1
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["counter"]) == ("INIT", 2)
    async with Worker(f"{live.poll_url}/g/w") as worker:
        await live.enqueue_tasks()
        assert (await worker.next_event())["task"]["counter"] == 2


async def test_create_with_task_ignores_fencing_headers(live):  # F6
    response = await live.client.post(
        "/promises/task",
        json={"promise": {"id": "wf", "timeout": START_MS + 1}, "task": {"processId": "q"}},
        headers={"task-id": "nope", "task-counter": "1"},
    )
    assert response.status_code == 201


# ---- fencing (F1, F3, F4) --------------------------------------------------------------------


async def test_fencing_with_a_claimed_task(live):  # F1, F3
    await create(live, "wf")
    await claim(live, "__invoke:wf")
    fenced = {"task-id": "__invoke:wf", "task-counter": "1"}
    assert (await create(live, "wf.1", None, **fenced)).status_code == 201
    wrong = {"task-id": "__invoke:wf", "task-counter": "2"}
    response = await create(live, "wf.2", None, **wrong)
    assert (response.status_code, response.json()["error"]["code"]) == (412, 41200)
    assert (await live.client.get("/promises/wf.2")).status_code == 404
    assert (await resolve(live, "wf.1", **fenced)).status_code == 201


@pytest.mark.parametrize("state", ["INIT", "ENQUEUED", "COMPLETED"])
async def test_fencing_needs_a_claimed_task(live, state):  # F4
    if state == "ENQUEUED":
        await enqueued(live, "wf")
    else:
        await create(live, "wf")
    if state == "COMPLETED":
        await resolve(live, "wf")
    assert (await task(live, "__invoke:wf"))["state"] == state
    fenced = {"task-id": "__invoke:wf", "task-counter": "1"}
    assert (await create(live, "child", None, **fenced)).status_code == 412


# ---- the timeout loop (T18-T20) --------------------------------------------------------------


async def test_lapsed_lease_is_reissued(live):  # T18
    await create(live, "wf")
    await claim(live, "__invoke:wf", ttl=1000)
    live.clock.advance(999)
    assert await live.time_out_tasks() == 0
    live.clock.advance(1)
    assert await live.time_out_tasks() == 1
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["counter"], got.get("processId"), got["ttl"]) == ("INIT", 2, None, 0)
    assert (await claim(live, "__invoke:wf", counter=1)).status_code == 403
    assert (await claim(live, "__invoke:wf", counter=2, pid="p2")).status_code == 201


async def test_unclaimed_delivery_is_reissued_after_ttc(live):  # T19
    got = await enqueued(live, "wf")
    assert got["expiresAt"] == START_MS + TTC
    live.clock.advance(TTC)
    await live.time_out_tasks()
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["counter"], got["attempt"]) == ("INIT", 2, 0)


async def test_claimed_task_times_out(live):  # T20
    await create(live, "wf", timeout=START_MS + 3000)
    await claim(live, "__invoke:wf", ttl=HOUR)
    live.clock.advance(3000)
    await live.time_out_tasks()
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["completedOn"]) == ("TIMEDOUT", START_MS + 3000)


async def test_claim_with_zero_ttl_is_reissued_on_the_next_pass(live):
    await create(live, "wf")
    await claim(live, "__invoke:wf", ttl=0)
    assert await live.time_out_tasks() == 1
    assert (await task(live, "__invoke:wf"))["counter"] == 2


# ---- the enqueue loop (T21-T25) ---------------------------------------------------------------


async def register(live, leaf, root, recv="poll://any@g"):
    body = {"rootPromiseId": root, "recv": recv, "timeout": START_MS + HOUR}
    response = await live.client.post(f"/promises/callback/{leaf}", json=body)
    assert response.status_code == 201


async def test_resume_of_a_completed_root_is_not_sent(live):  # T21
    await create(live, "root", None)
    await create(live, "leaf", None)
    await register(live, "leaf", "root")
    await resolve(live, "leaf")
    await resolve(live, "root")  # completes nothing yet: the resume task is INIT
    async with Worker(f"{live.poll_url}/g/w") as worker:
        await live.enqueue_tasks()
        await worker.no_event()
    got = await task(live, "__resume:root:leaf")
    assert (got["state"], got["completedOn"]) == ("COMPLETED", START_MS)


async def test_init_task_past_its_timeout_times_out(live):  # T22
    await create(live, "wf", timeout=START_MS + 10)
    live.clock.advance(10)
    await live.enqueue_tasks()
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["completedOn"]) == ("TIMEDOUT", START_MS + 10)


async def test_one_outstanding_task_per_root(live):  # T23
    await create(live, "root", None)
    for leaf in ("l1", "l2"):
        await create(live, leaf, None)
        await register(live, leaf, "root")
        await resolve(live, leaf)
    async with Worker(f"{live.poll_url}/g/w") as worker:
        await live.enqueue_tasks()
        first = await worker.next_event()
        assert first["task"]["id"] == "__resume:root:l1"
        await live.enqueue_tasks()
        await worker.no_event()
        assert (await task(live, "__resume:root:l2"))["state"] == "INIT"
        await claim(live, "__resume:root:l1")
        await live.enqueue_tasks()
        await worker.no_event()
        await complete_task(live, "__resume:root:l1")
        await live.enqueue_tasks()
        assert (await worker.next_event())["task"]["id"] == "__resume:root:l2"


async def test_notify_is_completed_even_without_a_connection(live):  # T24
    await create(live, "p", None)
    body = {"id": "s", "recv": "poll://any@nobody", "timeout": START_MS + HOUR}
    await live.client.post("/promises/subscribe/p", json=body)
    await resolve(live, "p")
    await live.enqueue_tasks()
    got = await task(live, "__notify:p:s")
    assert (got["state"], got["completedOn"]) == ("COMPLETED", START_MS)
    live.clock.advance(HOUR // 2)
    await live.enqueue_tasks()
    assert (await task(live, "__notify:p:s"))["attempt"] == 0  # never retried


@pytest.mark.parametrize("recv", ["kafka://x", "sqs+https://q", "poll://bad@g", "nope"])
async def test_unresolvable_recv_is_retried_after_15s(live, recv):  # T25
    await create(live, "wf", recv)
    await live.enqueue_tasks()
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["attempt"], got["expiresAt"]) == ("INIT", 1, START_MS + 15_000)
    live.clock.advance(14_999)
    await live.enqueue_tasks()
    assert (await task(live, "__invoke:wf"))["attempt"] == 1
    live.clock.advance(1)
    await live.enqueue_tasks()
    assert (await task(live, "__invoke:wf"))["attempt"] == 2


async def test_failed_poll_delivery_is_retried_after_ttr(live):
    await create(live, "wf", "poll://any@empty-group")
    await live.enqueue_tasks()
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["attempt"], got["expiresAt"]) == ("INIT", 1, START_MS + TTR)
    async with Worker(f"{live.poll_url}/empty-group/w") as worker:
        await live.enqueue_tasks()
        await worker.no_event()  # not before ttr
        live.clock.advance(TTR)
        await live.enqueue_tasks()
        message = await worker.next_event()
    assert message["task"]["id"] == "__invoke:wf"
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["attempt"], got["expiresAt"]) == ("ENQUEUED", 2, START_MS + TTR + TTC)


# ---- messages and routing through the real listeners (§4.6, §5.4) ----------------------------


async def test_invoke_message_shape_and_trace_head(live):
    async with Worker(f"{live.poll_url}/g/w1") as worker:
        await create(live, "wf", traceparent="00-aa-bb-01", tracestate="k=v")
        await live.enqueue_tasks()
        message = await worker.next_event()
    assert message["type"] == "invoke"
    assert message["task"] == {
        "id": "__invoke:wf",
        "counter": 1,
        "timeout": START_MS + HOUR,
        "rootPromiseId": "wf",
        "createdOn": START_MS,
    }
    assert message["head"] == {"traceparent": "00-aa-bb-01", "tracestate": "k=v"}


async def test_resume_claim_has_root_and_leaf(live):
    await create(live, "root", None)
    await create(live, "leaf", None)
    await register(live, "leaf", "root")
    await resolve(live, "leaf")
    async with Worker(f"{live.poll_url}/g/w") as worker:
        await live.enqueue_tasks()
        message = await worker.next_event()
    assert message["type"] == "resume"
    body = (await claim(live, message["task"]["id"], message["task"]["counter"])).json()
    assert body["type"] == "resume"
    assert body["promises"]["root"]["data"]["state"] == "PENDING"
    assert body["promises"]["leaf"]["id"] == "leaf"
    assert body["promises"]["leaf"]["data"]["state"] == "RESOLVED"


async def test_notify_message_carries_the_completed_promise(live):
    await create(live, "p", None)
    body = {"id": "s", "recv": "poll://any@g", "timeout": START_MS + HOUR}
    await live.client.post("/promises/subscribe/p", json=body)
    await resolve(live, "p")
    async with Worker(f"{live.poll_url}/g/w") as worker:
        await live.enqueue_tasks()
        message = await worker.next_event()
    assert set(message) == {"type", "promise"}
    assert (message["type"], message["promise"]["id"], message["promise"]["state"]) == (
        "notify",
        "p",
        "RESOLVED",
    )


async def test_routing_prefers_the_exact_id_else_any_member(live):
    recv = json.dumps({"type": "poll", "data": {"group": "g", "id": "w2"}})
    async with Worker(f"{live.poll_url}/g/w1") as w1, Worker(f"{live.poll_url}/g/w2") as w2:
        await create(live, "a", recv)
        await live.enqueue_tasks()
        assert (await w2.next_event())["task"]["id"] == "__invoke:a"
        await w1.no_event()
    async with Worker(f"{live.poll_url}/g/w1") as w1:  # w2 is gone: any member takes it
        await create(live, "b", recv)
        await live.enqueue_tasks()
        assert (await w1.next_event())["task"]["id"] == "__invoke:b"


async def test_uni_cast_fails_without_the_exact_connection(live):
    async with Worker(f"{live.poll_url}/g/w1"):
        await create(live, "a", "poll://uni@g/w2")
        await live.enqueue_tasks()
    got = await task(live, "__invoke:a")
    assert (got["state"], got["attempt"]) == ("INIT", 1)


async def test_the_api_port_stream_is_the_2026_one(live):
    """P2: `GET /poll/{group}/{id}` on the API port is the 2026 protocol's stream, with its own
    connections: a REST task goes to the poll listener's streams only."""
    async with (
        Worker(f"{live.client.base_url}/poll/g/w1") as api_worker,
        Worker(f"{live.poll_url}/g/w1") as rest_worker,
    ):
        await create(live, "wf")
        await live.enqueue_tasks()
        assert (await rest_worker.next_event())["task"]["id"] == "__invoke:wf"
        envelope = {
            "kind": "promise.create",
            "head": {"corrId": "c1", "version": "2026-04-01"},
            "data": {"id": "wf26", "timeoutAt": 2**53, "tags": {"resonate:target": "poll://any@g"}},
        }
        response = await live.client.post("/", json=envelope)
        assert response.status_code == 200, response.text
        await live.deliver_2026()
        event = await api_worker.next_event()
        assert event["kind"] == "execute"
        assert event["data"]["task"] == {"id": "wf26", "version": 0}


async def test_sender_targets_name_logical_recvs(tmp_path: Path):
    targets = json.dumps([{"name": "billing", "type": "poll", "data": {"group": "bill"}}])
    live = LiveServer(tmp_path / "db", "--aio-sender-targets", targets)
    await live.start()
    try:
        async with Worker(f"{live.poll_url}/bill/w") as worker:
            await create(live, "wf", "billing")
            await live.enqueue_tasks()
            assert (await worker.next_event())["task"]["id"] == "__invoke:wf"
        async with Worker(f"{live.poll_url}/default/w") as worker:
            await create(live, "wf2", "default")
            await live.enqueue_tasks()
            assert (await worker.next_event())["task"]["id"] == "__invoke:wf2"
    finally:
        await live.stop()


# ---- operator reads (§4.10) -------------------------------------------------------------------


async def test_search_tasks_filters_and_pages(live):
    for index in range(5):
        await create(live, f"s{index}")
    await claim(live, "__invoke:s1", pid="px")
    everything = (await live.client.get("/tasks")).json()
    assert [t["id"] for t in everything["tasks"]] == [f"__invoke:s{i}" for i in range(4, -1, -1)]
    claimed = (await live.client.get("/tasks", params={"state": "CLAIMED"})).json()["tasks"]
    assert [t["id"] for t in claimed] == ["__invoke:s1"]
    by_process = (await live.client.get("/tasks", params={"processId": "px"})).json()["tasks"]
    assert [t["id"] for t in by_process] == ["__invoke:s1"]
    by_root = (await live.client.get("/tasks", params={"rootPromiseId": "s3"})).json()["tasks"]
    assert [t["id"] for t in by_root] == ["__invoke:s3"]
    pattern = (await live.client.get("/tasks", params={"id": "__invoke:s[0-9]*"})).json()
    assert pattern["tasks"] == []  # `[` is literal (D6)
    seen = []
    page = (await live.client.get("/tasks", params={"id": "__invoke:*", "limit": 2})).json()
    while True:
        seen += [t["id"] for t in page["tasks"]]
        if page["cursor"] is None:
            break
        page = (await live.client.get("/tasks", params={"cursor": page["cursor"]})).json()
    assert len(seen) == 5
    bad = await live.client.get("/tasks", params={"state": "running"})
    assert bad.status_code == 400
    assert (await live.client.get("/tasks", params={"cursor": "xyz"})).status_code == 400
    assert (await live.client.get("/tasks/__invoke:nope")).json()["error"]["code"] == 40403


async def test_task_metrics(live):
    await create(live, "wf")
    await claim(live, "__invoke:wf")
    await drop(live, "__invoke:wf")
    await claim(live, "__invoke:wf", counter=2, ttl=0)
    await live.time_out_tasks()
    await resolve(live, "wf")
    text = live.server.metrics.render().decode()
    for state, count in [
        ("created", 1),
        ("claimed", 2),
        ("dropped", 1),
        ("reissued", 1),
        ("completed", 1),
    ]:
        assert f'tasks_total{{state="{state}"}} {count}.0' in text, state
    await create(live, "nobody-listens", "poll://any@nobody")
    await create(live, "unknown", "kafka://x")
    await live.enqueue_tasks()
    text = live.server.metrics.render().decode()
    assert 'task_deliveries_total{outcome="failure",plugin="poll"} 1.0' in text
    assert 'task_deliveries_total{outcome="unknown_recv",plugin="unknown"} 1.0' in text


# ---- HTTP push through the enqueue loop (§6, D8) ----------------------------------------------


@pytest.fixture
async def receiver():
    """A local aiohttp receiver answering with the status the test sets."""
    from aiohttp import web

    state = {"status": 200, "received": []}

    async def handle(request):
        state["received"].append((dict(request.headers), await request.json()))
        return web.Response(status=state["status"])

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state["url"] = f"http://127.0.0.1:{port}/hook"
    yield state
    await runner.cleanup()


async def test_http_push_delivers_on_2xx(live, receiver):
    await create(live, "wf", receiver["url"], traceparent="00-aa-bb-01")
    await live.enqueue_tasks()
    [(headers, body)] = receiver["received"]
    assert body["type"] == "invoke"
    assert body["task"]["id"] == "__invoke:wf"
    assert "head" not in body
    assert headers["traceparent"] == "00-aa-bb-01"
    assert headers["Content-Type"] == "application/json"
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["attempt"], got["expiresAt"]) == ("ENQUEUED", 1, START_MS + TTC)
    assert (await claim(live, "__invoke:wf")).status_code == 201


async def test_http_push_failure_is_retried_after_ttr(live, receiver):
    receiver["status"] = 500
    recv = json.dumps({"type": "http", "data": {"url": receiver["url"], "headers": {"x-k": "v"}}})
    await create(live, "wf", recv)
    await live.enqueue_tasks()
    assert receiver["received"][0][0]["x-k"] == "v"
    got = await task(live, "__invoke:wf")
    assert (got["state"], got["attempt"], got["expiresAt"]) == ("INIT", 1, START_MS + TTR)
    receiver["status"] = 204
    live.clock.advance(TTR)
    await live.enqueue_tasks()
    assert len(receiver["received"]) == 2
    assert (await task(live, "__invoke:wf"))["state"] == "ENQUEUED"


# ---- a real server process: loops run by themselves -------------------------------------------


async def test_server_process_delivers_and_redelivers_without_help(server_factory, tmp_path):
    """Woken on creation, the enqueue loop sends at once; a lapsed lease is re-issued by the
    timeout loop and sent to the other member of the group."""
    import httpx

    server = server_factory(tmp_path).start()
    async with (
        httpx.AsyncClient(base_url=server.url) as api,
        Worker(f"{server.poll_url}/g/w1") as w1,
    ):
        body = {"id": "wf", "timeout": 2**63 - 1, "tags": {"resonate:invoke": "poll://any@g"}}
        assert (await api.post("/promises", json=body)).status_code == 201
        message = await w1.next_event(within=2.0)
        assert message["task"]["counter"] == 1
        claimed = {"id": "__invoke:wf", "counter": 1, "processId": "w1", "ttl": 300}
        assert (await api.post("/tasks/claim", json=claimed)).status_code == 201
        await w1.close()  # w1 dies holding the task
        async with Worker(f"{server.poll_url}/g/w2") as w2:
            again = await w2.next_event(within=5.0)
        assert again["task"]["counter"] == 2


async def test_concurrent_claims_have_one_winner(live):
    import asyncio

    for index in range(10):
        await create(live, f"race{index}")
    for index in range(10):
        answers = await asyncio.gather(
            *(claim(live, f"__invoke:race{index}", pid=f"p{n}") for n in range(8))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] + [403] * 7
