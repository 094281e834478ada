"""How 2026-04-01 messages reach workers (protocol-2026.md §5, §6, §7, P2, P3, P9): the SSE
stream `GET /poll/{group}/{id}` on the API port, address routing, listeners and their one
`unblock`, the settlement cascade across the two protocols (a REST settlement wakes a 2026
task, a 2026 settlement fires REST callbacks), and the timers (the eager sweep of
`resonate:timer` promises, `resonate:delay`).

Most tests run in process with a manual clock (`live`: loops run only when a test runs a
pass); one runs the real server process with a short real timeout for the sweep itself."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from tests.server.promise_setup import now_ms
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
    unblock_of,
    uni_at,
    until,
)
from tests.support.live import START_MS
from tests.support.sse import Worker

pytestmark = pytest.mark.asyncio

LATER = START_MS + HOUR
RETRY = 30_000


@pytest.fixture
def v(live: Any) -> AsyncApi:
    return AsyncApi(live.client)


def targeted(promise_id: str, target: str, root: str | None = None) -> dict[str, str]:
    return {**lineage(promise_id, root or promise_id), "resonate:target": target}


async def task_create(v: AsyncApi, task_id: str, target: str, **extra: Any) -> dict[str, Any]:
    action = create_action(task_id, extra.pop("timeout_at", LATER), targeted(task_id, target))
    return await v.ok("task.create", {"pid": "p", "ttl": HOUR, "action": action, **extra})


async def suspended_on(v: AsyncApi, task_id: str, target: str, *awaited: str) -> None:
    """``task_id`` created (acquired v1) and suspended on ``awaited`` (which must exist)."""
    await task_create(v, task_id, target)
    actions = [callback_action(a, task_id) for a in awaited]
    reply = await v.send("task.suspend", {"id": task_id, "version": 1, "actions": actions})
    assert (reply["head"]["status"], reply["data"]) == (200, {})


@asynccontextmanager
async def rest_stream(live: Any, group: str, pid: str) -> AsyncIterator[Worker]:
    """A REST worker on the poll listener (`aio.poll.addr`), once registered."""
    hub = live.server.poll
    async with Worker(f"{live.poll_url}/{group}/{pid}") as worker:
        await until(lambda: pid in hub.connections(group), what="REST worker registered")
        yield worker


# ---- §6.2: the stream -------------------------------------------------------------------------


async def test_stream_framing(live, v):
    url = f"{live.server.api_url}/poll/frame/p"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        await until(lambda: "p" in live.server.poll_2026.connections("frame"))
        await v.ok("promise.create", create_data("f", LATER, targeted("f", any_at("frame", "p"))))
        assert await deliver(live) == 1
        lines: list[bytes] = []
        while not lines or lines[-1] != b"\n":
            line = await response.content.readline()
            assert line, "the stream ended"
            if line.startswith(b":"):  # comments (keep-alives) are allowed
                continue
            lines.append(line)
    assert len(lines) == 2, lines  # one `data:` line and a blank line: no event:/id: fields
    assert lines[0].startswith(b"data: ") and lines[0].endswith(b"\n")
    payload = lines[0][len(b"data: ") : -1]
    message = json.loads(payload)
    assert payload == json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    assert execute_of(message) == ("f", 0)


async def test_rest_and_2026_streams_never_share_messages(live, v):
    """P9: the same group name on both generations; each gets only its own messages."""
    async with stream(live, "g", "w") as new, rest_stream(live, "g", "w") as old:
        # a 2026 execute to poll://any@g/w
        await v.ok("promise.create", create_data("n", LATER, targeted("n", any_at("g", "w"))))
        # a REST resume to poll://any@g/w
        await live.client.post("/promises", json={"id": "root", "timeout": LATER})
        await live.client.post("/promises", json={"id": "leaf", "timeout": LATER})
        body = {"rootPromiseId": "root", "recv": "poll://any@g/w", "timeout": LATER}
        assert (await live.client.post("/promises/callback/leaf", json=body)).status_code == 201
        await v.ok("promise.settle", {"id": "leaf", "state": "resolved"})  # a 2026 settle
        assert await deliver(live) == 1
        await live.enqueue_tasks()
        assert execute_of(await new.next_event()) == ("n", 0)
        resume = await old.next_event()
        assert resume["type"] == "resume", resume
        # nothing crossed over: the next message on each is its own again
        await v.ok("promise.create", create_data("n2", LATER, targeted("n2", any_at("g", "w"))))
        assert await deliver(live) == 1
        assert execute_of(await new.next_event()) == ("n2", 0)


# ---- §6.1: routing ------------------------------------------------------------------------------


async def test_any_with_an_id_prefers_that_connection(live, v):
    async with stream(live, "g", "a") as a, stream(live, "g", "b"):
        for index in range(8):
            data = create_data(f"t{index}", LATER, targeted(f"t{index}", any_at("g", "a")))
            await v.ok("promise.create", data)
        assert await deliver(live) == 8
        got = {execute_of(await a.next_event())[0] for _ in range(8)}
        assert got == {f"t{index}" for index in range(8)}


async def test_any_falls_back_to_the_group(live, v):
    async with stream(live, "g", "b") as b:
        await v.ok("promise.create", create_data("t", LATER, targeted("t", any_at("g", "gone"))))
        await v.ok("promise.create", create_data("u", LATER, targeted("u", any_at("g"))))
        await v.ok("promise.create", create_data("x", LATER, targeted("x", any_at("other"))))
        assert await deliver(live) == 3
        got = {execute_of(await b.next_event())[0] for _ in range(2)}
        assert got == {"t", "u"}
        # "x" went to group "other" (nobody): dropped, not here
        await v.ok("promise.create", create_data("y", LATER, targeted("y", any_at("g"))))
        assert await deliver(live) == 1
        assert execute_of(await b.next_event()) == ("y", 0)


async def test_uni_goes_to_that_connection_only(live, v):
    async with stream(live, "g", "a") as a, stream(live, "g", "b") as b:
        for promise_id in ("l1", "l2"):
            await v.ok("promise.create", create_data(promise_id, LATER))
        await v.ok("promise.register_listener", {"awaited": "l1", "address": uni_at("g", "a")})
        await v.ok("promise.register_listener", {"awaited": "l2", "address": uni_at("g", "gone")})
        for promise_id in ("l1", "l2"):
            await v.ok("promise.settle", {"id": promise_id, "state": "resolved"})
        assert await deliver(live) == 2
        assert unblock_of(await a.next_event())["id"] == "l1"
        # l2's unblock had no connection: dropped, not given to another member of the group
        await v.ok("promise.create", create_data("e", LATER, targeted("e", any_at("g", "b"))))
        assert await deliver(live) == 1
        assert execute_of(await b.next_event()) == ("e", 0)


async def test_two_connections_may_share_a_pair(live, v):
    hub = live.server.poll_2026
    async with stream(live, "g", "p") as first, Worker(f"{live.server.api_url}/poll/g/p"):
        # the second is registered once it is counted, or once it has replaced the first
        await until(
            lambda: hub.connection_count == 2 or first.response.content.is_eof(),
            what="the second connection registered",
        )
        assert not first.response.content.is_eof(), "the first stream was ended"
        assert hub.connection_count == 2
        await v.ok("promise.create", create_data("s", LATER))
        await v.ok("promise.register_listener", {"awaited": "s", "address": uni_at("g", "p")})
        await v.ok("promise.settle", {"id": "s", "state": "resolved"})
        assert await deliver(live) == 1
        # "the (first) connection registered" gets it
        assert unblock_of(await first.next_event())["id"] == "s"


# ---- listeners (§3.1, §4.3) ---------------------------------------------------------------------


async def test_listeners_produce_one_unblock_each(live, v):
    async with stream(live, "g", "a") as a, stream(live, "g", "b") as b:
        await v.ok("promise.create", create_data("p", LATER))
        for _ in range(3):  # the same row: (promise, address)
            reply = await v.ok(
                "promise.register_listener", {"awaited": "p", "address": uni_at("g", "a")}
            )
            assert reply["promise"]["state"] == "pending"
        await v.ok("promise.register_listener", {"awaited": "p", "address": uni_at("g", "b")})
        value = {"headers": {"h": "1"}, "data": "InYi"}
        settled = await v.ok("promise.settle", {"id": "p", "state": "resolved", "value": value})
        assert await deliver(live) == 2
        assert unblock_of(await a.next_event()) == settled["promise"]
        assert unblock_of(await b.next_event()) == settled["promise"]
        # the rows are gone: settling again (a no-op) and passes send nothing more
        await v.ok("promise.settle", {"id": "p", "state": "rejected"})
        assert await deliver(live) == 0
        # the next message on `a` is a fresh one, not a second unblock of p
        await v.ok("promise.create", create_data("q", LATER))
        await v.ok("promise.register_listener", {"awaited": "q", "address": uni_at("g", "a")})
        await v.ok("promise.settle", {"id": "q", "state": "rejected_canceled"})
        assert await deliver(live) == 1
        assert unblock_of(await a.next_event())["id"] == "q"


async def test_listener_on_a_settled_promise_stores_nothing(live, v):
    async with stream(live, "g", "a"):
        await v.ok("promise.create", create_data("p", LATER))
        await v.ok("promise.settle", {"id": "p", "state": "resolved"})
        reply = await v.ok(
            "promise.register_listener", {"awaited": "p", "address": uni_at("g", "a")}
        )
        assert reply["promise"]["state"] == "resolved"
        assert await deliver(live) == 0
        # a timed-out promise (lazily, on this very call) is settled too
        await v.ok("promise.create", create_data("t", START_MS + 10))
        live.clock.advance(10)
        reply = await v.ok(
            "promise.register_listener", {"awaited": "t", "address": uni_at("g", "a")}
        )
        assert reply["promise"]["state"] == "rejected_timedout"
        assert await deliver(live) == 0


@pytest.mark.parametrize("how", ["task.fulfill", "fence", "rest-patch", "eager-timeout"])
async def test_every_settlement_path_fires_listeners(live, v, how):
    async with stream(live, "g", "l") as listener:
        await task_create(v, "wf", any_at("nobody"), timeout_at=START_MS + 1000)
        await v.ok("promise.create", create_data("wf:1", START_MS + 1000))
        watched = "wf:1" if how == "fence" else "wf"
        await v.ok("promise.register_listener", {"awaited": watched, "address": uni_at("g", "l")})
        if how == "task.fulfill":
            action = settle_action("wf")
            await v.ok("task.fulfill", {"id": "wf", "version": 1, "action": action})
            expected = "resolved"
        elif how == "fence":
            reply = await v.ok(
                "task.fence", {"id": "wf", "version": 1, "action": settle_action("wf:1")}
            )
            assert reply["action"]["head"]["status"] == 200
            expected = "resolved"
        elif how == "rest-patch":
            response = await live.client.patch("/promises/wf", json={"state": "REJECTED"})
            assert response.status_code == 201
            expected = "rejected"
        else:
            live.clock.advance(1000)
            assert await live.time_out_promises() >= 1
            expected = "rejected_timedout"
        assert await deliver(live) == 1
        promise = unblock_of(await listener.next_event())
        assert (promise["id"], promise["state"]) == (watched, expected)


# ---- §5, P3: one settlement cascade for both protocols ------------------------------------------


@pytest.mark.parametrize("state", ["RESOLVED", "REJECTED", "REJECTED_CANCELED"])
async def test_a_rest_patch_wakes_a_suspended_2026_task(live, v, state):
    async with stream(live, "g", "w") as worker:
        await v.ok("promise.create", create_data("wf:1", LATER))
        await suspended_on(v, "wf", any_at("g", "w"), "wf:1")
        response = await live.client.patch(
            "/promises/wf:1", json={"state": state, "value": {"data": "eyJhIjoxfQ=="}}
        )
        assert response.status_code == 201, response.text
        task = await v.task("wf")
        assert (task["state"], task["version"], task["resumes"]) == ("pending", 1, 1)
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("wf", 1)
        held = await v.ok("task.acquire", {"id": "wf", "version": 1, "pid": "w", "ttl": 1000})
        assert held["task"]["version"] == 2


async def test_a_rest_created_promise_can_be_awaited_by_a_2026_task(live, v):
    async with stream(live, "g", "w") as worker:
        response = await live.client.post("/promises", json={"id": "wf:r", "timeout": LATER})
        assert response.status_code == 201
        await suspended_on(v, "wf", any_at("g", "w"), "wf:r")
        await live.client.patch("/promises/wf:r", json={"state": "RESOLVED"})
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("wf", 1)


async def test_a_rest_patch_of_a_2026_task_promise_fulfils_the_task(live, v):
    await task_create(v, "wf", any_at("g", "w"))
    response = await live.client.patch("/promises/wf", json={"state": "RESOLVED"})
    assert response.status_code == 201
    assert (await v.task("wf"))["state"] == "fulfilled"
    reply = await v.send("task.fulfill", {"id": "wf", "version": 1, "action": settle_action("wf")})
    assert reply["head"]["status"] == 409


async def test_a_2026_settle_fires_rest_callbacks_and_subscriptions(live, v):
    async with rest_stream(live, "rg", "rw") as old, stream(live, "g", "w") as new:
        await live.client.post("/promises", json={"id": "root", "timeout": LATER})
        await v.ok("promise.create", create_data("leaf", LATER))  # created by either side
        callback = {"rootPromiseId": "root", "recv": "poll://any@rg/rw", "timeout": LATER}
        response = await live.client.post("/promises/callback/leaf", json=callback)
        assert response.status_code == 201, response.text
        subscription = {"id": "s1", "recv": "poll://any@rg/rw", "timeout": LATER}
        response = await live.client.post("/promises/subscribe/leaf", json=subscription)
        assert response.status_code == 201, response.text
        await v.ok("promise.register_listener", {"awaited": "leaf", "address": uni_at("g", "w")})
        await v.ok("promise.settle", {"id": "leaf", "state": "resolved"})
        await live.enqueue_tasks()
        rest = [await old.next_event() for _ in range(2)]
        assert sorted(m["type"] for m in rest) == ["notify", "resume"], rest
        assert await deliver(live) == 1
        assert unblock_of(await new.next_event())["id"] == "leaf"


async def test_a_2026_task_fulfilment_fires_rest_callbacks(live, v):
    async with rest_stream(live, "rg", "rw") as old:
        await live.client.post("/promises", json={"id": "root", "timeout": LATER})
        await task_create(v, "wf", any_at("nobody"))
        callback = {"rootPromiseId": "root", "recv": "poll://any@rg/rw", "timeout": LATER}
        assert (await live.client.post("/promises/callback/wf", json=callback)).status_code == 201
        await v.ok("task.fulfill", {"id": "wf", "version": 1, "action": settle_action("wf")})
        await live.enqueue_tasks()
        message = await old.next_event()
        assert message["type"] == "resume", message


# ---- §7: timers --------------------------------------------------------------------------------


async def test_the_sweep_resolves_a_timer_and_wakes_its_awaiter(live, v):
    """`ctx.sleep`: a `resonate:timer` promise with a target, swept at its timeoutAt."""
    async with stream(live, "g", "w") as worker, stream(live, "default", "d") as sleeper:
        await task_create(v, "wf", any_at("g", "w"))
        tags = {**lineage("wf:1", "wf"), "resonate:timer": "true"}
        tags["resonate:target"] = any_at("default")
        inner = await v.ok(
            "task.fence",
            {"id": "wf", "version": 1, "action": create_action("wf:1", START_MS + 1000, tags)},
        )
        assert inner["action"]["data"]["promise"]["state"] == "pending"
        reply = await v.send(
            "task.suspend", {"id": "wf", "version": 1, "actions": [callback_action("wf:1", "wf")]}
        )
        assert reply["head"]["status"] == 200
        # the timer's own task gets its execute; its worker acquires it and lets the lease lapse
        assert await deliver(live) == 1
        assert execute_of(await sleeper.next_event()) == ("wf:1", 0)
        await v.ok("task.acquire", {"id": "wf:1", "version": 0, "pid": "d", "ttl": 300})
        live.clock.advance(999)
        assert await live.time_out_promises() == 0
        await deliver(live)  # the timer's lease lapsed: re-sent to the sleeper
        assert execute_of(await sleeper.next_event()) == ("wf:1", 1)
        live.clock.advance(1)
        assert await live.time_out_promises() >= 1
        timer = await live.server.store.run(lambda tx: tx.get_promise("wf:1"))
        assert (timer.state.name, timer.completed_on) == ("RESOLVED", START_MS + 1000)
        assert (await v.task("wf:1"))["state"] == "fulfilled"
        assert (await v.task("wf"))["state"] == "pending"
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("wf", 1)
        held = await v.ok("task.acquire", {"id": "wf", "version": 1, "pid": "w", "ttl": 1000})
        assert held["task"]["resumes"] == 0
        replay = await v.ok(
            "task.fence",
            {"id": "wf", "version": 2, "action": create_action("wf:1", START_MS + 1000, tags)},
        )
        promise = replay["action"]["data"]["promise"]
        assert (promise["state"], promise["settledAt"]) == ("resolved", START_MS + 1000)


async def test_the_sweep_in_a_real_server(server, uid):
    """The real timeout loop (every 1 s) resolves a targeted timer nobody touches, and the
    cascade sends the awaiting workflow its execute: nothing reads the timer meanwhile."""
    api = AsyncApi(httpx.AsyncClient(base_url=server.url, timeout=10))
    group = f"g{uid}"
    root = uid
    timer = f"{uid}:1"
    metrics = httpx.AsyncClient(base_url=server.metrics_url, timeout=10)
    gauge = re.compile(rf'poll_2026_connections\{{group="{group}"\}} 1(\.0)?$', re.M)
    try:
        async with Worker(f"{server.url}/poll/{group}/w") as worker:
            deadline = time.monotonic() + 10
            while not gauge.search((await metrics.get("/metrics")).text):
                assert time.monotonic() < deadline, "the stream never registered"
                await asyncio.sleep(0.02)
            action = create_action(root, now_ms() + HOUR, targeted(root, any_at(group, "w")))
            await api.ok("task.create", {"pid": "w", "ttl": HOUR, "action": action})
            tags = {**lineage(timer, root), "resonate:timer": "true"}
            tags["resonate:target"] = any_at(f"nobody{uid}")
            create = create_action(timer, now_ms() + 300, tags)
            await api.ok("task.fence", {"id": root, "version": 1, "action": create})
            actions = [callback_action(timer, root)]
            reply = await api.send("task.suspend", {"id": root, "version": 1, "actions": actions})
            assert reply["head"]["status"] == 200
            # the sweep runs at least once a second: the execute comes within a few
            assert execute_of(await worker.next_event(within=10)) == (root, 1)
            promise = await api.promise(timer)
            assert promise["state"] == "resolved"
            assert promise["settledAt"] == promise["timeoutAt"]
    finally:
        await api.client.aclose()
        await metrics.aclose()


async def test_delay_defers_the_first_execute(live, v):
    async with stream(live, "g", "w") as worker:
        tags = {"resonate:target": any_at("g", "w"), "resonate:delay": str(START_MS + 5000)}
        await v.ok("promise.create", create_data("d", LATER, tags))
        assert (await v.task("d"))["state"] == "pending"
        assert await deliver(live) == 0
        live.clock.advance(4999)
        assert await deliver(live) == 0
        live.clock.advance(1)
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("d", 0)
        live.clock.advance(RETRY)  # then the ordinary retry timer
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("d", 0)


async def test_a_delay_in_the_past_sends_at_once(live, v):
    async with stream(live, "g", "w") as worker:
        tags = {"resonate:target": any_at("g", "w"), "resonate:delay": str(START_MS - 1)}
        await v.ok("promise.create", create_data("d", LATER, tags))
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("d", 0)


async def test_a_delayed_task_can_be_acquired_before_its_delay(live, v):
    """The delay defers the execute, not the task: a worker that knows the id may acquire."""
    tags = {"resonate:target": any_at("g", "w"), "resonate:delay": str(START_MS + 5000)}
    await v.ok("promise.create", create_data("d", LATER, tags))
    held = await v.ok("task.acquire", {"id": "d", "version": 0, "pid": "w", "ttl": HOUR})
    assert held["task"]["state"] == "acquired"
    live.clock.advance(5000)
    assert await deliver(live) == 0


async def test_a_timeout_of_an_awaited_wakes_by_the_sweep(live, v):
    async with stream(live, "g", "w") as worker:
        await v.ok("promise.create", create_data("wf:1", START_MS + 50))
        await suspended_on(v, "wf", any_at("g", "w"), "wf:1")
        live.clock.advance(50)
        assert await live.time_out_promises() >= 1
        assert await deliver(live) == 1
        assert execute_of(await worker.next_event()) == ("wf", 1)
        promise = await v.promise("wf:1")
        assert (promise["state"], promise["settledAt"]) == ("rejected_timedout", START_MS + 50)


async def test_suspend_on_an_overdue_awaited_is_300(live, v):
    """The lazy timeout runs first on the ids task.suspend names."""
    await task_create(v, "wf", any_at("g", "w"))
    await v.ok("promise.create", create_data("wf:1", START_MS + 50))
    live.clock.advance(50)
    reply = await v.send(
        "task.suspend", {"id": "wf", "version": 1, "actions": [callback_action("wf:1", "wf")]}
    )
    assert reply["head"]["status"] == 300
    assert (await v.promise("wf:1"))["state"] == "rejected_timedout"


# ---- §6.1: HTTP push, P8: serverUrl, ids with '/' -----------------------------------------------


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str, str, Any]]]]:
    """A local HTTP endpoint recording every POST: (path, content type, JSON body)."""
    got: list[tuple[str, str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((request.path, request.headers.get("Content-Type", ""), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", got
    finally:
        await runner.cleanup()


async def test_http_push_of_executes_and_unblocks(live, v):
    async with receiver() as (url, got):
        await v.ok("promise.create", create_data("h", LATER, {"resonate:target": f"{url}/work"}))
        await v.ok("promise.register_listener", {"awaited": "h", "address": f"{url}/listen"})
        assert await deliver(live) == 1
        await until(lambda: len(got) == 1, what="the execute pushed")
        path, content_type, body = got[0]
        assert (path, execute_of(body)) == ("/work", ("h", 0))
        assert content_type.startswith("application/json")
        settled = await v.ok("promise.settle", {"id": "h", "state": "resolved"})
        assert await deliver(live) == 1
        await until(lambda: len(got) == 2, what="the unblock pushed")
        assert got[1][0] == "/listen"
        assert unblock_of(got[1][2]) == settled["promise"]


async def test_execute_carries_the_configured_system_url(tmp_path, store_kind):
    from tests.support import pg
    from tests.support.live import LiveServer

    dsn = await pg.create_schema() if store_kind == "postgres" else None
    args = [*(pg.store_args(dsn) if dsn else ()), "--system-url", "http://resonate.example:9000"]
    server = LiveServer(tmp_path / "url.db", *args)
    await server.start()
    try:
        v = AsyncApi(server.client)
        async with stream(server, "g", "w") as worker:
            await v.ok("promise.create", create_data("u", LATER, {"resonate:target": any_at("g")}))
            assert await deliver(server) == 1
            event = await worker.next_event()
            assert event["head"] == {"serverUrl": "http://resonate.example:9000"}
    finally:
        await server.stop()
        if dsn:
            await pg.drop_schema(dsn)


async def test_a_pid_may_contain_a_slash(live, v):
    async with stream(live, "g", "a/b") as worker:
        await v.ok("promise.create", create_data("s", LATER, targeted("s", any_at("g", "a/b"))))
        await v.ok("promise.create", create_data("l", LATER))
        await v.ok("promise.register_listener", {"awaited": "l", "address": uni_at("g", "a/b")})
        await v.ok("promise.settle", {"id": "l", "state": "resolved"})
        assert await deliver(live) >= 1  # one execute and one unblock, in one pass
        events = [await worker.next_event() for _ in range(2)]
        assert sorted(e["kind"] for e in events) == ["execute", "unblock"]


async def test_a_fenced_child_with_a_delay_is_deferred_too(live, v):
    async with stream(live, "remote", "r") as remote:
        await task_create(v, "wf", any_at("g", "w"))
        tags = {**lineage("wf:1", "wf"), "resonate:target": any_at("remote", "r")}
        tags["resonate:delay"] = str(START_MS + 2000)
        reply = await v.ok(
            "task.fence", {"id": "wf", "version": 1, "action": create_action("wf:1", LATER, tags)}
        )
        assert reply["action"]["head"]["status"] == 200
        assert await deliver(live) == 0
        live.clock.advance(2000)
        assert await deliver(live) == 1
        assert execute_of(await remote.next_event()) == ("wf:1", 0)


# ---- P3: tasks are not shared between the protocols ---------------------------------------------


async def test_each_protocol_keeps_its_own_tasks(live, v):
    response = await live.client.post(
        "/promises",
        json={"id": "rest", "timeout": LATER, "tags": {"resonate:invoke": "poll://any@g"}},
    )
    assert response.status_code == 201, response.text
    assert (await live.client.get("/tasks/__invoke:rest")).status_code == 200
    assert (await v.status("task.get", {"id": "rest"}))[0] == 404
    await v.ok("promise.create", create_data("new", LATER, {"resonate:target": any_at("g")}))
    assert (await live.client.get("/tasks/__invoke:new")).status_code == 404
    assert (await v.task("new"))["state"] == "pending"
    # a 2026 create on an existing (REST) id returns it and makes no task
    again = await v.ok(
        "promise.create", create_data("rest", LATER, {"resonate:target": any_at("g")})
    )
    assert again["promise"]["tags"] == {"resonate:invoke": "poll://any@g"}
    assert (await v.status("task.get", {"id": "rest"}))[0] == 404
    # and it cannot await through 2026 callbacks: the awaiter has no 2026 task
    await v.ok("promise.create", create_data("rest:1", LATER))
    reply = await v.status("promise.register_callback", {"awaited": "rest:1", "awaiter": "rest"})
    assert reply[0] == 422


# ---- §10.2: the observed SDK sequence, message by message ---------------------------------------


async def test_the_observed_sdk_sequence(live, v):
    """A workflow with a local step, a remote call and a 1 s sleep, as SDK 0.11.5 drives it."""
    main, remote = "sdkts-main", "sdkts-remote"
    async with stream(live, main, "M") as m, stream(live, remote, "W") as w:

        async def fenced(version: int, action: dict[str, Any]) -> dict[str, Any]:
            data = {"id": "wf", "version": version, "action": action}
            inner = (await v.ok("task.fence", data))["action"]
            assert inner["head"]["status"] == 200, inner
            return dict(inner["data"]["promise"])

        def tags(promise_id: str, **extra: str) -> dict[str, str]:
            return {**lineage(promise_id, "wf"), **extra}

        wf_tags = {**lineage("wf", "wf"), "resonate:scope": "global"}
        wf_tags["resonate:target"] = any_at(main, "M")
        action = create_action("wf", LATER, wf_tags)
        created = await v.ok("task.create", {"pid": "M", "ttl": 60_000, "action": action})
        assert (created["task"]["state"], created["task"]["version"]) == ("acquired", 1)
        local = create_action(
            "wf:0", LATER, {**lineage("wf:0", "wf", "wf"), "resonate:scope": "local"}
        )
        assert (await fenced(1, local))["state"] == "pending"
        assert (await fenced(1, settle_action("wf:0", value={"data": "MQ=="})))[
            "state"
        ] == "resolved"
        listener = {"awaited": "wf", "address": uni_at(main, "M")}
        assert (await v.ok("promise.register_listener", listener))["promise"]["state"] == "pending"
        rpc = create_action("wf:1", LATER, tags("wf:1", **{"resonate:target": any_at(remote)}))
        assert (await fenced(1, rpc))["state"] == "pending"
        reply = await v.send(
            "task.suspend", {"id": "wf", "version": 1, "actions": [callback_action("wf:1", "wf")]}
        )
        assert reply["head"]["status"] == 200
        assert await deliver(live) == 1
        assert execute_of(await w.next_event()) == ("wf:1", 0)
        await v.ok("task.acquire", {"id": "wf:1", "version": 0, "pid": "W", "ttl": 60_000})
        fulfil = {
            "id": "wf:1",
            "version": 1,
            "action": settle_action("wf:1", value={"data": "Mg=="}),
        }
        await v.ok("task.fulfill", fulfil)
        assert await deliver(live) == 1
        assert execute_of(await m.next_event()) == ("wf", 1)
        held = await v.ok("task.acquire", {"id": "wf", "version": 1, "pid": "M", "ttl": 60_000})
        assert held["task"]["version"] == 2
        assert [p["id"] for p in held["preload"]] == ["wf:0"]
        assert (await fenced(2, rpc))["state"] == "resolved"  # replay: the stored promise
        sleep_tags = tags(
            "wf:2", **{"resonate:timer": "true", "resonate:target": any_at("default")}
        )
        sleep = create_action("wf:2", START_MS + 1000, sleep_tags)
        assert (await fenced(2, sleep))["state"] == "pending"
        reply = await v.send(
            "task.suspend", {"id": "wf", "version": 2, "actions": [callback_action("wf:2", "wf")]}
        )
        assert reply["head"]["status"] == 200
        assert await deliver(live) == 1  # wf:2's execute: no connection in "default", dropped
        live.clock.advance(1000)
        assert await live.time_out_promises() >= 1
        assert await deliver(live) == 1
        assert execute_of(await m.next_event()) == ("wf", 2)
        held = await v.ok("task.acquire", {"id": "wf", "version": 2, "pid": "M", "ttl": 60_000})
        assert held["task"]["version"] == 3
        assert (await fenced(3, rpc))["state"] == "resolved"
        assert (await fenced(3, sleep))["state"] == "resolved"
        done = {"id": "wf", "version": 3, "action": settle_action("wf", value={"data": "Mw=="})}
        assert (await v.ok("task.fulfill", done))["promise"]["state"] == "resolved"
        assert await deliver(live) == 1
        unblocked = unblock_of(await m.next_event())
        assert (unblocked["id"], unblocked["value"]) == ("wf", {"data": "Mw=="})
        assert (await v.task("wf"))["state"] == "fulfilled"
