"""Reads do not queue behind writes: on SQLite, GETs and searches run on reader connections in
their own threads while the single writer goes on committing; a read that must write (the lazy
timeout of an overdue promise) goes through the writer, and a read issued after a write was
acknowledged sees it. Driven through HTTP against an in-process server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from resonate.store.sqlite.transaction import SqliteTransaction
from tests.support.live import START_MS, LiveServer

DEADLINE_S = 30.0


@pytest.fixture
async def sqlite_live(tmp_path: Path):
    server = LiveServer(tmp_path / "reads.db")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _block_reader_searches(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[threading.Event, threading.Event]:
    """Make every promise search on a reader thread wait until released (a search that takes
    as long as the test wants). Returns (entered, release)."""
    entered = threading.Event()
    release = threading.Event()
    original = SqliteTransaction.search_promises

    async def slow_search(self, query):  # type: ignore[no-untyped-def]
        if threading.current_thread().name.startswith("sqlite-reader"):
            entered.set()
            assert release.wait(DEADLINE_S), "the test never released the search"
        return await original(self, query)

    monkeypatch.setattr(SqliteTransaction, "search_promises", slow_search)
    return entered, release


async def _wait_for(event: threading.Event) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not event.is_set():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_slow_search_does_not_delay_concurrent_writes(sqlite_live, monkeypatch):
    client = sqlite_live.client
    entered, release = _block_reader_searches(monkeypatch)
    search = asyncio.create_task(client.get("/promises", params={"id": "*"}))
    try:
        await _wait_for(entered)
        # The search holds a reader thread; creates, completions and other reads go on.
        timeout = START_MS + 3_600_000
        created = await asyncio.gather(
            *(client.post("/promises", json={"id": f"w{i}", "timeout": timeout}) for i in range(20))
        )
        assert [r.status_code for r in created] == [201] * 20
        resolved = await client.patch("/promises/w0", json={"state": "RESOLVED"})
        assert resolved.status_code == 201
        got = await client.get("/promises/w1")
        assert got.status_code == 200 and got.json()["state"] == "PENDING"
        assert not search.done()
    finally:
        release.set()
    answer = await search
    assert answer.status_code == 200
    # The search answers from the snapshot it started on, before any of those writes: it is
    # ordered before them, as a search that had gone through the writer first would be.
    assert answer.json()["promises"] == []
    after = await client.get("/promises", params={"id": "*"})
    assert len(after.json()["promises"]) == 20


async def test_a_read_after_an_acknowledged_write_sees_it(sqlite_live):
    client = sqlite_live.client
    timeout = START_MS + 3_600_000
    for i in range(50):
        created = await client.post("/promises", json={"id": f"seen{i}", "timeout": timeout})
        assert created.status_code == 201
        got = await client.get(f"/promises/seen{i}")
        assert got.status_code == 200
        resolved = await client.patch(f"/promises/seen{i}", json={"state": "REJECTED"})
        assert resolved.status_code == 201
        got = await client.get(f"/promises/seen{i}")
        assert got.json()["state"] == "REJECTED"
        found = await client.get("/promises", params={"id": f"seen{i}", "state": "rejected"})
        assert [p["id"] for p in found.json()["promises"]] == [f"seen{i}"]


async def test_reading_an_overdue_promise_times_it_out_through_the_writer(sqlite_live):
    client = sqlite_live.client
    created = await client.post("/promises", json={"id": "late", "timeout": START_MS + 1000})
    assert created.status_code == 201
    sqlite_live.clock.advance(1000)
    got = await client.get("/promises/late")
    assert got.json()["state"] == "REJECTED_TIMEDOUT"
    # The lazy timeout was written: the stored row says so, for every later reader.
    stored = await sqlite_live.server.store.read(_stored_state("late"))
    assert stored == "REJECTED_TIMEDOUT"


async def test_a_search_touching_an_overdue_promise_times_it_out(sqlite_live):
    client = sqlite_live.client
    for name, timeout in (("s-late", START_MS + 1000), ("s-fine", START_MS + 3_600_000)):
        created = await client.post(
            "/promises", json={"id": name, "timeout": timeout, "tags": {"k": "v"}}
        )
        assert created.status_code == 201
    sqlite_live.clock.advance(1000)
    found = await client.get("/promises", params={"id": "s-*", "tags[k]": "v"})
    states = {p["id"]: p["state"] for p in found.json()["promises"]}
    assert states == {"s-late": "REJECTED_TIMEDOUT", "s-fine": "PENDING"}
    assert await sqlite_live.server.store.read(_stored_state("s-late")) == "REJECTED_TIMEDOUT"


def _stored_state(promise_id: str):  # type: ignore[no-untyped-def]
    async def op(tx):  # type: ignore[no-untyped-def]
        promise = await tx.get_promise(promise_id)
        return promise.state.name

    return op
