"""Two `resonate serve` processes on different ports against one PostgreSQL database (issue 5):
the concurrency tests hold across both servers, with no duplicate firing or delivery.

Clients and workers split between the servers: promise histories stay linearizable, racing
creates and completes have exactly one winner, every routed task is delivered exactly once per
counter (a server only routes to its own poll connections; one without a connection in the group
counts a failure and retries after ttr), every slot of an every-second schedule fired by both
servers' schedule loops makes exactly one promise, and a lock is never held twice at once."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.server.test_concurrency import FAR, _client_run, histories_by_id
from tests.server.test_locks import (
    CLIENTS,
    HOLDS_PER_CLIENT,
    Hold,
    assert_no_overlap,
    contend_for_lock,
)
from tests.support import pg
from tests.support.linearizability import is_linearizable
from tests.support.servers import ServerProcess
from tests.support.sse import Worker

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not pg.DSN, reason=pg.SKIP_REASON)]

# A short retry delay after a failed poll delivery, and loops that look for work every 50 ms (a)
# and 100 ms (b); a server is woken at once only by its own writes. b has no connection in the
# `solo` group of the delivery test: each time it takes one of that group's tasks it fails and
# sets the retry 250 ms later, then its own loop passes again 300 ms later, so a, passing every
# 50 ms, is sure to take the task first in between. With equal periods and a ttr that is a
# multiple of them, b's loop stays in phase with the retries it sets and can win the race for
# the same task round after round, for as long as the phases stay put.
SERVER_ARGS = {
    "a": ["--aio-poll-ttr", "250ms", "--system-signal-timeout", "50ms"],
    "b": ["--aio-poll-ttr", "250ms", "--system-signal-timeout", "100ms"],
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ...]]:
    """Two servers on one fresh database, for the whole module (tests keep apart by ids)."""
    dsn = pg.create_database_sync("resonate_two")
    started: list[ServerProcess] = []
    try:
        for name, args in SERVER_ARGS.items():
            workdir = tmp_path_factory.mktemp(f"server-{name}")
            started.append(ServerProcess(workdir, extra_args=[*pg.store_args(dsn), *args]).start())
        yield tuple(started)
    finally:
        for process in started:
            process.stop()
        pg.drop_database_sync(dsn)


@pytest.fixture
def uid() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds


def metrics(server: ServerProcess) -> str:
    return httpx.get(server.metrics_url + "/metrics", timeout=5).text


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# ---- promises -----------------------------------------------------------------------------------


async def test_clients_on_both_servers_are_linearizable(servers, uid):
    """Eight clients, four per server, on the same fifty ids: every promise's history fits
    one sequential order that respects real time (all times are taken in this process)."""
    ids = [f"{uid}-{i}" for i in range(50)]
    runs = await asyncio.gather(
        *(_client_run(servers[seed % 2].url, ids, seed, 100) for seed in range(8))
    )
    by_id = histories_by_id(runs)
    assert sum(len(ops) for ops in by_id.values()) == 800
    assert all(op.status < 500 for ops in by_id.values() for op in ops)
    # Some ids were created through one server and completed through the other.
    assert any(op.status == 201 for ops in by_id.values() for op in ops)
    bad = [pid for pid, ops in by_id.items() if not is_linearizable(ops)]
    assert bad == [], f"non-linearizable histories for {bad[:3]}"


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_creates_across_servers_exactly_one_201(servers, uid, round_):
    clients = [httpx.AsyncClient(base_url=server.url, timeout=30) for server in servers]
    try:
        responses = await asyncio.gather(
            *(clients[i % 2].post("/promises", json={"id": uid, "timeout": FAR}) for i in range(20))
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_completes_across_servers_exactly_one_201(servers, uid, round_):
    states = ("RESOLVED", "REJECTED", "REJECTED_CANCELED")
    codes = {"RESOLVED": 40301, "REJECTED": 40302, "REJECTED_CANCELED": 40303}
    clients = [httpx.AsyncClient(base_url=server.url, timeout=30) for server in servers]
    try:
        created = await clients[0].post("/promises", json={"id": uid, "timeout": FAR})
        assert created.status_code == 201
        responses = await asyncio.gather(
            *(
                clients[i % 2].patch(f"/promises/{uid}", json={"state": states[i % 3]})
                for i in range(20)
            )
        )
        final = (await clients[1].get(f"/promises/{uid}")).json()
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [403] * 19
    winner = next(r for r in responses if r.status_code == 201).json()
    assert final["state"] == winner["state"]
    losers = [r.json()["error"]["code"] for r in responses if r.status_code == 403]
    assert set(losers) == {codes[winner["state"]]}


# ---- task delivery ------------------------------------------------------------------------------


class Collector:
    """Workers on both servers' poll listeners: every message received, claimed at once
    through a random server, then its promise resolved (which completes the task)."""

    def __init__(self, servers: tuple[ServerProcess, ...]) -> None:
        self.received: list[tuple[str, int, str]] = []  # (task id, counter, worker)
        self.claims: list[tuple[str, int, int, str]] = []  # (task id, counter, status, body)
        self.resolves: list[int] = []
        self.clients = [httpx.AsyncClient(base_url=s.url, timeout=30) for s in servers]
        self.handling: set[asyncio.Task[None]] = set()

    async def listen(self, worker: Worker, name: str) -> None:
        while True:
            try:
                message = await worker.next_event(within=3600)
            except AssertionError:  # the stream ended (server shutting down)
                return
            assert message["type"] == "invoke", message
            task = message["task"]
            self.received.append((task["id"], task["counter"], name))
            handler = asyncio.create_task(self.handle(task, name))
            self.handling.add(handler)
            handler.add_done_callback(self.handling.discard)

    async def handle(self, task: dict[str, Any], name: str) -> None:
        client = random.choice(self.clients)
        body = {"id": task["id"], "counter": task["counter"], "processId": name, "ttl": 60_000}
        response = await client.post("/tasks/claim", json=body)
        self.claims.append((task["id"], task["counter"], response.status_code, response.text))
        if response.status_code == 201:
            resolved = await random.choice(self.clients).patch(
                f"/promises/{quote(task['rootPromiseId'], safe='')}", json={"state": "RESOLVED"}
            )
            self.resolves.append(resolved.status_code)

    async def close(self) -> None:
        await asyncio.gather(*list(self.handling), return_exceptions=True)
        for client in self.clients:
            await client.aclose()


async def test_each_task_is_delivered_once_through_either_server(servers, uid):
    """Group `shared` has two workers on each server; group `solo` has one worker, on server
    a only, so b's deliveries to it fail and are retried after ttr, until a sends them. Promises
    routed to both groups are created through both servers at once."""
    a, b = servers
    shared, solo = f"{uid}-shared", f"{uid}-solo"
    streams = [
        (f"{a.poll_url}/{shared}/a1", "a1"),
        (f"{a.poll_url}/{shared}/a2", "a2"),
        (f"{b.poll_url}/{shared}/b1", "b1"),
        (f"{b.poll_url}/{shared}/b2", "b2"),
        (f"{a.poll_url}/{solo}/a3", "a3"),
    ]
    failures_before = sample(metrics(b), 'task_deliveries_total{outcome="failure",plugin="poll"}')
    collector = Collector(servers)
    workers = [Worker(url) for url, _ in streams]
    listeners: list[asyncio.Task[None]] = []
    try:
        for worker, (_, name) in zip(workers, streams, strict=True):
            await worker.__aenter__()
            listeners.append(asyncio.create_task(collector.listen(worker, name)))

        expected: dict[str, str] = {}  # task id -> group

        async def create(client: httpx.AsyncClient, name: str, group: str) -> None:
            body = {"id": name, "timeout": FAR, "tags": {"resonate:invoke": f"poll://any@{group}"}}
            response = await client.post("/promises", json=body)
            assert response.status_code == 201, response.text

        # First make sure b takes (and fails) a `solo` delivery at least once: a create through
        # b wakes b's loop at once, but under load a's loop can still take the task first, so
        # try again with a new promise, each awaited until a3 has it.
        for attempt in range(20):
            name = f"{uid}-first-{attempt}"
            expected[f"__invoke:{name}"] = solo
            await create(collector.clients[1], name, solo)
            give_up = deadline_after(15)
            while f"__invoke:{name}" not in {task_id for task_id, _, _ in collector.received}:
                assert time.monotonic() < give_up, f"never delivered: {name}"
                await asyncio.sleep(0.05)
            b_failures = sample(
                metrics(b), 'task_deliveries_total{outcome="failure",plugin="poll"}'
            )
            if b_failures > failures_before:
                break

        for index in range(80):
            group = solo if index % 4 == 3 else shared
            expected[f"__invoke:{uid}-{index}"] = group
        await asyncio.gather(
            *(
                create(
                    collector.clients[index % 2],
                    f"{uid}-{index}",
                    expected[f"__invoke:{uid}-{index}"],
                )
                for index in range(80)
            )
        )

        give_up = deadline_after(15)
        while {task_id for task_id, _, _ in collector.received} != set(expected) or len(
            collector.resolves
        ) < len(expected):
            missing = set(expected) - {task_id for task_id, _, _ in collector.received}
            assert time.monotonic() < give_up, f"never delivered: {sorted(missing)[:5]}"
            await asyncio.sleep(0.05)
        await asyncio.gather(*list(collector.handling))
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for worker in workers:
            await worker.close()
        await collector.close()

    deliveries = [(task_id, counter) for task_id, counter, _ in collector.received]
    duplicates = [d for d, n in itertools.groupby(sorted(deliveries)) if len(list(n)) > 1]
    assert duplicates == [], f"delivered more than once: {duplicates[:5]}"
    assert len(deliveries) == len(expected)  # nothing re-issued: one counter per task
    refused = [(t, c, status, text) for t, c, status, text in collector.claims if status != 201]
    assert refused == [], f"claims of delivered counters refused: {refused[:3]}"
    assert collector.resolves == [201] * len(expected)
    for task_id, _, name in collector.received:  # each message went to a worker of its group
        assert (name == "a3") == (expected[task_id] == solo), (task_id, name)
    # b had no connection in `solo`: its attempts failed and were retried, by a in the end.
    failures = sample(metrics(b), 'task_deliveries_total{outcome="failure",plugin="poll"}')
    assert failures > failures_before
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as client:
        for task_id in expected:
            got = (await client.get(f"/tasks/{quote(task_id, safe='')}")).json()
            assert (got["state"], got["counter"]) == ("COMPLETED", 1), got


# ---- schedules ----------------------------------------------------------------------------------


SCHEDULES = 30


def slots(api: httpx.Client, schedule_id: str) -> list[int]:
    page = api.get("/promises", params={"id": f"{schedule_id}.*", "limit": 100}).json()
    assert page["cursor"] is None
    return sorted(int(p["id"].split(".")[1]) for p in page["promises"])


def test_both_schedule_loops_fire_each_slot_once(servers, uid):
    """Thirty every-second schedules, created through both servers; both schedule loops look for
    due slots every 100 ms. Every slot of every schedule makes exactly one promise: contiguous
    seconds, and no firing found its promise already made (`skipped`)."""
    ids = [f"{uid}-{i}" for i in range(SCHEDULES)]
    before = [metrics(server) for server in servers]
    apis = [httpx.Client(base_url=server.url, timeout=10) for server in servers]
    try:
        for index, schedule_id in enumerate(ids):
            body = {
                "id": schedule_id,
                "cron": "* * * * * *",
                "promiseId": "{{.id}}.{{.timestamp}}",
                "promiseTimeout": 3_600_000,
            }
            assert apis[index % 2].post("/schedules", json=body).status_code == 201
        give_up = deadline_after(10)
        while len(fired := slots(apis[1], ids[-1])) < 4:  # the last one created starts last
            assert time.monotonic() < give_up, f"only {fired} fired"
            time.sleep(0.05)
        for index, schedule_id in enumerate(ids):
            assert apis[index % 2].delete(f"/schedules/{schedule_id}").status_code == 204
        total = 0
        for index, schedule_id in enumerate(ids):
            fired = slots(apis[index % 2], schedule_id)
            # One promise per second from the first slot to the last: none lost, none twice.
            assert len(fired) >= 4, (schedule_id, fired)
            assert fired == list(range(fired[0], fired[-1] + 1000, 1000)), (schedule_id, fired)
            total += len(fired)
            last = apis[0].get(f"/promises/{schedule_id}.{fired[-1]}").json()
            assert last["tags"]["resonate:schedule"] == schedule_id
    finally:
        for api in apis:
            api.close()
    name = 'schedule_firings_total{outcome="created"}'
    created = []
    for server, old in zip(servers, before, strict=True):
        text = metrics(server)
        skipped = sample(text, 'schedule_firings_total{outcome="skipped"}')
        assert skipped == 0, f"{server.url} fired {skipped:.0f} slots a second time"
        assert 'schedule_firings_total{outcome="skipped"}' not in text
        created.append(sample(text, name) - sample(old, name))
    assert sum(created) == total, created  # each slot fired once, by whichever server


# ---- locks --------------------------------------------------------------------------------------


async def test_mutual_exclusion_across_servers(servers, uid):
    """As test_locks.test_mutual_exclusion_under_contention, with the clients split between
    the servers: a client holds the lock from its acquire's 201 until it sends its release, and
    no two holds overlap."""
    resource = f"{uid}-contended"
    holds: list[Hold] = []
    give_up = deadline_after(20)
    refused = await asyncio.gather(
        *(
            contend_for_lock(
                servers[i % 2].url, resource, f"{uid}-e{i}", f"{uid}-p{i}", holds, give_up
            )
            for i in range(CLIENTS)
        )
    )
    refusals = [sum(refused[0::2]), sum(refused[1::2])]
    assert len(holds) == CLIENTS * HOLDS_PER_CLIENT
    assert all(refusals), f"the race was real on both servers: {refusals}"
    assert_no_overlap(holds)
    for server in servers:
        assert httpx.get(f"{server.url}/locks/{resource}").status_code == 404


def test_the_servers_are_distinct_processes_on_one_database(servers, uid):
    """Sanity: different ports and pids, and a write through one is read through the other."""
    a, b = servers
    assert a.port != b.port and a.poll_port != b.poll_port
    assert a.process is not None and b.process is not None and a.process.pid != b.process.pid
    created = httpx.post(f"{a.url}/promises", json={"id": uid, "timeout": FAR})
    assert created.status_code == 201
    assert httpx.get(f"{b.url}/promises/{uid}").json()["state"] == "PENDING"
    assert Path(a.workdir) != Path(b.workdir)
