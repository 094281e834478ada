"""Concurrent clients on shared ids: every answer fits some sequential order (linearizable per
promise id, http-api.md §14.1), and the race vectors K14-K16 of transitions.md."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from tests.support.linearizability import Op, apply, is_linearizable

STATES = ("RESOLVED", "REJECTED", "REJECTED_CANCELED")
FAR = 2**62


def test_checker_rejects_a_contradiction():
    """The checker itself can fail: two creates both answered 201 are not linearizable."""
    a = Op("create", "k", False, None, 0.0, 1.0, 201, "PENDING")
    b = Op("create", "k", False, None, 0.5, 1.5, 201, "PENDING")
    assert not is_linearizable([a, b])
    c = Op("create", "k", False, None, 0.5, 1.5, 200, "PENDING")
    assert is_linearizable([a, c])
    # A read that returned before the create began cannot have seen the promise.
    read = Op("read", None, False, None, 0.0, 0.1, 200, "PENDING")
    late = Op("create", None, False, None, 0.2, 0.3, 201, "PENDING")
    assert not is_linearizable([read, late])


def test_model_matches_the_spec_table_examples():
    _, status, state = apply(
        ("RESOLVED", None, "k"), Op("complete", "k", False, "REJECTED", 0, 0, 0, None)
    )
    assert (status, state) == (200, "RESOLVED")  # K6
    _, status, code = apply(
        ("RESOLVED", None, "k"), Op("complete", "k", True, "REJECTED", 0, 0, 0, None)
    )
    assert (status, code) == (403, "40301")  # K9


async def _client_run(
    url: str, ids: list[str], seed: int, ops_per_client: int
) -> list[tuple[str, Op]]:
    rng = random.Random(seed)
    history: list[tuple[str, Op]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(ops_per_client):
            pid = rng.choice(ids)
            kind = rng.choices(("create", "complete", "read"), weights=(3, 4, 2))[0]
            key = rng.choice((None, "k1", "k2"))
            strict = rng.random() < 0.3
            state = rng.choice(STATES) if kind == "complete" else None
            headers = {"strict": str(strict).lower()}
            if key:
                headers["idempotency-key"] = key
            invoked = time.monotonic()
            if kind == "create":
                response = await client.post(
                    "/promises", json={"id": pid, "timeout": FAR}, headers=headers
                )
            elif kind == "complete":
                response = await client.patch(
                    f"/promises/{pid}", json={"state": state}, headers=headers
                )
            else:
                response = await client.get(f"/promises/{pid}")
            returned = time.monotonic()
            body = response.json()
            observed = str(body["error"]["code"]) if "error" in body else body["state"]
            history.append(
                (
                    pid,
                    Op(
                        kind,
                        key if kind != "read" else None,
                        strict,
                        state,
                        invoked,
                        returned,
                        response.status_code,
                        observed,
                    ),
                )
            )
    return history


def histories_by_id(runs: list[list[tuple[str, Op]]]) -> dict[str, list[Op]]:
    """The clients' runs regrouped as one history per promise id."""
    by_id: dict[str, list[Op]] = {}
    for run in runs:
        for pid, op in run:
            by_id.setdefault(pid, []).append(op)
    return by_id


@pytest.mark.slow
async def test_eight_clients_hammering_fifty_ids_are_linearizable(server, uid):
    ids = [f"{uid}-{i}" for i in range(50)]
    runs = await asyncio.gather(*(_client_run(server.url, ids, seed, 100) for seed in range(8)))
    by_id = histories_by_id(runs)
    assert sum(len(ops) for ops in by_id.values()) == 800
    assert all(op.status < 500 for ops in by_id.values() for op in ops)
    bad = [pid for pid, ops in by_id.items() if not is_linearizable(ops)]
    assert bad == [], f"non-linearizable histories for {bad[:3]}"


async def _race(
    url: str, pid: str, requests: list[tuple[str, dict[str, str]]]
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        created = await client.post("/promises", json={"id": pid, "timeout": FAR})
        assert created.status_code == 201
        return list(
            await asyncio.gather(
                *(
                    client.patch(f"/promises/{pid}", json={"state": state}, headers=headers)
                    for state, headers in requests
                )
            )
        )


@pytest.mark.parametrize("round_", range(10))
async def test_k14_resolve_and_reject_without_keys(server, uid, round_):
    first, second = await _race(server.url, uid, [("RESOLVED", {}), ("REJECTED", {})])
    statuses = sorted((first.status_code, second.status_code))
    assert statuses == [201, 403]
    winner = first if first.status_code == 201 else second
    loser = second if winner is first else first
    expected = {"RESOLVED": 40301, "REJECTED": 40302}[winner.json()["state"]]
    assert loser.json()["error"]["code"] == expected


@pytest.mark.parametrize("round_", range(10))
async def test_k15_resolve_and_reject_with_the_same_key(server, uid, round_):
    key = {"idempotency-key": "same"}
    first, second = await _race(server.url, uid, [("RESOLVED", key), ("REJECTED", key)])
    assert sorted((first.status_code, second.status_code)) == [200, 201]
    assert first.json()["state"] == second.json()["state"]


@pytest.mark.parametrize("round_", range(10))
async def test_k16_resolve_twice_same_key_strict(server, uid, round_):
    headers = {"idempotency-key": "same", "strict": "true"}
    first, second = await _race(server.url, uid, [("RESOLVED", headers), ("RESOLVED", headers)])
    assert sorted((first.status_code, second.status_code)) == [200, 201]


async def test_concurrent_creates_exactly_one_201(server, uid):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/promises", json={"id": uid, "timeout": FAR}) for _ in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19
