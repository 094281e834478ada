"""Callbacks and subscriptions (transitions.md §10) and completion side effects (§9)."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.server.promise_setup import complete, now_ms, setup
from tests.support.servers import wait_until

HOUR = 3_600_000


def callback(api, leaf, root, recv="poll://any@g", timeout=None, headers=None):
    body = {"rootPromiseId": root, "recv": recv, "timeout": timeout or now_ms() + HOUR}
    return api.post(f"/promises/callback/{leaf}", json=body, headers=headers or {})


def subscribe(api, promise_id, sub_id, recv="poll://any@g", key="id"):
    body = {key: sub_id, "recv": recv, "timeout": now_ms() + HOUR}
    return api.post(f"/promises/subscribe/{promise_id}", json=body)


def stored_tasks(server, prefix: str) -> dict[str, dict]:
    with sqlite3.connect(server.db_path) as conn:
        rows = conn.execute(
            "SELECT id, state, counter, attempt, expires_at, root_promise_id, recv, mesg, "
            "timeout FROM tasks WHERE root_promise_id LIKE ? || '%'",
            (prefix,),
        ).fetchall()
    return {
        row[0]: {
            "state": row[1],
            "counter": row[2],
            "attempt": row[3],
            "expiresAt": row[4],
            "root": row[5],
            "recv": json.loads(row[6]),
            "mesg": json.loads(row[7]),
            "timeout": row[8],
        }
        for row in rows
    }


def stored_callbacks(server, promise_id: str) -> list[str]:
    with sqlite3.connect(server.db_path) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT id FROM callbacks WHERE promise_id = ?", (promise_id,))
        ]


def test_b1_leaf_missing(api, uid):
    response = callback(api, f"{uid}-leaf", f"{uid}-root")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 40400


def test_b2_b3_new_then_repeat(api, uid):
    leaf, root = f"{uid}-leaf", f"{uid}-root"
    setup(api, leaf, "P")
    timeout = now_ms() + HOUR
    first = callback(api, leaf, root, timeout=timeout)
    assert first.status_code == 201
    body = first.json()
    assert body["callback"] == {
        "id": f"__resume:{root}:{leaf}",
        "promiseId": leaf,
        "rootPromiseId": root,
        "timeout": timeout,
        "createdOn": body["callback"]["createdOn"],
    }
    assert body["promise"]["id"] == leaf and body["promise"]["state"] == "PENDING"
    again = callback(api, leaf, root, recv="other", timeout=timeout + 5)
    assert again.status_code == 200
    assert again.json()["callback"] == body["callback"]  # the stored one, never null


@pytest.mark.parametrize("before", ["R", "J", "C", "T", "Rt"])
@pytest.mark.sqlite_only  # reads the SQLite file
def test_b4_completed_leaf_registers_nothing(api, uid, server, before):
    leaf = f"{uid}-leaf"
    setup(api, leaf, before)
    response = callback(api, leaf, f"{uid}-root")
    assert response.status_code == 200
    assert response.json()["callback"] is None
    assert stored_callbacks(server, leaf) == []


@pytest.mark.sqlite_only  # reads the SQLite file
def test_b5_overdue_leaf_registers_without_lazy_timeout_and_fires_on_timeout(api, uid, server):
    leaf, root = f"{uid}-leaf", f"{uid}-root"
    setup(api, root, "P")  # a pending root, and a group nobody listens to: the task stays INIT
    setup(api, leaf, "P!")
    response = callback(api, leaf, root, recv=f"poll://any@{uid}")
    assert response.status_code == 201
    assert response.json()["promise"]["state"] == "PENDING"
    assert api.get(f"/promises/{leaf}").json()["state"] == "REJECTED_TIMEDOUT"
    resume = f"__resume:{root}:{leaf}"
    assert resume in stored_tasks(server, root)  # fired by the read's timeout
    # Nobody listens to the group: the task is INIT, but for the moments the enqueue loop holds
    # it ENQUEUED while it tries a delivery that fails (then back to INIT until ttr passes).
    wait_until(
        lambda: stored_tasks(server, root)[resume]["state"] == 1,
        time.monotonic() + 10,
        what="the resume task back in INIT",
    )


def test_b6_leaf_equals_root(api, uid):
    setup(api, uid, "P")
    assert callback(api, uid, uid).status_code == 400


def test_b7_b8_subscription(api, uid):
    setup(api, uid, "P")
    first = subscribe(api, uid, "s1")
    assert first.status_code == 201
    sub = first.json()["callback"]
    assert sub["id"] == f"__notify:{uid}:s1"
    assert sub["rootPromiseId"] == uid and sub["promiseId"] == uid
    again = subscribe(api, uid, "s1")
    assert again.status_code == 200
    assert again.json()["callback"] == sub


def test_b9_deprecated_subscription_form_accepts_capital_id(api, uid):
    setup(api, uid, "P")
    body = {"promiseId": uid, "Id": "s2", "recv": "default", "timeout": now_ms() + HOUR}
    response = api.post("/subscriptions", json=body)
    assert response.status_code == 201
    assert response.json()["callback"]["id"] == f"__notify:{uid}:s2"


def test_deprecated_callback_form(api, uid):
    leaf, root = f"{uid}-leaf", f"{uid}-root"
    setup(api, leaf, "P")
    body = {"promiseId": leaf, "rootPromiseId": root, "recv": "default", "timeout": now_ms() + HOUR}
    response = api.post("/callbacks", json=body)
    assert response.status_code == 201
    assert response.json()["callback"]["id"] == f"__resume:{root}:{leaf}"
    assert api.post("/callbacks", json={**body, "promiseId": ""}).status_code == 400


@pytest.mark.parametrize("recv", [5, "", {}, {"type": ""}, {"data": 1}, None, [1]])
def test_b10_invalid_recv(api, uid, recv):
    setup(api, uid, "P")
    response = api.post(
        f"/promises/callback/{uid}", json={"rootPromiseId": "r", "recv": recv, "timeout": 1}
    )
    assert response.status_code == 400
    response = api.post(f"/promises/subscribe/{uid}", json={"id": "s", "recv": recv})
    assert response.status_code == 400


@pytest.mark.sqlite_only  # reads the SQLite file
def test_physical_recv_is_stored_as_given(api, uid, server):
    leaf, root = f"{uid}-leaf", f"{uid}-root"
    setup(api, leaf, "P")
    recv = {"type": "poll", "data": {"group": "g", "id": "p"}}
    assert callback(api, leaf, root, recv=recv).status_code == 201
    complete(api, leaf, "RESOLVED")
    assert stored_tasks(server, root)[f"__resume:{root}:{leaf}"]["recv"] == recv


def test_callback_fencing_with_unknown_task_is_412(api, uid):
    setup(api, uid, "P")
    response = callback(
        api, uid, f"{uid}-root", headers={"task-id": "__invoke:x", "task-counter": "1"}
    )
    assert response.status_code == 412


@pytest.mark.sqlite_only  # reads the SQLite file
async def test_e1_completion_turns_registrations_into_tasks(live):
    """In-process, so no enqueue loop sends (and completes) the new tasks before we look."""
    from tests.support.live import START_MS

    client = live.client
    leaf, r1, r2 = "leaf", "r1", "r2"
    await client.post("/promises", json={"id": leaf, "timeout": START_MS + HOUR})
    trace = {"traceparent": "00-abc-def-01", "tracestate": "k=v"}
    for root, headers in ((r1, trace), (r2, {})):
        body = {"rootPromiseId": root, "recv": "poll://any@g", "timeout": START_MS + HOUR}
        response = await client.post(f"/promises/callback/{leaf}", json=body, headers=headers)
        assert response.status_code == 201
    body = {"id": "s", "recv": "poll://any@g", "timeout": START_MS + HOUR}
    assert (await client.post(f"/promises/subscribe/{leaf}", json=body)).status_code == 201
    response = await client.patch(f"/promises/{leaf}", json={"state": "RESOLVED"})
    assert response.status_code == 201

    async def stored(tx):
        rows = tx.conn.execute(
            "SELECT id, state, counter, attempt, expires_at, root_promise_id, mesg FROM tasks"
        ).fetchall()
        left = tx.conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
        return {row[0]: row[1:] for row in rows}, left

    tasks, callbacks_left = await live.server.store.run(stored)
    state, counter, attempt, expires_at, root, mesg = tasks[f"__resume:{r1}:{leaf}"]
    assert (state, counter, attempt, expires_at, root) == (1, 1, 0, 0, r1)
    assert json.loads(mesg) == {"type": "resume", "root": r1, "leaf": leaf, "head": trace}
    assert json.loads(tasks[f"__resume:{r2}:{leaf}"][5]) == {
        "type": "resume",
        "root": r2,
        "leaf": leaf,
    }
    notify = tasks[f"__notify:{leaf}:s"]
    assert notify[0] == 1 and notify[4] == leaf  # E3: not completed by step 2
    assert json.loads(notify[5]) == {"type": "notify", "root": leaf}
    assert callbacks_left == 0


@pytest.mark.sqlite_only  # reads the SQLite file
async def test_timeouts_fire_callbacks_lazily_and_eagerly(live):
    """Side effects run on every completion path: lazy and eager timeouts too (§2.8)."""
    from tests.support.live import START_MS

    client = live.client
    for pid in ("lazy", "eager"):
        await client.post("/promises", json={"id": pid, "timeout": START_MS + 10})
        await client.post(
            f"/promises/callback/{pid}",
            json={"rootPromiseId": "root", "recv": "default", "timeout": 0},
        )
    live.clock.advance(11)
    assert (await client.get("/promises/lazy")).json()["state"] == "REJECTED_TIMEDOUT"
    assert await live.time_out_promises() == 1

    async def task_ids(tx):
        rows = tx.conn.execute("SELECT id, created_on FROM tasks ORDER BY id").fetchall()
        return rows

    rows = await live.server.store.run(task_ids)
    assert rows == [("__resume:root:eager", START_MS + 11), ("__resume:root:lazy", START_MS + 11)]


@pytest.mark.sqlite_only  # reads the SQLite file
async def test_e2_completing_a_root_completes_its_open_tasks(live):
    from tests.support.live import START_MS

    client = live.client
    await client.post("/promises", json={"id": "root", "timeout": START_MS + 10**9})

    async def seed(tx):
        for state in (1, 2, 4, 8, 16):  # INIT, ENQUEUED, CLAIMED, COMPLETED, TIMEDOUT
            tx.conn.execute(
                "INSERT INTO tasks (id, state, root_promise_id, recv, mesg, timeout, created_on,"
                " completed_on) VALUES (?, ?, 'root', '\"default\"', '{}', 0, 0, ?)",
                (f"__resume:root:{state}", state, 7 if state >= 8 else None),
            )

    await live.server.store.run(seed)
    live.clock.advance(5)
    assert (await client.patch("/promises/root", json={"state": "RESOLVED"})).status_code == 201

    async def states(tx):
        return tx.conn.execute("SELECT id, state, completed_on FROM tasks ORDER BY id").fetchall()

    assert await live.server.store.run(states) == [
        ("__resume:root:1", 8, START_MS + 5),
        ("__resume:root:16", 16, 7),
        ("__resume:root:2", 8, START_MS + 5),
        ("__resume:root:4", 8, START_MS + 5),
        ("__resume:root:8", 8, 7),
    ]
