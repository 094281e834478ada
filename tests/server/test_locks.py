"""Locks (transitions.md §12 L1-L7; http-api.md §8, D5, D11, §13): acquire, release, heartbeat,
the expiry sweep, operator reads and metrics. Most tests run an in-process server with a manual
clock; mutual exclusion under contention and a crashed holder's expiry are checked against real
server processes over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pytest

from tests.support.live import START_MS
from tests.support.servers import ServerProcess

INT64_MAX = 9_223_372_036_854_775_807
TTL = 10_000


def lock(resource, execution="e1", process="p1", ttl=TTL, expires_at=None) -> dict:
    return {
        "resourceId": resource,
        "executionId": execution,
        "processId": process,
        "ttl": ttl,
        "expiresAt": START_MS + ttl if expires_at is None else expires_at,
    }


async def acquire(live, resource="r", execution="e1", process="p1", ttl=TTL):
    body = {"resourceId": resource, "executionId": execution, "processId": process, "ttl": ttl}
    return await live.client.post("/locks/acquire", json=body)


async def release(live, resource="r", execution="e1"):
    body = {"resourceId": resource, "executionId": execution}
    return await live.client.post("/locks/release", json=body)


async def heartbeat(live, process="p1"):
    return await live.client.post("/locks/heartbeat", json={"processId": process})


async def stored(live, resource="r") -> dict | None:
    response = await live.client.get(f"/locks/{quote(resource, safe='')}")
    if response.status_code == 404:
        assert response.json()["error"]["code"] == 40402
        return None
    assert response.status_code == 200
    return response.json()


def error_code(response: httpx.Response) -> int:
    body = response.json()
    assert set(body) == {"error"}, body  # §1.6: 403 and 404 carry only the error
    return int(body["error"]["code"])


# ---- acquire (§8.2; L1-L4) ----------------------------------------------------------------------


async def test_l1_acquire_a_free_resource(live):
    response = await acquire(live)
    assert response.status_code == 201
    assert response.json() == lock("r")
    assert await stored(live) == lock("r")


async def test_l2_the_holder_acquires_again_and_refreshes(live):
    await acquire(live)
    live.clock.advance(4_000)
    response = await acquire(live, process="p2", ttl=500)
    assert response.status_code == 201
    refreshed = lock("r", process="p2", ttl=500, expires_at=START_MS + 4_500)
    assert response.json() == refreshed
    assert await stored(live) == refreshed


async def test_l2_the_holder_may_renew_after_expiry_too(live):
    await acquire(live, ttl=100)
    live.clock.advance(5_000)
    response = await acquire(live, ttl=100)
    assert response.status_code == 201
    assert response.json()["expiresAt"] == START_MS + 5_100


async def test_l3_another_execution_is_refused_while_the_lock_is_live(live):
    await acquire(live)
    live.clock.advance(TTL - 1)
    response = await acquire(live, execution="e2", process="p2")
    assert response.status_code == 403
    assert error_code(response) == 40305
    assert await stored(live) == lock("r")  # unchanged


async def test_l4_an_expired_lock_is_taken_over_before_the_sweep(live):
    """D5: `expiresAt <= now` is expired, so at exactly `expiresAt` another execution wins."""
    await acquire(live)
    live.clock.advance(TTL)
    response = await acquire(live, execution="e2", process="p2", ttl=300)
    assert response.status_code == 201
    assert response.json() == lock("r", "e2", "p2", 300, START_MS + TTL + 300)
    # The old holder has lost it: it can neither release nor re-acquire it.
    assert error_code(await release(live, "r", "e1")) == 40402
    assert error_code(await acquire(live)) == 40305


async def test_ttl_absent_means_zero_and_the_lock_is_expired_at_once(live):
    body = {"resourceId": "r", "executionId": "e1", "processId": "p1"}
    response = await live.client.post("/locks/acquire", json=body)
    assert response.status_code == 201
    assert response.json() == lock("r", ttl=0)
    assert (await acquire(live, execution="e2")).status_code == 201


async def test_a_huge_ttl_is_clamped_to_int64_max(live):
    response = await acquire(live, ttl=INT64_MAX)
    assert response.json() == lock("r", ttl=INT64_MAX, expires_at=INT64_MAX)
    live.clock.advance(365 * 24 * 3_600_000)
    assert (await heartbeat(live)).json() == {"locksAffected": 1}
    assert (await stored(live))["expiresAt"] == INT64_MAX
    assert error_code(await acquire(live, execution="e2")) == 40305


async def test_locks_on_different_resources_are_independent(live):
    assert (await acquire(live, "a", "e1")).status_code == 201
    assert (await acquire(live, "b", "e2")).status_code == 201
    assert (await acquire(live, "b", "e1")).status_code == 403


# ---- release (§8.3; L5, L6) ---------------------------------------------------------------------


async def test_l5_release_by_the_holder(live):
    await acquire(live)
    response = await release(live)
    assert response.status_code == 204
    assert response.content == b""
    assert await stored(live) is None
    assert (await acquire(live, execution="e2")).status_code == 201


@pytest.mark.parametrize(
    ("resource", "execution"),
    [
        pytest.param("r", "e2", id="wrong-execution"),
        pytest.param("other", "e1", id="wrong-resource"),
        pytest.param("nothing", "e9", id="no-lock"),
    ],
)
async def test_l6_release_otherwise_is_404(live, resource, execution):
    await acquire(live)
    response = await release(live, resource, execution)
    assert response.status_code == 404
    assert error_code(response) == 40402
    assert await stored(live) == lock("r")  # still held


async def test_l6_a_second_release_is_404(live):
    await acquire(live)
    assert (await release(live)).status_code == 204
    assert error_code(await release(live)) == 40402


async def test_an_expired_lock_not_yet_swept_can_still_be_released(live):
    await acquire(live)
    live.clock.advance(TTL * 2)
    assert (await release(live)).status_code == 204


# ---- heartbeat (§8.4; L7) -----------------------------------------------------------------------


async def test_l7_heartbeat_extends_every_lock_of_the_process(live):
    await acquire(live, "a", "e1", "p1", ttl=1_000)
    await acquire(live, "b", "e2", "p1", ttl=5_000)
    await acquire(live, "c", "e3", "p2", ttl=1_000)
    live.clock.advance(3_000)  # `a` has expired but is not swept: it is still extended
    response = await heartbeat(live, "p1")
    assert response.status_code == 200
    assert response.json() == {"locksAffected": 2}
    assert (await stored(live, "a"))["expiresAt"] == START_MS + 3_000 + 1_000
    assert (await stored(live, "b"))["expiresAt"] == START_MS + 3_000 + 5_000
    assert (await stored(live, "c"))["expiresAt"] == START_MS + 1_000  # another process


async def test_l7_heartbeat_of_a_process_without_locks(live):
    assert (await heartbeat(live, "nobody")).json() == {"locksAffected": 0}


async def test_a_heartbeating_holder_keeps_its_lock_past_the_ttl(live):
    await acquire(live, ttl=1_000)
    for _ in range(5):
        live.clock.advance(800)
        assert (await heartbeat(live)).json() == {"locksAffected": 1}
        assert await live.time_out_locks() == 0
        assert error_code(await acquire(live, execution="e2")) == 40305
    assert (await stored(live))["expiresAt"] == START_MS + 5 * 800 + 1_000


# ---- expiry sweep (§8.4) and a crashed holder ----------------------------------------------------


async def test_the_sweep_deletes_locks_at_their_expiry(live):
    await acquire(live, "a", ttl=1_000)
    await acquire(live, "b", ttl=2_000)
    live.clock.advance(999)
    assert await live.time_out_locks() == 0
    live.clock.advance(1)
    assert await live.time_out_locks() == 1
    assert await stored(live, "a") is None
    assert await stored(live, "b") is not None
    live.clock.advance(1_000)
    assert await live.time_out_locks() == 1
    assert (await live.client.get("/locks")).json() == {"cursor": None, "locks": []}


async def test_the_sweep_takes_every_expired_lock_in_batches(live):
    for index in range(120):  # more than one batch of 100
        await acquire(live, f"r{index:03}", ttl=10)
    live.clock.advance(10)
    assert await live.time_out_locks() == 120
    assert (await live.client.get("/locks")).json()["locks"] == []


async def test_a_crashed_holder_frees_its_lock_after_its_ttl(live):
    """The holder acquires and never heartbeats again: until its ttl passes nobody else gets
    the lock; from then on another execution does, before and after the sweep."""
    await acquire(live, "job", "crashed", "dead-process", ttl=30_000)
    live.clock.advance(29_999)
    assert await live.time_out_locks() == 0
    assert error_code(await acquire(live, "job", "next", "p2")) == 40305
    live.clock.advance(1)
    assert await live.time_out_locks() == 1
    assert await stored(live, "job") is None
    assert (await acquire(live, "job", "next", "p2")).status_code == 201


# ---- operator reads (§8.5, D11) ------------------------------------------------------------------


async def test_read_lock_with_slashes_and_catch_all_names(live):
    for resource in ("a/b/c", "acquire", "release", "with space"):
        await acquire(live, resource)
        assert await stored(live, resource) == lock(resource)
    # Unencoded slashes reach the catch-all too (§1.2).
    assert (await live.client.get("/locks/a/b/c")).json() == lock("a/b/c")
    assert (await live.client.get("/locks/acquire")).json() == lock("acquire")


async def test_read_lock_past_its_expiry_is_still_returned(live):
    await acquire(live)
    live.clock.advance(TTL * 3)
    assert await stored(live) == lock("r")


async def test_read_unknown_lock_is_404(live):
    assert await stored(live, "ghost") is None
    assert error_code(await live.client.get("/locks/")) == 40402


async def test_search_locks_orders_by_resource_and_filters(live):
    for resource, execution, process in [
        ("b", "e1", "p1"),
        ("a/1", "e2", "p1"),
        ("c", "e3", "p2"),
        ("a/2", "e4", "p2"),
        ("A", "e5", "p3"),
    ]:
        await acquire(live, resource, execution, process)

    async def resources(**params) -> list[str]:
        page = (await live.client.get("/locks", params=params)).json()
        return [item["resourceId"] for item in page["locks"]]

    assert await resources() == ["A", "a/1", "a/2", "b", "c"]
    assert await resources(resourceId="*") == ["A", "a/1", "a/2", "b", "c"]
    assert await resources(resourceId="a/*") == ["a/1", "a/2"]  # case-sensitive (D6)
    assert await resources(resourceId="b") == ["b"]
    assert await resources(resourceId="a_1") == []  # `_` is literal
    assert await resources(resourceId="a/[12]") == []  # `[` is literal
    assert await resources(processId="p2") == ["a/2", "c"]
    assert await resources(executionId="e2") == ["a/1"]
    assert await resources(resourceId="a*", processId="p1") == ["a/1"]


async def test_search_locks_pages_with_a_cursor(live):
    for index in range(7):
        await acquire(live, f"r{index}", f"e{index}")
    seen: list[str] = []
    page = (await live.client.get("/locks", params={"limit": 3})).json()
    pages = 1
    while page["cursor"] is not None:
        assert len(page["locks"]) == 3
        seen += [item["resourceId"] for item in page["locks"]]
        # A cursor carries the whole query: other parameters are ignored.
        params = {"cursor": page["cursor"], "processId": "nobody"}
        page = (await live.client.get("/locks", params=params)).json()
        pages += 1
    seen += [item["resourceId"] for item in page["locks"]]
    assert seen == [f"r{index}" for index in range(7)]
    assert pages == 3


async def test_search_locks_page_exactly_full_then_empty(live):
    await acquire(live, "x")
    first = (await live.client.get("/locks", params={"limit": 1})).json()
    assert first["cursor"] is not None
    last = (await live.client.get("/locks", params={"cursor": first["cursor"]})).json()
    assert last == {"cursor": None, "locks": []}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": ""},
    ],
)
async def test_search_locks_rejects_bad_parameters(live, params):
    response = await live.client.get("/locks", params=params)
    assert response.status_code == 400
    assert error_code(response) == 40000


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({}, 200),
        ({"limit": 0}, 400),
        ({"limit": 101}, 400),
        ({"limit": "10"}, 400),
        ({"after": 5}, 400),
        ({"resourceId": ""}, 400),
        ({"processId": 3}, 400),
        ({"executionId": ["e"]}, 400),
    ],
)
async def test_a_tampered_cursor_is_400(live, change, status):
    from resonate.core.search import encode_cursor

    query = {"resourceId": "*", "processId": None, "executionId": None, "limit": 10, "after": "a"}
    cursor = encode_cursor("locks", {**query, **change})
    assert (await live.client.get("/locks", params={"cursor": cursor})).status_code == status


async def test_a_cursor_of_another_search_is_refused(live):
    for index in range(3):
        await live.client.post("/promises", json={"id": f"p{index}", "timeout": INT64_MAX})
    cursor = (await live.client.get("/promises", params={"id": "*", "limit": 1})).json()["cursor"]
    assert cursor is not None
    response = await live.client.get("/locks", params={"cursor": cursor})
    assert response.status_code == 400


# ---- validation (§8.2-§8.4, §1.3) ----------------------------------------------------------------

VALID = {"resourceId": "r", "executionId": "e", "processId": "p", "ttl": 1}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/locks/acquire", {**VALID, "resourceId": None}, "resourceId"),
        ("/locks/acquire", {**VALID, "resourceId": ""}, "resourceId"),
        ("/locks/acquire", {**VALID, "resourceId": "x" * 1025}, "resourceId"),
        ("/locks/acquire", {**VALID, "executionId": None}, "executionId"),
        ("/locks/acquire", {**VALID, "executionId": 7}, "executionId"),
        ("/locks/acquire", {**VALID, "processId": ""}, "processId"),
        ("/locks/acquire", {**VALID, "processId": "a\u0000b"}, "processId"),
        ("/locks/acquire", {**VALID, "ttl": -1}, "ttl"),
        ("/locks/acquire", {**VALID, "ttl": 1.5}, "ttl"),
        ("/locks/acquire", {**VALID, "ttl": True}, "ttl"),
        ("/locks/acquire", {**VALID, "ttl": "10"}, "ttl"),
        ("/locks/acquire", {**VALID, "ttl": 2**63}, "ttl"),
        ("/locks/release", {"executionId": "e"}, "resourceId"),
        ("/locks/release", {"resourceId": "r"}, "executionId"),
        ("/locks/release", {"resourceId": "r", "executionId": ""}, "executionId"),
        ("/locks/heartbeat", {}, "processId"),
        ("/locks/heartbeat", {"processId": ["p"]}, "processId"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(live, path, body, field):
    response = await live.client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 40000
    fields = [d for d in error["details"] if d["@type"] == "FieldValidationError"]
    assert fields and field in fields[0]["message"], error
    assert (await live.client.get("/locks")).json()["locks"] == []  # nothing written


@pytest.mark.parametrize("path", ["/locks/acquire", "/locks/release", "/locks/heartbeat"])
@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'"x"'])
async def test_bodies_that_are_not_json_objects_are_400(live, path, content):
    response = await live.client.post(path, content=content)
    assert response.status_code == 400
    assert error_code(response) == 40000


async def test_a_path_id_over_1024_bytes_is_400(live):
    response = await live.client.get("/locks/" + "x" * 1025)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/locks/heartbeat", None),  # reads the lock on resource `heartbeat`
        ("PUT", "/locks/acquire", {"GET", "POST"}),
        ("POST", "/locks", {"GET"}),
        ("DELETE", "/locks/r", {"GET"}),
    ],
)
async def test_methods_on_lock_routes(live, method, path, allowed):
    response = await live.client.request(method, path)
    if allowed is None:
        assert error_code(response) == 40402
        return
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# ---- metrics (§13) -----------------------------------------------------------------------------


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_lock_metrics(live):
    await acquire(live, "a", "e1")  # acquired
    await acquire(live, "a", "e1")  # refreshed
    await acquire(live, "a", "e2")  # refused
    await acquire(live, "b", "e1", ttl=100)  # acquired
    live.clock.advance(100)
    await acquire(live, "b", "e2")  # taken over: `b` of e1 expired
    await acquire(live, "c", "e3", ttl=100)  # acquired
    await release(live, "a", "e1")  # released
    await release(live, "a", "e1")  # 404: nothing counted
    live.clock.advance(100)
    await live.time_out_locks()  # `c` expired
    text = live.server.metrics.render().decode()
    for name, value in [
        ('locks_total{state="acquired"}', 4),  # a, b, b again (takeover), c
        ('locks_total{state="released"}', 1),
        ('locks_total{state="expired"}', 2),  # b (taken over), c (swept)
        ('lock_acquires_total{outcome="acquired"}', 3),
        ('lock_acquires_total{outcome="refreshed"}', 1),
        ('lock_acquires_total{outcome="taken_over"}', 1),
        ('lock_acquires_total{outcome="refused"}', 1),
        ("locks_held", 1),  # b, held by e2
        ('api_requests_total{protocol="http",status="20100",type="AcquireLock"}', 5),
        ('api_requests_total{protocol="http",status="40305",type="AcquireLock"}', 1),
        ('api_requests_total{protocol="http",status="20400",type="ReleaseLock"}', 1),
        ('api_requests_total{protocol="http",status="40402",type="ReleaseLock"}', 1),
        ('background_runs_total{loop="timeout_locks",status="ok"}', 1),
    ]:
        assert sample(text, name) == value, name
    await heartbeat(live, "p1")
    await live.client.get("/locks/b")
    await live.client.get("/locks")
    text = live.server.metrics.render().decode()
    for operation, status in [
        ("HeartbeatLocks", 20000),
        ("ReadLock", 20000),
        ("SearchLocks", 20000),
    ]:
        name = f'api_requests_total{{protocol="http",status="{status}",type="{operation}"}}'
        assert sample(text, name) == 1, name


async def test_the_sweep_recounts_the_held_gauge(live):
    """Events move the gauge between passes; each pass sets it from the table, so it is right
    even for locks this process never saw being taken (another server, or before a restart)."""
    await acquire(live, "a")
    await acquire(live, "b")
    live.server.metrics.locks_held.set(17)
    await live.time_out_locks()
    assert sample(live.server.metrics.render().decode(), "locks_held") == 2


# ---- real server processes ---------------------------------------------------------------------

CLIENTS = 16
HOLDS_PER_CLIENT = 3


Hold = tuple[int, int, str]  # (acquire acknowledged, release sent, execution), perf_counter ns


async def contend_for_lock(
    url: str, resource: str, execution: str, process: str, holds: list[Hold], give_up: float
) -> int:
    """One client racing for ``resource`` through HTTP until it has held the lock
    HOLDS_PER_CLIENT times (recorded in ``holds``); how many acquires were refused.

    A hold lasts from the acquire's 201 until the release is sent, across round trips so that
    other clients run meanwhile: a read that must show this execution as the holder, and
    sometimes re-acquires (still ours)."""
    acquire_body = {
        "resourceId": resource,
        "executionId": execution,
        "processId": process,
        "ttl": 600_000,
    }
    release_body = {"resourceId": resource, "executionId": execution}
    held = refusals = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while held < HOLDS_PER_CLIENT:
            assert time.monotonic() < give_up, f"{execution} starved"
            response = await client.post("/locks/acquire", json=acquire_body)
            acknowledged = time.perf_counter_ns()
            if response.status_code == 403:
                assert response.json()["error"]["code"] == 40305
                refusals += 1
                await asyncio.sleep(random.uniform(0, 0.002))
                continue
            assert response.status_code == 201, response.text
            current = await client.get(f"/locks/{resource}")
            assert current.json()["executionId"] == execution, current.text
            for _ in range(held % 3):
                renewed = await client.post("/locks/acquire", json=acquire_body)
                assert renewed.status_code == 201, renewed.text
            released_at = time.perf_counter_ns()
            released = await client.post("/locks/release", json=release_body)
            assert released.status_code == 204, released.text
            holds.append((acknowledged, released_at, execution))
            held += 1
    return refusals


def assert_no_overlap(holds: list[Hold]) -> None:
    """Every hold ends before the next one starts."""
    for (_, released_at, holder), (acquired_at, _, successor) in itertools.pairwise(sorted(holds)):
        assert released_at < acquired_at, f"{successor} acquired while {holder} held the lock"


async def test_mutual_exclusion_under_contention(server, uid):
    """Many clients race on one resource through HTTP, each with its own execution id and a
    ttl far longer than the test, until each has held the lock a few times. A client holds the
    lock from the moment its acquire answered 201 until it sends its release; in the history
    of every client's holds no two such intervals may overlap."""
    resource = f"{uid}-contended"
    holds: list[Hold] = []
    give_up = time.monotonic() + 30
    refusals = await asyncio.gather(
        *(
            contend_for_lock(server.url, resource, f"{uid}-e{i}", f"{uid}-p{i}", holds, give_up)
            for i in range(CLIENTS)
        )
    )
    assert len(holds) == CLIENTS * HOLDS_PER_CLIENT
    assert sum(refusals) > 0  # the race was real
    assert_no_overlap(holds)
    assert httpx.get(f"{server.url}/locks/{resource}").status_code == 404


# A holder process: acquires a lock, then heartbeats its process every 50 ms until killed.
HOLDER_TTL = 300
HOLDER = f"""
import sys, time, httpx
url, resource = sys.argv[1], sys.argv[2]
lock = {{"resourceId": resource, "executionId": "holder", "processId": "holder-p",
         "ttl": {HOLDER_TTL}}}
assert httpx.post(url + "/locks/acquire", json=lock).status_code == 201
print("acquired", flush=True)
while True:
    time.sleep(0.05)
    httpx.post(url + "/locks/heartbeat", json={{"processId": "holder-p"}})
"""


def metric(server: ServerProcess, name: str) -> float:
    return sample(httpx.get(server.metrics_url + "/metrics", timeout=5).text, name)


def test_a_killed_holder_process_frees_its_lock_after_its_ttl(server_factory, tmp_path):
    """A real holder process keeps its lock past the ttl by heartbeating; once it is
    SIGKILLed, the server's own sweep frees the lock at its expiry (never before) and another
    execution takes it."""
    server = server_factory(tmp_path, extra_args=["--system-signal-timeout", "50ms"]).start()
    url = server.url + "/locks/job"
    contender = {"resourceId": "job", "executionId": "next", "processId": "p2", "ttl": 60_000}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, server.url, "job"], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"acquired"
        first_expiry = httpx.get(url).json()["expiresAt"]
        give_up = time.monotonic() + 10
        while True:  # alive: the lock outlives its first expiry, and nobody else gets it
            response = httpx.get(url)
            assert response.status_code == 200, "the lock lapsed while its holder heartbeated"
            if response.json()["expiresAt"] > first_expiry + HOLDER_TTL:
                break
            assert httpx.post(server.url + "/locks/acquire", json=contender).status_code == 403
            assert time.monotonic() < give_up, "the heartbeats do not extend the lock"
            time.sleep(0.02)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    give_up = time.monotonic() + 10
    last_expiry = 0
    while (response := httpx.get(url)).status_code == 200:
        last_expiry = response.json()["expiresAt"]
        assert time.monotonic() < give_up, "the sweep never freed the lock"
        time.sleep(0.02)
    assert time.time_ns() // 1_000_000 >= last_expiry  # freed at its expiry, not before
    assert metric(server, 'locks_total{state="expired"}') == 1
    assert httpx.post(server.url + "/locks/acquire", json=contender).status_code == 201
    assert metric(server, 'lock_acquires_total{outcome="acquired"}') == 2
