"""``POST /promises/purge`` (docs/server.md, "Purge"; docs/operations.md, "Purge") and the store
query it shares with the retention loop, on both stores, with a manual clock: one bounded batch
per call, a dry run that counts what the batches would delete, the filters, the keep rules,
validation and prefix-limited tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from resonate.core.promise import PromiseState
from resonate.store.base import FINAL_STATES, PurgeQuery
from tests.support.live import START_MS, live_server

DAY = 86_400_000
FAR = START_MS + 1000 * DAY


async def create(live, pid: str, tags: dict[str, str] | None = None, timeout: int = FAR) -> None:
    response = await live.client.post(
        "/promises", json={"id": pid, "timeout": timeout, "tags": tags or {}}
    )
    assert response.status_code == 201, response.text


async def complete(live, pid: str, state: str = "RESOLVED") -> None:
    response = await live.client.patch(f"/promises/{pid}", json={"state": state})
    assert response.status_code in (200, 201), response.text


async def completed(live, *pids: str, state: str = "RESOLVED", **tags: str) -> None:
    for pid in pids:
        await create(live, pid, tags=dict(tags))
        await complete(live, pid, state)


async def promise_ids(live) -> set[str]:
    rows = await live.server.store.run(lambda tx: tx.debug_rows("promises"))
    return {str(row[0]) for row in rows}


async def purge(live, **body: Any) -> dict[str, Any]:
    response = await live.client.post("/promises/purge", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def purged_metric(live, kind: str) -> float:
    value = live.server.metrics.registry.get_sample_value("retention_purged_total", {"kind": kind})
    return value or 0.0


# ---- the store query, on both stores ------------------------------------------------------------


async def test_the_dry_run_counts_exactly_what_the_batches_delete(live):
    """The conformance of ``count_purgeable`` and ``purge_promises``: the same conditions and
    keep rules, the sample in the order the batches take the promises."""
    for n in range(7):
        await completed(live, f"old{n}")
        live.clock.advance(1000)
    await create(live, "pending")
    await create(live, "root")  # pending: its completed step stays
    await completed(live, "step", **{"resonate:root": "root"})
    live.clock.advance(DAY)
    await completed(live, "young")
    query = PurgeQuery(dict.fromkeys(FINAL_STATES, live.clock.now_ms() - DAY))
    store = live.server.store

    count, sample = await store.read(lambda tx: tx.count_purgeable(query, 3))
    assert (count, sample) == (7, ["old0", "old1", "old2"])
    total = 0
    while True:
        batch = await store.run(lambda tx: tx.purge_promises(query, 3))
        assert batch.promises <= 3
        total += batch.promises
        if batch.promises < 3:
            break
    assert total == count
    assert await store.read(lambda tx: tx.count_purgeable(query, 3)) == (0, [])
    assert await promise_ids(live) == {"pending", "root", "step", "young"}


async def test_per_state_cutoffs_and_states_left_out(live):
    await completed(live, "res", state="RESOLVED")
    await completed(live, "rej", state="REJECTED")
    await completed(live, "can", state="REJECTED_CANCELED")
    await create(live, "late", timeout=START_MS + 1)
    live.clock.advance(10)
    assert await live.time_out_promises() == 1
    live.clock.advance(3 * DAY)
    now = live.clock.now_ms()
    query = PurgeQuery(
        {
            PromiseState.RESOLVED: now - DAY,  # old enough
            PromiseState.REJECTED: now - 5 * DAY,  # not yet
            PromiseState.REJECTED_TIMEDOUT: now - DAY,  # old enough
        }
    )  # REJECTED_CANCELED: not named, kept
    store = live.server.store
    assert await store.read(lambda tx: tx.count_purgeable(query, 10)) == (2, ["res", "late"])
    assert (await store.run(lambda tx: tx.purge_promises(query, 10))).promises == 2
    assert await promise_ids(live) == {"rej", "can"}


async def test_pending_is_never_a_purge_state():
    with pytest.raises(ValueError, match="pending"):
        PurgeQuery({PromiseState.PENDING: 0})


# ---- the route ----------------------------------------------------------------------------------


async def test_batches_share_one_cutoff_and_say_when_there_may_be_more(live):
    for n in range(5):
        await completed(live, f"a{n}", **{"resonate:invoke": "poll://any@g"})
    live.clock.advance(DAY)
    dry = await purge(live, olderThan=DAY, dryRun=True, sample=2)
    assert dry == {"before": START_MS, "dryRun": True, "count": 5, "sample": ["a0", "a1"]}
    assert await promise_ids(live) == {f"a{n}" for n in range(5)}  # a dry run deletes nothing

    first = await purge(live, olderThan=DAY, limit=2)
    assert first == {"before": START_MS, "promises": 2, "tasks": 2, "more": True}
    live.clock.advance(DAY)  # later calls send the first cutoff back, not olderThan again
    await completed(live, "newer")
    second = await purge(live, before=first["before"], limit=2)
    assert second == {"before": START_MS, "promises": 2, "tasks": 2, "more": True}
    third = await purge(live, before=first["before"], limit=2)
    assert third == {"before": START_MS, "promises": 1, "tasks": 1, "more": False}
    assert first["promises"] + second["promises"] + third["promises"] == dry["count"]
    assert await promise_ids(live) == {"newer"}
    assert purged_metric(live, "promises") == 5
    assert purged_metric(live, "tasks") == 5  # the invoke tasks, completed with their promise


async def test_the_default_limit_is_the_retention_batch_size(tmp_path: Path, store_kind: str):
    async with live_server(tmp_path, store_kind, "--system-retention-batch-size", "2") as live:
        await completed(live, "x", "y", "z")
        assert await purge(live, olderThan=0) == {
            "before": START_MS,
            "promises": 2,
            "tasks": 0,
            "more": True,
        }


async def test_id_pattern_tags_and_states_filter(live):
    await completed(live, "keep/a", env="prod")
    await completed(live, "tenant/a", env="prod", team="x")
    await completed(live, "tenant/b", env="test", team="x")
    await completed(live, "tenant/c", env="prod", team="x", state="REJECTED")
    await completed(live, "tenant/d", env="prod", state="REJECTED_CANCELED")
    live.clock.advance(1)

    by_id = await purge(live, olderThan=0, id="tenant/*", dryRun=True)
    assert by_id["count"] == 4
    by_tags = await purge(live, olderThan=0, tags={"env": "prod", "team": "x"}, dryRun=True)
    assert (by_tags["count"], by_tags["sample"]) == (2, ["tenant/a", "tenant/c"])
    by_state = await purge(live, olderThan=0, id="tenant/*", states=["REJECTED"], dryRun=True)
    assert by_state["sample"] == ["tenant/c"]
    both = await purge(live, olderThan=0, states=["rejected", "REJECTED_CANCELED"], dryRun=True)
    assert both["sample"] == ["tenant/c", "tenant/d"]

    done = await purge(live, olderThan=0, id="tenant/*", tags={"env": "prod"}, states=["RESOLVED"])
    assert (done["promises"], done["more"]) == (1, False)
    assert await promise_ids(live) == {"keep/a", "tenant/b", "tenant/c", "tenant/d"}
    assert (await purge(live, olderThan=0, id="tenant/b"))["promises"] == 1  # an exact id
    assert await promise_ids(live) == {"keep/a", "tenant/c", "tenant/d"}


async def test_nothing_live_or_young_is_purged(live):
    await create(live, "pending")
    await create(live, "root")
    await completed(live, "step", **{"resonate:root": "root"})
    await completed(live, "young")
    live.clock.advance(DAY)
    await completed(live, "younger")
    assert (await purge(live, olderThan=DAY, dryRun=True))["count"] == 1
    assert (await purge(live, before=START_MS - 1))["promises"] == 0  # completed after it
    answer = await purge(live, olderThan=DAY)
    assert answer["promises"] == 1
    assert await promise_ids(live) == {"pending", "root", "step", "younger"}


BAD_BODIES = [
    pytest.param({}, "olderThan", id="no-cutoff"),
    pytest.param({"olderThan": 1, "before": 1}, "olderThan", id="two-cutoffs"),
    pytest.param({"olderThan": -1}, "olderThan", id="negative-olderThan"),
    pytest.param({"olderThan": "1d"}, "olderThan", id="text-olderThan"),
    pytest.param({"before": 1.5}, "before", id="float-before"),
    pytest.param({"olderThan": 0, "states": ["PENDING"]}, "states", id="pending"),
    pytest.param({"olderThan": 0, "states": ["DONE"]}, "states", id="unknown-state"),
    pytest.param({"olderThan": 0, "states": "RESOLVED"}, "states", id="states-not-a-list"),
    pytest.param({"olderThan": 0, "states": []}, "states", id="no-state"),
    pytest.param({"olderThan": 0, "id": ""}, "id", id="empty-id"),
    pytest.param({"olderThan": 0, "tags": {"k": 1}}, "tags", id="tag-not-a-string"),
    pytest.param({"olderThan": 0, "limit": 0}, "limit", id="limit-0"),
    pytest.param({"olderThan": 0, "limit": 10_001}, "limit", id="limit-too-big"),
    pytest.param({"olderThan": 0, "dryRun": "yes"}, "dryRun", id="dryRun-not-bool"),
    pytest.param({"olderThan": 0, "dryRun": True, "sample": 101}, "sample", id="big-sample"),
    pytest.param({"olderThan": 0, "sample": -1}, "sample", id="negative-sample"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_a_bad_body_is_a_400_naming_the_field(live, body, field):
    await completed(live, "survivor")
    response = await live.client.post("/promises/purge", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 40000
    assert error["details"][0]["metadata"]["field"] == field
    assert await promise_ids(live) == {"survivor"}


async def test_a_body_that_is_not_an_object_is_a_400(live):
    response = await live.client.post("/promises/purge", json=[1])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 40000


# ---- authorisation ----------------------------------------------------------------------------

KEY = ec.generate_private_key(ec.SECP256R1())


def token(claims: dict[str, Any]) -> dict[str, str]:
    now = int(time.time())
    signed = jwt.encode({"iat": now, "exp": now + 3600, **claims}, KEY, algorithm="ES256")
    return {"Authorization": f"Bearer {signed}"}


async def test_a_prefix_limited_token_purges_only_within_its_prefix(
    tmp_path: Path, store_kind: str
):
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    async with live_server(tmp_path, store_kind, "--api-auth-public-key", str(key_file)) as live:
        admin = token({"role": "admin"})
        tenant = token({"prefix": "tenant/"})
        for pid in ("tenant/a", "other/a"):
            response = await live.client.post(
                "/promises", json={"id": pid, "timeout": FAR}, headers=admin
            )
            assert response.status_code == 201, response.text
            response = await live.client.patch(
                f"/promises/{pid}", json={"state": "RESOLVED"}, headers=admin
            )
            assert response.status_code == 201, response.text
        live.clock.advance(1)

        async def call(headers: dict[str, str], **body: Any) -> Any:
            return await live.client.post(
                "/promises/purge", json={"olderThan": 0, **body}, headers=headers
            )

        for refused in ({}, {"id": "*"}, {"id": "other/*"}, {"id": "tenant"}, {"id": "*/a"}):
            response = await call(tenant, **refused)
            assert response.status_code == 403, (refused, response.text)
            assert response.json()["error"]["code"] == 40300
        assert (await call({}, id="tenant/*")).status_code == 401
        response = await call(tenant, id="tenant/*", dryRun=True)
        assert response.json()["count"] == 1
        response = await call(tenant, id="tenant/*")
        assert response.status_code == 200, response.text
        assert response.json()["promises"] == 1
        assert await promise_ids(live) == {"other/a"}
        response = await call(admin)
        assert response.json()["promises"] == 1
        assert await promise_ids(live) == set()
