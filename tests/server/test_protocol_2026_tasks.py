"""The 2026-04-01 protocol's task state machine (protocol-2026.md §3.2, §4.2, §4.3, §7), the
fence, heartbeats, preload and the lenient id rule (§4.4, P4), on an in-process server with a
manual clock on every store. Time moves only when a test moves it, and the delivery loop runs
only when a test runs a pass (`deliver`), so every timer is exact and every execute is read
from a real SSE stream on the API port (`GET /poll/{group}/{pid}`, §6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resonate.core.task2026 import origin_of
from tests.server.protocol_2026_support import (
    HOUR,
    AsyncApi,
    any_at,
    callback_action,
    create_action,
    create_data,
    deliver,
    execute_of,
    lineage,
    settle_action,
    stream,
)
from tests.support.live import START_MS

pytestmark = pytest.mark.asyncio

GROUP, PID = "g", "w"
TARGET = any_at(GROUP, PID)
RETRY = 30_000  # tasks.retryTimeout's default
LATER = START_MS + HOUR


@pytest.fixture
def v(live: Any) -> AsyncApi:
    return AsyncApi(live.client)


def targeted(promise_id: str, root: str | None = None, branch: str | None = None) -> dict:
    """A target and the SDK's lineage tags (origin = the lenient origin of the id)."""
    return {**lineage(promise_id, root or origin_of(promise_id), branch), "resonate:target": TARGET}


async def expect_execute(live: Any, worker: Any, task_id: str, version: int) -> None:
    event = await worker.next_event()
    assert execute_of(event) == (task_id, version)
    assert event["head"]["serverUrl"] == live.server.context.base_url  # P8: system.url


async def pending(v: AsyncApi, task_id: str, timeout_at: int = LATER, **tags: str) -> None:
    data = create_data(task_id, timeout_at, {**targeted(task_id), **tags})
    assert (await v.ok("promise.create", data))["promise"]["state"] == "pending"


async def acquire(v: AsyncApi, task_id: str, version: int, pid: str = PID, ttl: int = 1000):
    data = {"id": task_id, "version": version, "pid": pid, "ttl": ttl}
    return await v.ok("task.acquire", data)


async def task_create(v: AsyncApi, task_id: str, pid: str = PID, ttl: int = 1000, **kw: Any):
    action = create_action(task_id, kw.pop("timeout_at", LATER), targeted(task_id), **kw)
    return await v.send("task.create", {"pid": pid, "ttl": ttl, "action": action})


async def child(v: AsyncApi, promise_id: str, root: str, **tags: str) -> dict[str, Any]:
    """A plain (untargeted) promise in ``root``'s tree, branch = itself (a remote child)."""
    data = create_data(promise_id, LATER, {**lineage(promise_id, root), **tags})
    return (await v.ok("promise.create", data))["promise"]


async def suspend(v: AsyncApi, task_id: str, version: int, *awaited: str) -> tuple[int, Any]:
    actions = [callback_action(a, task_id) for a in awaited]
    return await v.status("task.suspend", {"id": task_id, "version": version, "actions": actions})


async def fence(v: AsyncApi, task_id: str, version: int, action: dict) -> dict[str, Any]:
    return await v.send("task.fence", {"id": task_id, "version": version, "action": action})


def shape(task: dict[str, Any]) -> tuple[str, int, int]:
    return task["state"], task["version"], task["resumes"]


# ---- creation ---------------------------------------------------------------------------------


async def test_create_with_target_is_pending_v0_and_sends_an_execute(live, v):
    async with stream(live, GROUP, PID) as worker:
        await pending(v, "wf")
        assert await v.task("wf") == {"id": "wf", "state": "pending", "version": 0, "resumes": 0}
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 0)
        assert await deliver(live) == 0  # sent once; next at the retry timer


async def test_create_without_target_has_no_task(live, v):
    await v.ok("promise.create", create_data("plain", LATER))
    assert (await v.status("task.get", {"id": "plain"}))[0] == 404
    assert await deliver(live) == 0


@pytest.mark.parametrize(
    ("tags", "state"), [({}, "rejected_timedout"), ({"resonate:timer": "true"}, "resolved")]
)
async def test_create_past_its_timeout_is_born_settled_with_a_fulfilled_task(live, v, tags, state):
    data = create_data("late", START_MS - 5, {**targeted("late"), **tags})
    promise = (await v.ok("promise.create", data))["promise"]
    assert (promise["state"], promise["settledAt"], promise["createdAt"]) == (
        state,
        START_MS - 5,
        START_MS - 5,
    )
    assert shape(await v.task("late")) == ("fulfilled", 0, 0)
    assert await deliver(live) == 0  # nothing is sent


async def test_task_create_is_acquired_v1_without_an_execute(live, v):
    async with stream(live, GROUP, PID) as worker:
        reply = await task_create(v, "wf", ttl=5000)
        assert reply["head"]["status"] == 200
        data = reply["data"]
        assert data["task"] == {
            "id": "wf",
            "state": "acquired",
            "version": 1,
            "resumes": 0,
            "ttl": 5000,
            "pid": PID,
        }
        assert data["promise"]["state"] == "pending"
        assert data["preload"] == []
        assert await deliver(live) == 0
        # The lease is now + ttl: it lapses at exactly +5000, back to pending at v1.
        live.clock.advance(4999)
        assert await deliver(live) == 0
        assert shape(await v.task("wf")) == ("acquired", 1, 0)
        live.clock.advance(1)
        assert await deliver(live) >= 1
        await expect_execute(live, worker, "wf", 1)
        assert await v.task("wf") == {"id": "wf", "state": "pending", "version": 1, "resumes": 0}


@pytest.mark.parametrize(
    ("tags", "state"), [({}, "rejected_timedout"), ({"resonate:timer": "true"}, "resolved")]
)
async def test_task_create_past_its_timeout_is_fulfilled_v0(live, v, tags, state):
    await child(v, "wf:1", "wf", **{"resonate:branch": "wf", "resonate:parent": "wf"})
    action = create_action("wf", START_MS - 1, {**targeted("wf"), **tags})
    data = await v.ok("task.create", {"pid": PID, "ttl": 1000, "action": action})
    assert data["task"] == {"id": "wf", "state": "fulfilled", "version": 0, "resumes": 0}
    assert data["promise"]["state"] == state
    assert data["preload"] == []
    assert await deliver(live) == 0


async def test_task_create_on_a_pending_task_acquires_it(live, v):
    await pending(v, "wf")
    reply = await task_create(v, "wf", pid="other", ttl=700)
    assert reply["head"]["status"] == 200
    assert reply["data"]["task"] == {
        "id": "wf",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 700,
        "pid": "other",
    }
    # a lost reply retried by the same pid: the task is live now
    again = await task_create(v, "wf", pid="other", ttl=700)
    assert (again["head"]["status"], again["data"]) == (409, "Already exists")


# ---- acquire, release, lease expiry, retry timer ---------------------------------------------


async def test_acquire_bumps_the_version_and_sets_a_lease(live, v):
    async with stream(live, GROUP, PID) as worker:
        await pending(v, "wf")
        await deliver(live)
        await expect_execute(live, worker, "wf", 0)
        data = await acquire(v, "wf", 0, ttl=2000)
        assert data["task"] == {
            "id": "wf",
            "state": "acquired",
            "version": 1,
            "resumes": 0,
            "ttl": 2000,
            "pid": PID,
        }
        assert data["promise"]["id"] == "wf"
        assert data["preload"] == []
        # The pending retry timer is replaced by the lease: no execute at +30 s
        # while the lease holds ... (the lease is 2 s: heartbeat it to hold it)
        for _ in range(20):
            live.clock.advance(1500)
            beat = {"pid": PID, "tasks": [{"id": "wf", "version": 1}]}
            assert await v.ok("task.heartbeat", beat) == {}
            assert await deliver(live) == 0
        assert shape(await v.task("wf")) == ("acquired", 1, 0)
        live.clock.advance(2000)
        assert await deliver(live) >= 1
        await expect_execute(live, worker, "wf", 1)  # lease expiry: same version
        assert shape(await v.task("wf")) == ("pending", 1, 0)
        assert shape((await acquire(v, "wf", 1))["task"]) == ("acquired", 2, 0)


async def test_release_goes_back_to_pending_and_sends_the_execute_at_once(live, v):
    async with stream(live, GROUP, PID) as worker:
        assert (await task_create(v, "wf"))["head"]["status"] == 200
        assert await v.ok("task.release", {"id": "wf", "version": 1}) == {}
        assert await v.task("wf") == {"id": "wf", "state": "pending", "version": 1, "resumes": 0}
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)
        # then the retry timer: again after exactly the retry timeout
        live.clock.advance(RETRY - 1)
        assert await deliver(live) == 0
        live.clock.advance(1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)
        # a released task is acquired at its (unchanged) version
        assert shape((await acquire(v, "wf", 1))["task"]) == ("acquired", 2, 0)
        assert (await v.status("task.release", {"id": "wf", "version": 1}))[0] == 409


async def test_release_in_a_loop_spins(live, v):
    async with stream(live, GROUP, PID) as worker:
        await pending(v, "wf")
        for version in range(3):
            assert await deliver(live) == 1
            await expect_execute(live, worker, "wf", version)
            await acquire(v, "wf", version)
            await v.ok("task.release", {"id": "wf", "version": version + 1})


async def test_retry_timer_resends_the_execute_of_a_pending_task(live, v):
    async with stream(live, GROUP, PID) as worker:
        await pending(v, "wf")
        await pending(v, "wf2")
        assert await deliver(live) == 2
        first = {execute_of(await worker.next_event()) for _ in range(2)}
        assert first == {("wf", 0), ("wf2", 0)}
        for _ in range(3):
            live.clock.advance(RETRY - 1)
            assert await deliver(live) == 0
            live.clock.advance(1)
            assert await deliver(live) == 2
            again = {execute_of(await worker.next_event()) for _ in range(2)}
            assert again == first
        await acquire(v, "wf", 0, ttl=HOUR)
        live.clock.advance(RETRY)
        assert await deliver(live) == 1  # the acquired one is no longer retried
        await expect_execute(live, worker, "wf2", 0)


async def test_a_lost_execute_is_sent_again(live, v):
    """No worker connected: the execute is dropped; the retry timer sends it again (§6)."""
    await pending(v, "wf")
    assert await deliver(live) == 1  # dropped
    async with stream(live, GROUP, PID) as worker:
        live.clock.advance(RETRY)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 0)


# ---- suspend and wake-ups ---------------------------------------------------------------------


async def test_suspend_then_wake_by_settlement(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf")
        await child(v, "wf:1", "wf")
        await child(v, "wf:2", "wf")
        assert await suspend(v, "wf", 1, "wf:1", "wf:2") == (200, {})
        assert await v.task("wf") == {"id": "wf", "state": "suspended", "version": 1, "resumes": 0}
        # no timers while suspended: neither the lease nor a retry
        live.clock.advance(10 * RETRY)
        assert await deliver(live) == 0
        await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
        assert shape(await v.task("wf")) == ("pending", 1, 1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)
        # the other callback survives the wake-up and just counts
        await v.ok("promise.settle", {"id": "wf:2", "state": "rejected"})
        assert shape(await v.task("wf")) == ("pending", 1, 2)
        assert await deliver(live) == 0  # at most one queued execute per task
        held = await acquire(v, "wf", 1)
        assert shape(held["task"]) == ("acquired", 2, 0)  # resumes cleared on acquire
        await v.ok("task.fulfill", {"id": "wf", "version": 2, "action": settle_action("wf")})
        assert shape(await v.task("wf")) == ("fulfilled", 2, 0)


async def test_suspend_300_when_an_awaited_is_settled_keeps_the_task_acquired(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf", ttl=1000)
        await child(v, "wf:1", "wf")
        await child(v, "wf:2", "wf")
        await v.ok("promise.settle", {"id": "wf:2", "state": "resolved"})
        code, data = await suspend(v, "wf", 1, "wf:1", "wf:2")
        assert (code, data) == (300, {"preload": []})
        task = await v.task("wf")
        assert (task["state"], task["version"], task["pid"], task["ttl"]) == (
            "acquired",
            1,
            PID,
            1000,
        )
        # nothing registered for wf:1: its settlement changes nothing
        await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
        assert shape(await v.task("wf")) == ("acquired", 1, 0)
        # the lease still runs
        live.clock.advance(1000)
        assert await deliver(live) >= 1
        await expect_execute(live, worker, "wf", 1)


async def test_register_callback_on_a_settled_awaited_wakes_a_suspended_awaiter(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf")
        await child(v, "wf:1", "wf")
        await child(v, "wf:2", "wf")
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
        await v.ok("promise.settle", {"id": "wf:2", "state": "resolved"})
        assert shape(await v.task("wf")) == ("suspended", 1, 0)
        reply = await v.ok("promise.register_callback", {"awaited": "wf:2", "awaiter": "wf"})
        assert reply["promise"]["state"] == "resolved"
        assert shape(await v.task("wf")) == ("pending", 1, 1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)


@pytest.mark.parametrize("held", [False, True], ids=["pending", "acquired"])
async def test_register_callback_on_a_settled_awaited_counts_a_resume(live, v, held):
    await pending(v, "wf")
    if held:
        await acquire(v, "wf", 0)
    await child(v, "wf:1", "wf")
    await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
    before = await v.task("wf")
    await v.ok("promise.register_callback", {"awaited": "wf:1", "awaiter": "wf"})
    after = await v.task("wf")
    assert after == {**before, "resumes": before["resumes"] + 1}


async def test_register_callback_on_pending_promises_wakes_on_settlement(live, v):
    """A callback registered outside suspend (promise.register_callback) on a suspended task."""
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf")
        await child(v, "wf:1", "wf")
        await child(v, "wf:2", "wf")
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
        await v.ok("promise.register_callback", {"awaited": "wf:2", "awaiter": "wf"})
        assert shape(await v.task("wf")) == ("suspended", 1, 0)
        await v.ok("promise.settle", {"id": "wf:2", "state": "resolved"})
        assert shape(await v.task("wf")) == ("pending", 1, 1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)


async def test_a_fulfilled_awaiter_loses_its_callbacks(live, v):
    await task_create(v, "wf")
    await child(v, "wf:1", "wf")
    await child(v, "wf:2", "wf")
    assert (await suspend(v, "wf", 1, "wf:1", "wf:2"))[0] == 200
    await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
    await acquire(v, "wf", 1)
    await v.ok("task.fulfill", {"id": "wf", "version": 2, "action": settle_action("wf")})
    await v.ok("promise.settle", {"id": "wf:2", "state": "resolved"})
    assert shape(await v.task("wf")) == ("fulfilled", 2, 0)
    live.clock.advance(RETRY)
    assert await deliver(live) == 0


# ---- halt / continue ---------------------------------------------------------------------------


async def test_halt_and_continue_a_pending_task(live, v):
    async with stream(live, GROUP, PID) as worker:
        await pending(v, "wf")
        assert await v.ok("task.halt", {"id": "wf"}) == {}
        assert await v.task("wf") == {"id": "wf", "state": "halted", "version": 0, "resumes": 0}
        assert await deliver(live) == 0  # no message, no timer
        live.clock.advance(10 * RETRY)
        assert await deliver(live) == 0
        assert await v.ok("task.continue", {"id": "wf"}) == {}
        assert shape(await v.task("wf")) == ("pending", 0, 0)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 0)
        live.clock.advance(RETRY)
        assert await deliver(live) == 1  # the retry timer runs again
        await expect_execute(live, worker, "wf", 0)


async def test_halt_an_acquired_task_drops_its_lease(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf", ttl=1000)
        await v.ok("task.halt", {"id": "wf"})
        assert await v.task("wf") == {"id": "wf", "state": "halted", "version": 1, "resumes": 0}
        live.clock.advance(5000)
        assert await deliver(live) == 0
        code, _ = await v.status(
            "task.fulfill", {"id": "wf", "version": 1, "action": settle_action("wf")}
        )
        assert code == 409
        beat = {"pid": PID, "tasks": [{"id": "wf", "version": 1}]}
        assert await v.ok("task.heartbeat", beat) == {}
        assert shape(await v.task("wf")) == ("halted", 1, 0)
        await v.ok("task.continue", {"id": "wf"})
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)


async def test_halt_a_suspended_task_then_its_awaited_settles(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf")
        await child(v, "wf:1", "wf")
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
        await v.ok("task.halt", {"id": "wf"})
        await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
        assert (await v.task("wf"))["state"] == "halted"  # not woken while halted
        assert await deliver(live) == 0
        await v.ok("task.continue", {"id": "wf"})
        assert (await v.task("wf"))["state"] == "pending"
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)


async def test_halted_task_is_fulfilled_by_its_settlement(live, v):
    await pending(v, "wf")
    await v.ok("task.halt", {"id": "wf"})
    await v.ok("promise.settle", {"id": "wf", "state": "rejected_canceled"})
    assert shape(await v.task("wf")) == ("fulfilled", 0, 0)
    assert await v.status("task.continue", {"id": "wf"}) == (409, "Task is not halted")
    assert await v.status("task.halt", {"id": "wf"}) == (409, "Task is fulfilled")


# ---- fulfilment: task.fulfill, promise.settle, timeouts ------------------------------------------


async def test_fulfill(live, v):
    await task_create(v, "wf")
    value = {"headers": {"k": "v"}, "data": "eyJvayI6MX0="}
    action = settle_action("wf", "rejected", value=value)
    data = await v.ok("task.fulfill", {"id": "wf", "version": 1, "action": action})
    promise = data["promise"]
    assert (promise["state"], promise["value"], promise["settledAt"]) == (
        "rejected",
        value,
        START_MS,
    )
    assert await v.task("wf") == {"id": "wf", "state": "fulfilled", "version": 1, "resumes": 0}
    live.clock.advance(HOUR)
    assert await deliver(live) == 0


async def test_fulfill_of_an_already_settled_promise_is_409(live, v):
    """The promise settled meanwhile (by anyone): the cascade fulfilled the task, so 409."""
    await task_create(v, "wf")
    await v.ok("promise.settle", {"id": "wf", "state": "resolved"})
    code, _ = await v.status(
        "task.fulfill", {"id": "wf", "version": 1, "action": settle_action("wf")}
    )
    assert code == 409


@pytest.mark.parametrize("state", ["pending", "acquired", "suspended"])
async def test_promise_settle_fulfils_the_task(live, v, state):
    if state == "pending":
        await pending(v, "wf")
    else:
        await task_create(v, "wf")
    if state == "suspended":
        await child(v, "wf:1", "wf")
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
    await v.ok("promise.settle", {"id": "wf", "state": "resolved"})
    task = await v.task("wf")
    assert set(task) == {"id", "state", "version", "resumes"}  # pid/ttl cleared
    assert task["state"] == "fulfilled"
    live.clock.advance(HOUR)
    assert await deliver(live) == 0  # no lease expiry, no retry
    if state == "suspended":
        await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
        assert (await v.task("wf"))["state"] == "fulfilled"


@pytest.mark.parametrize("eager", [False, True], ids=["lazy", "eager"])
async def test_timeout_fulfils_the_task(live, v, eager):
    await task_create(v, "wf", ttl=HOUR, timeout_at=START_MS + 5000)
    live.clock.advance(5000)
    if eager:
        assert await live.time_out_promises() >= 1
        stored = await live.server.store.run(lambda tx: tx.get_task_2026("wf"))
        assert stored.state.value == "fulfilled"
    task = await v.task("wf")
    assert task == {"id": "wf", "state": "fulfilled", "version": 1, "resumes": 0}
    promise = await v.promise("wf")
    assert (promise["state"], promise["settledAt"]) == ("rejected_timedout", START_MS + 5000)
    # the worker's fulfil comes a moment too late
    code, _ = await v.status(
        "task.fulfill", {"id": "wf", "version": 1, "action": settle_action("wf")}
    )
    assert code == 409


async def test_acquire_of_a_timed_out_task_is_409(live, v):
    await pending(v, "wf", timeout_at=START_MS + 10)
    live.clock.advance(10)
    reply = await v.send("task.acquire", {"id": "wf", "version": 0, "pid": PID, "ttl": 10})
    assert (reply["head"]["status"], reply["data"]) == (409, "Task is not pending")
    assert shape(await v.task("wf")) == ("fulfilled", 0, 0)


# ---- fence --------------------------------------------------------------------------------------


async def test_fenced_create_and_settle_at_the_held_version(live, v):
    await task_create(v, "wf")
    local = create_action("wf:1", LATER, lineage("wf:1", "wf", "wf"))
    reply = await fence(v, "wf", 1, {**local, "head": {**local["head"], "corrId": "ignored"}})
    assert reply["head"]["status"] == 200
    inner = reply["data"]["action"]
    assert inner["kind"] == "promise.create"
    assert inner["head"] == {
        "corrId": reply["head"]["corrId"],
        "status": 200,
        "version": "2026-04-01",
    }
    assert inner["data"]["promise"]["state"] == "pending"
    assert reply["data"]["preload"] == [inner["data"]["promise"]]  # wf:1 is of wf's branch
    # replay: the stored promise, whatever the request says
    replay = create_action("wf:1", LATER + 1, {**lineage("wf:1", "wf", "wf"), "x": "y"})
    again = (await fence(v, "wf", 1, replay))["data"]["action"]
    assert again["data"]["promise"] == inner["data"]["promise"]
    settled = (await fence(v, "wf", 1, settle_action("wf:1", value={"data": "MQ=="})))["data"]
    assert settled["action"]["kind"] == "promise.settle"
    assert settled["action"]["head"]["status"] == 200
    assert settled["action"]["data"]["promise"]["state"] == "resolved"
    assert (await v.promise("wf:1"))["value"] == {"data": "MQ=="}
    assert shape(await v.task("wf")) == ("acquired", 1, 0)


async def test_fenced_settle_of_a_missing_promise_is_an_inner_404(live, v):
    await task_create(v, "wf")
    reply = await fence(v, "wf", 1, settle_action("wf:9"))
    assert reply["head"]["status"] == 200
    inner = reply["data"]["action"]
    assert inner["kind"] == "promise.settle"
    assert inner["head"]["status"] == 404
    assert isinstance(inner["data"], str)
    assert reply["data"]["preload"] == []


@pytest.mark.parametrize("version", [0, 2])
async def test_fence_only_at_the_held_version(live, v, version):
    await task_create(v, "wf")
    await child(v, "wf:2", "wf")
    for action in (create_action("wf:1", LATER), settle_action("wf:2")):
        reply = await fence(v, "wf", version, action)
        assert (reply["head"]["status"], reply["data"]) == (409, "Version mismatch")
    assert (await v.status("promise.get", {"id": "wf:1"}))[0] == 404
    assert (await v.promise("wf:2"))["state"] == "pending"


async def test_fence_after_the_lease_lapsed_is_refused(live, v):
    await task_create(v, "wf", ttl=100)
    live.clock.advance(100)
    await deliver(live)
    reply = await fence(v, "wf", 1, create_action("wf:1", LATER))
    assert (reply["head"]["status"], reply["data"]) == (409, "Version mismatch")
    # the next holder fences at its own version
    await acquire(v, "wf", 1, pid="other")
    assert (await fence(v, "wf", 2, create_action("wf:1", LATER)))["head"]["status"] == 200


async def test_a_fenced_child_with_a_target_gets_its_own_task(live, v):
    async with stream(live, "remote", "r") as remote:
        await task_create(v, "wf")
        tags = {**lineage("wf:1", "wf"), "resonate:target": any_at("remote")}
        inner = (await fence(v, "wf", 1, create_action("wf:1", LATER, tags)))["data"]["action"]
        assert inner["data"]["promise"]["state"] == "pending"
        assert await v.task("wf:1") == {
            "id": "wf:1",
            "state": "pending",
            "version": 0,
            "resumes": 0,
        }
        assert await deliver(live) == 1
        await expect_execute(live, remote, "wf:1", 0)
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
        await acquire(v, "wf:1", 0, pid="r")
        await v.ok("task.fulfill", {"id": "wf:1", "version": 1, "action": settle_action("wf:1")})
        assert shape(await v.task("wf")) == ("pending", 1, 1)


async def test_a_fenced_settle_runs_the_cascade(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "a")
        await task_create(v, "a.b")  # another task of the same origin
        await child(v, "a:1", "a")
        assert (await suspend(v, "a.b", 1, "a:1"))[0] == 200
        await fence(v, "a", 1, settle_action("a:1"))
        assert shape(await v.task("a.b")) == ("pending", 1, 1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "a.b", 1)


# ---- heartbeat -----------------------------------------------------------------------------


async def test_heartbeat_extends_only_the_held_lease(live, v):
    async with stream(live, GROUP, PID) as worker:
        for task_id in ("a", "b", "c", "d"):
            assert (await task_create(v, task_id, ttl=1000))["head"]["status"] == 200
        await pending(v, "e")
        assert await deliver(live) == 1
        await expect_execute(live, worker, "e", 0)
        live.clock.advance(800)
        beat = {
            "pid": PID,
            "tasks": [
                {"id": "a", "version": 1},  # held: extended to +1800
                {"id": "b", "version": 2},  # other version: skipped
                {"id": "e", "version": 0},  # pending: skipped
                {"id": "nope", "version": 1},  # missing: skipped
            ],
        }
        assert await v.ok("task.heartbeat", beat) == {}
        other = {"pid": "someone-else", "tasks": [{"id": "c", "version": 1}]}
        assert await v.ok("task.heartbeat", other) == {}  # other pid: skipped
        assert shape(await v.task("e")) == ("pending", 0, 0)
        live.clock.advance(200)  # +1000: b, c, d lapse
        assert await deliver(live) >= 3
        lapsed = {execute_of(await worker.next_event()) for _ in range(3)}
        assert lapsed == {("b", 1), ("c", 1), ("d", 1)}
        assert (await v.task("a"))["state"] == "acquired"
        live.clock.advance(799)
        assert await deliver(live) == 0
        live.clock.advance(1)  # +1800
        assert await deliver(live) >= 1
        await expect_execute(live, worker, "a", 1)


async def test_heartbeat_uses_the_stored_ttl_per_task(live, v):
    await task_create(v, "a", ttl=1000)
    await task_create(v, "b", ttl=5000)
    live.clock.advance(900)
    beat = {"pid": PID, "tasks": [{"id": "a", "version": 1}, {"id": "b", "version": 1}]}
    await v.ok("task.heartbeat", beat)
    live.clock.advance(1899)  # +2799: a's lease (900 + 1000) lapsed, b's (900 + 5000) holds
    await deliver(live)
    assert (await v.task("a"))["state"] == "pending"
    assert (await v.task("b"))["state"] == "acquired"


async def test_heartbeat_with_tasks_of_several_origins(live, v):
    for task_id in ("x", "y.1", "z:2"):
        await pending(v, task_id)
        await acquire(v, task_id, 0, ttl=1000)
    live.clock.advance(900)
    beat = {"pid": PID, "tasks": [{"id": t, "version": 1} for t in ("x", "y.1", "z:2")]}
    assert await v.ok("task.heartbeat", beat) == {}
    live.clock.advance(900)
    await deliver(live)
    for task_id in ("x", "y.1", "z:2"):
        assert (await v.task(task_id))["state"] == "acquired", task_id


# ---- preload -----------------------------------------------------------------------------------


async def make_tree(v: AsyncApi) -> None:
    """wf with local children wf:1, wf:3 (branch wf), a remote child wf:2 and its own local
    child wf:2:1 (branch wf:2), and an unrelated branch."""
    for local in ("wf:3", "wf:1"):
        await v.ok("promise.create", create_data(local, LATER, lineage(local, "wf", "wf")))
    await v.ok("promise.settle", {"id": "wf:1", "state": "resolved"})
    await v.ok("promise.create", create_data("wf:2", LATER, targeted("wf:2")))
    await v.ok("promise.create", create_data("wf:2:1", LATER, lineage("wf:2:1", "wf", "wf:2")))
    await v.ok(
        "promise.create", create_data("other:1", LATER, lineage("other:1", "other", "other"))
    )


async def test_preload_is_the_other_promises_of_the_branch(live, v):
    await make_tree(v)
    await pending(v, "wf")
    held = await acquire(v, "wf", 0)
    assert [p["id"] for p in held["preload"]] == ["wf:1", "wf:3"]
    assert held["preload"][0]["state"] == "resolved"
    fenced = await fence(v, "wf", 1, create_action("wf:4", LATER, lineage("wf:4", "wf", "wf")))
    assert [p["id"] for p in fenced["data"]["preload"]] == ["wf:1", "wf:3", "wf:4"]
    code, data = await suspend(v, "wf", 1, "wf:1")
    assert code == 300
    assert [p["id"] for p in data["preload"]] == ["wf:1", "wf:3", "wf:4"]


async def test_preload_on_task_create_of_a_pending_task(live, v):
    await make_tree(v)
    await pending(v, "wf")
    reply = await task_create(v, "wf")
    assert [p["id"] for p in reply["data"]["preload"]] == ["wf:1", "wf:3"]


async def test_preload_of_a_remote_child_is_its_own_branch(live, v):
    await make_tree(v)
    assert [p["id"] for p in (await acquire(v, "wf:2", 0))["preload"]] == ["wf:2:1"]
    data = create_data("wf:5", LATER, targeted("wf:5"))
    await v.ok("promise.create", data)
    assert (await acquire(v, "wf:5", 0))["preload"] == []


async def test_no_branch_tag_no_preload(live, v):
    await make_tree(v)
    await v.ok("promise.create", create_data("wf", LATER, {"resonate:target": TARGET}))
    assert (await acquire(v, "wf", 0))["preload"] == []


# ---- the lenient id rule (§4.4, P4) --------------------------------------------------------------


@pytest.mark.parametrize(
    "child_id", ["wf:1", "wf.1", "wf:1.2", "wf.1:2"], ids=["colon", "dot", "colon-dot", "dot-colon"]
)
async def test_children_after_colon_or_dot_are_accepted(live, v, child_id):
    await task_create(v, "wf")
    tags = {"resonate:origin": "wf", "resonate:parent": "wf", "resonate:branch": child_id}
    tags["resonate:target"] = TARGET
    inner = (await fence(v, "wf", 1, create_action(child_id, LATER, tags)))["data"]["action"]
    assert inner["head"]["status"] == 200
    assert (await suspend(v, "wf", 1, child_id))[0] == 200  # same origin: "wf"
    assert (await v.task(child_id))["state"] == "pending"


@pytest.mark.parametrize(
    ("awaiter", "awaited"),
    [
        ("wf", "wf:1"),
        ("wf", "wf.1"),
        ("wf.1", "wf:2"),  # the origin is cut at the first ':' or '.'
        ("my.app.wf", "my.app.wf:1"),  # a dotted 0.11.5 root and its child
        ("wf:1", "wf.2"),
    ],
)
async def test_same_origin_cut_at_the_first_colon_or_dot(live, v, awaiter, awaited):
    await pending(v, awaiter)
    await v.ok("promise.create", create_data(awaited, LATER))
    data = {"awaited": awaited, "awaiter": awaiter}
    assert (await v.ok("promise.register_callback", data))["promise"]["id"] == awaited


@pytest.mark.parametrize(
    ("awaiter", "awaited"),
    [("wf", "wfx:1"), ("wf", "other.1"), ("a.wf", "b.wf"), ("wf:1", "w:1")],
)
async def test_different_origins_are_400(live, v, awaiter, awaited):
    await task_create(v, awaiter)
    await v.ok("promise.create", create_data(awaited, LATER))
    data = {"awaited": awaited, "awaiter": awaiter}
    assert (await v.status("promise.register_callback", data))[0] == 400
    assert (await suspend(v, awaiter, 1, awaited))[0] == 400
    assert (await v.task(awaiter))["state"] == "acquired"


@pytest.mark.parametrize(
    ("promise_id", "tags", "expected"),
    [
        ("wf.1", {"resonate:origin": "wf"}, 200),
        ("wf:1", {"resonate:origin": "wf"}, 200),
        ("wf:1:2", {"resonate:branch": "wf:1", "resonate:parent": "wf:1"}, 200),
        ("wf:1.2", {"resonate:branch": "wf:1", "resonate:parent": "wf:1"}, 200),
        ("wf.1.2", {"resonate:origin": "wf", "resonate:parent": "wf.1"}, 200),
        ("wf1", {"resonate:origin": "wf"}, 400),
        ("wf-1", {"resonate:origin": "wf"}, 400),
        ("wf:1", {"resonate:origin": "wf:1"}, 400),
        ("wf:12", {"resonate:parent": "wf:1"}, 400),
        ("wf:2", {"resonate:branch": "wf:1"}, 400),
    ],
)
async def test_id_rules_through_task_create_and_fence(live, v, promise_id, tags, expected):
    action = create_action(promise_id, LATER, {**tags, "resonate:target": TARGET})
    created = await v.send("task.create", {"pid": PID, "ttl": 1000, "action": action})
    assert created["head"]["status"] == expected
    # the same rule inside a fence, on a copy of the ids ("wf" -> "fw")
    await pending(v, "fw")
    await acquire(v, "fw", 0)
    renamed = {k: val.replace("wf", "fw") for k, val in tags.items()}
    inner = create_action(promise_id.replace("wf", "fw"), LATER, renamed)
    fenced = await fence(v, "fw", 1, inner)
    assert fenced["head"]["status"] == expected
    if expected == 200:
        assert fenced["data"]["action"]["head"]["status"] == 200


# ---- lazy timeouts on the ids an operation names (§3, §7) ----------------------------------------


async def test_fenced_actions_on_an_overdue_child_see_it_timed_out(live, v):
    await task_create(v, "wf")
    await v.ok("promise.create", create_data("wf:1", START_MS + 10, lineage("wf:1", "wf", "wf")))
    await v.ok("promise.create", create_data("wf:2", START_MS + 10, {"resonate:timer": "true"}))
    live.clock.advance(10)
    settled = (await fence(v, "wf", 1, settle_action("wf:1")))["data"]
    inner = settled["action"]
    assert inner["head"]["status"] == 200
    promise = inner["data"]["promise"]
    assert (promise["state"], promise["settledAt"]) == ("rejected_timedout", START_MS + 10)
    replay = (await fence(v, "wf", 1, create_action("wf:2", LATER)))["data"]["action"]
    promise = replay["data"]["promise"]
    assert (promise["state"], promise["settledAt"]) == ("resolved", START_MS + 10)


async def test_register_callback_on_an_overdue_awaited_wakes_the_awaiter(live, v):
    async with stream(live, GROUP, PID) as worker:
        await task_create(v, "wf")
        await child(v, "wf:1", "wf")
        await v.ok("promise.create", create_data("wf:2", START_MS + 10))
        assert (await suspend(v, "wf", 1, "wf:1"))[0] == 200
        live.clock.advance(10)
        reply = await v.ok("promise.register_callback", {"awaited": "wf:2", "awaiter": "wf"})
        assert reply["promise"]["state"] == "rejected_timedout"
        assert shape(await v.task("wf")) == ("pending", 1, 1)
        assert await deliver(live) == 1
        await expect_execute(live, worker, "wf", 1)


# ---- races: the version is the fencing token --------------------------------------------------


async def test_concurrent_acquires_one_wins(live, v):
    await pending(v, "wf")
    replies = await asyncio.gather(
        *[
            v.send("task.acquire", {"id": "wf", "version": 0, "pid": f"p{i}", "ttl": 1000})
            for i in range(8)
        ]
    )
    statuses = sorted(reply["head"]["status"] for reply in replies)
    assert statuses == [200] + [409] * 7
    winner = next(r for r in replies if r["head"]["status"] == 200)["data"]["task"]
    task = await v.task("wf")
    assert (task["version"], task["pid"]) == (1, winner["pid"])


async def test_concurrent_task_creates_one_wins(live, v):
    action = create_action("wf", LATER, targeted("wf"))
    replies = await asyncio.gather(
        *[v.send("task.create", {"pid": f"p{i}", "ttl": 1000, "action": action}) for i in range(8)]
    )
    outcomes = sorted(
        (r["head"]["status"], r["data"] if r["head"]["status"] != 200 else "") for r in replies
    )
    assert outcomes == [(200, "")] + [(409, "Already exists")] * 7
    assert shape(await v.task("wf")) == ("acquired", 1, 0)
    assert await deliver(live) == 0


async def test_concurrent_fenced_creates_of_a_child_make_one_task(live, v):
    async with stream(live, "remote", "r") as remote:
        await task_create(v, "wf", ttl=HOUR)
        tags = {**lineage("wf:1", "wf"), "resonate:target": any_at("remote", "r")}
        replies = await asyncio.gather(
            *[fence(v, "wf", 1, create_action("wf:1", LATER, tags)) for _ in range(6)]
        )
        promises = [r["data"]["action"]["data"]["promise"] for r in replies]
        assert all(p == promises[0] for p in promises)
        assert await deliver(live) == 1
        await expect_execute(live, remote, "wf:1", 0)
        live.clock.advance(RETRY)
        assert await deliver(live) == 1  # one task: one execute per retry
        await expect_execute(live, remote, "wf:1", 0)


async def test_preload_and_task_search_are_in_byte_order_of_the_id(live, v):
    for suffix in ("b", "B", "a", "_", "A"):
        local = f"wf:{suffix}"
        await v.ok("promise.create", create_data(local, LATER, lineage(local, "wf", "wf")))
    await pending(v, "wf")
    held = await acquire(v, "wf", 0)
    assert [p["id"] for p in held["preload"]] == ["wf:A", "wf:B", "wf:_", "wf:a", "wf:b"]
    for task_id in ("zb", "zB", "za"):
        await pending(v, task_id)
    found = (await v.ok("task.search", {"state": "pending"}))["tasks"]
    assert [t["id"] for t in found] == ["zB", "za", "zb"]


async def test_task_search_cursor_only_when_more_rows_exist(live, v):
    for task_id in ("c", "a", "b"):
        await pending(v, task_id)
    await task_create(v, "d")
    first = await v.ok("task.search", {"state": "pending", "limit": 2})
    assert ([t["id"] for t in first["tasks"]], first["cursor"]) == (["a", "b"], "b")
    second = await v.ok("task.search", {"state": "pending", "limit": 2, "cursor": "b"})
    assert second == {"tasks": [await v.task("c")]}  # the last page: no cursor
    full = await v.ok("task.search", {"state": "pending", "limit": 3})
    assert "cursor" not in full  # a full page, but nothing after it
    everything = await v.ok("task.search", {})
    assert [t["id"] for t in everything["tasks"]] == ["a", "b", "c", "d"]
    assert "cursor" not in everything
    acquired = (await v.ok("task.search", {"state": "acquired"}))["tasks"]
    assert acquired == [await v.task("d")]
    assert (await v.ok("task.search", {"state": "halted"})) == {"tasks": []}


async def test_fenced_settle_preload_agrees_with_its_action(live, v):
    await task_create(v, "wf")
    local = create_action("wf:0", LATER, lineage("wf:0", "wf", "wf"))
    created = (await fence(v, "wf", 1, local))["data"]
    assert created["preload"] == [created["action"]["data"]["promise"]]  # after the create
    settled = (await fence(v, "wf", 1, settle_action("wf:0")))["data"]
    assert settled["action"]["data"]["promise"]["state"] == "resolved"
    assert settled["preload"] == [settled["action"]["data"]["promise"]]
