"""Crash durability: SIGKILL under concurrent writes loses no acknowledged write (D14)."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import pytest

FAR = 2**62
WRITERS = 16
KILL_AFTER_ACKS = 400


async def _writer(url: str, prefix: str, acked: dict[str, dict], stop: asyncio.Event) -> None:
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            pid = f"{prefix}-{n}"
            n += 1
            try:
                created = await client.post(
                    "/promises", json={"id": pid, "timeout": FAR, "tags": {"w": prefix}}
                )
                if created.status_code != 201:
                    continue
                acked[pid] = {"state": "PENDING", "value": {}}
                data = base64.b64encode(pid.encode()).decode()
                state = ("RESOLVED", "REJECTED")[n % 2]
                done = await client.patch(
                    f"/promises/{pid}", json={"state": state, "value": {"data": data}}
                )
                if done.status_code == 201:
                    acked[pid] = {"state": state, "value": {"data": data}}
            except httpx.HTTPError:
                return  # the server is gone; whatever was in flight was never acknowledged


@pytest.mark.slow
async def test_sigkill_under_load_loses_no_acknowledged_write(server_factory, tmp_path):
    server = server_factory(tmp_path).start()
    acked: dict[str, dict] = {}
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(_writer(server.url, f"w{i}", acked, stop)) for i in range(WRITERS)
    ]
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER_ACKS:
        assert time.monotonic() < deadline, "writers made no progress"
        await asyncio.sleep(0.01)
    await asyncio.to_thread(server.kill)  # mid-load: requests are in flight
    stop.set()
    await asyncio.gather(*writers)
    snapshot = dict(acked)

    restarted = server_factory(tmp_path, db_path=server.db_path).start()
    async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as client:
        missing, wrong = [], []
        for pid, expected in snapshot.items():
            response = await client.get(f"/promises/{pid}")
            if response.status_code != 200:
                missing.append(pid)
                continue
            body = response.json()
            if expected["state"] != "PENDING" and (
                body["state"] != expected["state"] or body["value"] != expected["value"]
            ):
                wrong.append((pid, body["state"], expected["state"]))
    assert len(snapshot) >= KILL_AFTER_ACKS
    assert missing == []
    assert wrong == []
