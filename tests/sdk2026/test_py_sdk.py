"""End-to-end: the official Python SDK `resonate-sdk` 0.8.1 (2026-04-01 protocol) against a
real `resonate serve`, on each store.

The application is tests/sdk2026/workers_py/app.py; its processes run in their own virtualenv
(see conftest.py) and talk to the server's API port only: `POST /` and the SSE stream
`GET /poll/{group}/{pid}`. Groups: `workflows` runs the workflows, `remote` the functions they
call with ctx.rpc, `workers` the schedule's target, `clients` the processes that start a
workflow with `resonate.rpc` and wait for its result (a listener answered by `unblock`).
Ids: the SDK names children `<root>:1`, `<root>:2`, ... in call order.

The tests of a store share one server (`py_sdk_server`; the JWT test starts its own): each
joins its groups suffixed (`sdk.group("workflows")`, `sdk.target("workflows")` for the
`resonate:target` tag) and uses root promise ids, schedule ids and search prefixes that no other
test uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.sdk2026.conftest import (
    PySdkCluster,
    call_2026,
    decode_value,
    encode_value,
    py_sdk_cluster,
    start_sdk2026_server,
)
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.sdk


def assert_resolved(sdk: PySdkCluster, promise_id: str, value: Any = ..., **tags: str) -> dict:
    """The promise (2026 view) is resolved, with `value` and `tags` (`resonate_x` names the
    tag `resonate:x`) when given."""
    promise = sdk.promise(promise_id)
    assert promise["state"] == "resolved", promise
    if value is not ...:
        assert decode_value(promise["value"]) == value, promise
    for key, expected in tags.items():
        assert promise["tags"].get(key.replace("_", ":")) == expected, promise
    return promise


def cli(sdk: PySdkCluster, *args: str) -> str:
    """Our `resonate` CLI (the server's venv) against the test's server; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "resonate", *args, "-S", sdk.server.url, "--no-color"],
        capture_output=True,
        text=True,
        timeout=30,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")},
            "NO_COLOR": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        },
    )
    assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
    return result.stdout


def searched_ids(sdk: PySdkCluster, root: str) -> set[str]:
    """Every promise id the REST search `GET /promises?id=<root>*` lists (following cursors)."""
    ids: set[str] = set()
    params: dict[str, Any] = {"id": f"{root}*", "limit": 100}
    for _ in range(20):
        response = sdk.api.get("/promises", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids |= {p["id"] for p in body["promises"]}
        if not body.get("cursor"):
            return ids
        params = {"cursor": body["cursor"]}
    raise AssertionError("search did not end")


# ---------------------------------------------------------------------------------------------
# (a) local step, remote call in another group, durable sleep, fan-out; (g) search


@pytest.mark.parametrize("mode", ["rpc", "run"])
def test_workflow_local_remote_sleep_fanout(py_sdk: PySdkCluster, mode: str) -> None:
    """`main_workflow(4)`: ctx.run (:1), ctx.rpc to the `remote` group (:2), ctx.sleep 1 s
    (:3), four ctx.rpc to `remote` gathered (:4..:7), ctx.run (:8).

    rpc: a client in `clients` dispatches it with resonate.rpc to a worker in `workflows`.
    run: the client joins `workflows` and runs it itself with resonate.run (task.create)."""
    sdk = py_sdk
    groups = ["remote", "remote"] + (["workflows"] if mode == "rpc" else [])
    sdk.start_workers(*groups)
    wf = f"main-{mode}"
    begin = time.monotonic()
    client = sdk.start_client(mode, wf, "workflows", "main_workflow", 4)
    result = sdk.wait_result(client, timeout=30)
    elapsed = time.monotonic() - begin

    assert result == {
        "base": 400,
        "described": "n=4",
        "squares": [1, 4, 9, 16],
        "after": 400,
        "total": 830,
    }
    assert elapsed >= 1.0, f"the 1 s durable sleep took no time ({elapsed:.2f} s)"
    sdk.check_alive()
    assert sdk.sdk_errors() == []

    # Each local step ran once, in a `workflows` process; each remote call once, in `remote`.
    for name in ("base", "after"):
        runs = sdk.records("local", name)
        assert len(runs) == 1, runs
        assert sdk.by_pid(runs[0].os_pid).group == "workflows", runs
    if mode == "run":
        assert sdk.records("local", "base")[0].os_pid == client.pid
    for event, key in [("describe", 4)] + [("square", i) for i in (1, 2, 3, 4)]:
        runs = sdk.records(event, key)
        assert len(runs) == 1, (event, key, runs)
        assert sdk.by_pid(runs[0].os_pid).group == "remote", runs

    # The server's view (2026 protocol).
    root = assert_resolved(sdk, wf, value=result)
    assert root["tags"]["resonate:target"] == sdk.target("workflows"), root
    assert decode_value(root["param"])["func"] == "main_workflow", root
    assert_resolved(sdk, f"{wf}:1", value=400, resonate_scope="local")
    assert_resolved(sdk, f"{wf}:2", value="n=4", resonate_target=sdk.target("remote"))
    sleep = assert_resolved(sdk, f"{wf}:3", resonate_timer="true")
    assert sleep["timeoutAt"] - sleep["createdAt"] >= 1000 - 50, sleep
    for n, i in enumerate((1, 2, 3, 4), start=4):
        child = assert_resolved(sdk, f"{wf}:{n}", value=i * i, resonate_target=sdk.target("remote"))
        assert decode_value(child["param"])["args"] == [i], child
    assert_resolved(sdk, f"{wf}:8", value=400)
    assert sdk.find_promise(f"{wf}:9") is None
    task = sdk.task(wf)
    assert task is not None and task["state"] == "fulfilled", task

    # (g) The REST API and the CLI list the finished workflow's promises.
    expected = {wf, *(f"{wf}:{n}" for n in range(1, 9))}
    assert searched_ids(sdk, wf) == expected
    rest_root = sdk.rest_promise(wf)
    assert rest_root["state"] == "RESOLVED" and decode_value(rest_root["value"]) == result
    listed = json.loads(cli(sdk, "promises", "search", f"{wf}*", "--all", "-o", "json"))
    assert {row["id"] for row in listed["promises"]} == expected, listed
    assert {row["state"] for row in listed["promises"]} == {"RESOLVED"}, listed
    # `resonate tree`: the root, then its eight children in call order, one level down.
    tree = cli(sdk, "tree", wf).splitlines()
    assert tree[0].startswith(f"+ {wf} (") and "main_workflow" in tree[0], tree
    children = [line.split("+ ", 1)[1].split(" ")[0] for line in tree[1:] if "+ " in line]
    assert children == [f"{wf}:{n}" for n in range(1, 9)], tree
    assert any(f"{wf}:3 (sleep)" in line for line in tree), tree
    assert any(f"{wf}:2 (rpc describe)" in line for line in tree), tree


# ---------------------------------------------------------------------------------------------
# (b) the worker holding the task is SIGKILLed mid-step


def test_worker_killed_mid_step(py_sdk: PySdkCluster) -> None:
    """`crash_workflow(7)`: local step (:1), a slow local step (:2) blocking on the release
    file, local step (:3). The only `workflows` worker is SIGKILLed inside the slow step; a
    replacement started afterwards gets the task once the lease (4 s) has lapsed (re-sent
    every 2 s while nobody acquires it), replays: :1 comes from the preload and is not run
    again, :2 runs again and finishes, :3 runs once."""
    sdk = py_sdk
    (victim,) = sdk.start_workers("workflows")
    wf = "crash"
    client = sdk.start_client("rpc", wf, "workflows", "crash_workflow", 7)

    started = sdk.wait_for(
        lambda: sdk.check_alive() or sdk.records("slow-start"), 20, "the slow step to start"
    )
    assert started[0].os_pid == victim.pid
    assert_resolved(sdk, f"{wf}:1", value=700)  # durably done before the slow step began
    assert sdk.promise(f"{wf}:2")["state"] == "pending"
    task = sdk.task(wf)
    assert task is not None and task["state"] == "acquired", task
    assert task["pid"] == started[0].sdk_pid, task
    held_version = task["version"]

    sdk.kill(victim)
    killed_at = time.monotonic()
    sdk.release_path.touch()
    replacement = sdk.start_worker("workflows")

    result = sdk.wait_result(client, timeout=30)
    recovered_in = time.monotonic() - killed_at
    assert result == {"before": 700, "slow": 7000, "after": 700, "total": 8400}
    sdk.check_alive()

    # Completed steps did not run again; the interrupted one ran again on the replacement.
    assert [r.os_pid for r in sdk.records("local", "before")] == [victim.pid]
    assert [r.os_pid for r in sdk.records("slow-start")] == [victim.pid, replacement.pid]
    assert [r.os_pid for r in sdk.records("slow-finish")] == [replacement.pid]
    assert [r.os_pid for r in sdk.records("local", "after")] == [replacement.pid]

    assert_resolved(sdk, wf, value=result)
    assert_resolved(sdk, f"{wf}:1", value=700)
    assert_resolved(sdk, f"{wf}:2", value=7000)
    assert_resolved(sdk, f"{wf}:3", value=700)
    task = sdk.task(wf)
    assert task is not None and task["state"] == "fulfilled", task
    assert task["version"] > held_version, task  # acquired again by the replacement
    assert recovered_in < 20, f"recovery took {recovered_in:.1f} s"


def test_remote_worker_killed_mid_call(py_sdk: PySdkCluster) -> None:
    """`remote_slow_workflow(6)`: local step (:1), then `slow_step` called in the `remote`
    group (:2). The remote worker is SIGKILLed inside it while the workflow is suspended on
    it; the child task's lease lapses, a replacement remote worker runs it again, and its
    settlement wakes the workflow (whose local step does not run again)."""
    sdk = py_sdk
    (workflow_worker, victim) = sdk.start_workers("workflows", "remote")
    wf = "remote-crash"
    client = sdk.start_client("rpc", wf, "workflows", "remote_slow_workflow", 6)

    started = sdk.wait_for(
        lambda: sdk.check_alive() or sdk.records("slow-start"), 20, "the remote call to start"
    )
    assert started[0].os_pid == victim.pid
    sdk.wait_for(
        lambda: (sdk.task(wf) or {}).get("state") == "suspended", 10, "the workflow to suspend"
    )
    child = sdk.task(f"{wf}:2")
    assert child is not None and child["state"] == "acquired", child
    assert child["pid"] == started[0].sdk_pid, child

    sdk.kill(victim)
    sdk.release_path.touch()
    replacement = sdk.start_worker("remote")

    result = sdk.wait_result(client, timeout=30)
    assert result == {"before": 600, "slow": 6000, "total": 6600}
    sdk.check_alive()
    assert [r.os_pid for r in sdk.records("slow-start")] == [victim.pid, replacement.pid]
    assert [r.os_pid for r in sdk.records("slow-finish")] == [replacement.pid]
    assert [r.os_pid for r in sdk.records("local", "before-remote")] == [workflow_worker.pid]
    assert_resolved(sdk, f"{wf}:2", value=6000, resonate_target=sdk.target("remote"))
    assert_resolved(sdk, wf, value=result)


# ---------------------------------------------------------------------------------------------
# (c) the worker is SIGKILLed while the workflow sleeps


def test_worker_killed_during_sleep(py_sdk: PySdkCluster) -> None:
    """`sleepy_workflow(5, 2.0)`: local step (:1), a 2 s durable sleep (:2), local step (:3).
    The worker is SIGKILLed once the workflow has suspended on the timer; the server times
    the timer out by itself, the task goes back to pending, and a replacement started after
    the kill replays: :1 not run again, :3 run once."""
    sdk = py_sdk
    (victim,) = sdk.start_workers("workflows")
    wf = "sleepy"
    client = sdk.start_client("rpc", wf, "workflows", "sleepy_workflow", 5, 2.0)

    def suspended() -> bool:
        sdk.check_alive()
        timer = sdk.find_promise(f"{wf}:2")
        task = sdk.task(wf)
        if timer is not None and timer["state"] != "pending":
            raise AssertionError(f"the timer fired before the test saw the suspension: {task}")
        return bool(timer and task and task["state"] == "suspended")

    sdk.wait_for(suspended, 20, "the workflow to suspend on its timer")
    timer = sdk.promise(f"{wf}:2")
    assert timer["state"] == "pending" and timer["tags"].get("resonate:timer") == "true", timer
    assert [r.os_pid for r in sdk.records("local", "before-sleep")] == [victim.pid]

    sdk.kill(victim)
    replacement = sdk.start_worker("workflows")

    result = sdk.wait_result(client, timeout=30)
    assert result == {"before": 500, "after": 500, "total": 1000}
    sdk.check_alive()
    assert [r.os_pid for r in sdk.records("local", "before-sleep")] == [victim.pid]
    assert [r.os_pid for r in sdk.records("local", "after-sleep")] == [replacement.pid]

    assert_resolved(sdk, wf, value=result)
    timer = assert_resolved(sdk, f"{wf}:2", resonate_timer="true")
    assert timer["settledAt"] >= timer["timeoutAt"], timer
    assert_resolved(sdk, f"{wf}:3", value=500)


# ---------------------------------------------------------------------------------------------
# errors cross the protocol as rejections


def test_errors_reject_promises(py_sdk: PySdkCluster) -> None:
    """`error_workflow(3)` calls `explode` in `remote` (no retries), which raises: its
    promise (:1) is rejected, the workflow catches the error, then raises itself: the root is
    rejected and the client's handle raises."""
    sdk = py_sdk
    sdk.start_workers("workflows", "remote")
    wf = "errors"
    client = sdk.start_client("rpc", wf, "workflows", "error_workflow", 3)

    outcome = sdk.wait_outcome(client, timeout=20)
    assert "error" in outcome and "boom 3" in outcome["error"], outcome
    assert sdk.sdk_errors() == []
    assert [r.key for r in sdk.records("caught")] == ["ValueError:_boom_3"]
    assert len(sdk.records("explode", 3)) == 1

    child = sdk.promise(f"{wf}:1")
    assert child["state"] == "rejected", child
    assert "boom 3" in json.dumps(decode_value(child["value"])), child
    root = sdk.promise(wf)
    assert root["state"] == "rejected", root
    assert "workflow failed" in json.dumps(decode_value(root["value"])), root
    assert sdk.rest_promise(wf)["state"] == "REJECTED"
    task = sdk.task(wf)
    assert task is not None and task["state"] == "fulfilled", task


# ---------------------------------------------------------------------------------------------
# (d) a schedule fires a function


def test_schedule_fires_function(py_sdk: PySdkCluster) -> None:
    """resonate.schedule with a 6-field cron (every second) targeting the `workers` group;
    the worker runs `tick` once per firing, each under its own promise
    `<schedule>-<timestamp>`; deleting the schedule through the SDK removes it."""
    sdk = py_sdk
    sdk.start_workers("workers")
    workers = sdk.group("workers")
    created = sdk.run_ops(
        "schedule-create", "every-second", "* * * * * *", workers, "tick", json.dumps(["s"])
    )
    schedule = created["get"]
    assert schedule["id"] == "every-second" and schedule["cron"] == "* * * * * *", created
    assert schedule["promiseId"] == "{{.id}}-{{.timestamp}}", created
    assert schedule["promiseTags"]["resonate:target"] == sdk.target("workers"), created
    assert created["create_again"]["cron"] == "* * * * * *", created  # the stored one

    ticks = sdk.wait_for(
        lambda: sdk.check_alive() or (len(sdk.records("tick-s")) >= 2 and sdk.records("tick-s")),
        15,
        "two firings of the schedule",
    )
    deleted = sdk.run_ops("schedule-delete", "every-second")
    assert deleted["delete"] is None, deleted
    assert deleted["get_after"]["error"] == 404, deleted
    assert deleted["delete_again"]["error"] == 404, deleted

    fired = [r.key for r in ticks]
    assert len(set(fired)) == len(fired), f"a firing ran twice: {fired}"
    stamps = []
    for promise_id in fired[:2]:
        assert promise_id.startswith("every-second-"), fired
        stamps.append(int(promise_id.removeprefix("every-second-")))
        promise = assert_resolved(sdk, promise_id, value=promise_id)
        assert promise["tags"]["resonate:schedule"] == "every-second", promise
        assert promise["tags"]["resonate:target"] == sdk.target("workers"), promise
    assert stamps[0] % 1000 == 0 and stamps[1] > stamps[0], stamps


# ---------------------------------------------------------------------------------------------
# (e) the SDK's promises client


def test_promises_client(py_sdk: PySdkCluster) -> None:
    """resonate.promises: create (and its idempotent repeat), get, resolve / reject / cancel,
    settle of a settled promise, search by state and tags with a cursor, and a promise made
    through the REST API read and settled through the SDK (one store, two protocols)."""
    sdk = py_sdk
    response = sdk.api.post(
        "/promises",
        json={"id": "rest-made", "timeout": int(time.time() * 1000) + 60_000, "param": {}},
    )
    assert response.status_code == 201, response.text

    out = sdk.run_ops("promises", "pc", "rest-made")

    create = out["create"]
    assert create["id"] == "pc.a" and create["state"] == "pending", out
    assert create["param"]["data"] == {"hello": "world"}, out
    assert create["tags"] == {"suite": "pc", "n": "1"}, out
    assert out["create_again"] == create, out
    assert out["get"] == create, out
    assert out["resolve"]["state"] == "resolved", out
    assert out["resolve"]["value"]["data"] == {"answer": 42}, out
    assert out["reject_settled"] == out["resolve"], out
    assert out["reject"]["state"] == "rejected", out
    assert out["reject"]["value"]["data"] == {"why": "no"}, out
    assert out["cancel"]["state"] == "rejected_canceled", out
    assert out["search_resolved"] == [["pc.a"]], out
    assert out["search_pending"] == [["pc.d"]], out
    assert out["search_all_by_2"] == [["pc.a", "pc.b"], ["pc.c", "pc.d"]], out
    assert out["rest_get"]["id"] == "rest-made" and out["rest_get"]["state"] == "pending", out
    assert out["rest_resolve"]["state"] == "resolved", out
    assert out["get_missing"]["error"] == 404, out
    assert out["settle_missing"]["error"] == 404, out

    # The REST API sees what the SDK did.
    a = sdk.rest_promise("pc.a")
    assert a["state"] == "RESOLVED" and decode_value(a["value"]) == {"answer": 42}, a
    assert decode_value(a["param"]) == {"hello": "world"}, a
    assert sdk.rest_promise("pc.b")["state"] == "REJECTED"
    assert sdk.rest_promise("pc.c")["state"] == "REJECTED_CANCELED"
    assert sdk.rest_promise("pc.d")["state"] == "PENDING"
    made = sdk.rest_promise("rest-made")
    assert made["state"] == "RESOLVED" and decode_value(made["value"]) == {"from": "sdk"}, made


# ---------------------------------------------------------------------------------------------
# (f) a workflow waits on a promise that our CLI / REST API settles; `resonate tree`


@pytest.mark.parametrize("settle_via", ["cli", "rest"])
def test_workflow_awaits_promise_settled_by_rest(py_sdk: PySdkCluster, settle_via: str) -> None:
    """`approval_workflow(3)` suspends on a bare durable promise (:2, ctx.promise). Settling it
    through the REST API (`resonate promises resolve`, or `PATCH /promises/{id}`) wakes the
    workflow (one settlement cascade for both protocols), which finishes; `resonate tree`
    shows the call graph."""
    sdk = py_sdk
    sdk.start_workers("workflows")
    wf = f"approval-{settle_via}"
    client = sdk.start_client("rpc", wf, "workflows", "approval_workflow", 3)

    awaiting = sdk.wait_for(
        lambda: sdk.check_alive() or sdk.records("awaiting"), 20, "the workflow to await"
    )
    approval_id = awaiting[0].key
    assert approval_id == f"{wf}:2"
    sdk.wait_for(
        lambda: (sdk.task(wf) or {}).get("state") == "suspended", 10, "the workflow to suspend"
    )
    assert sdk.rest_promise(approval_id)["state"] == "PENDING"

    decision = {"approved": True, "by": settle_via}
    if settle_via == "cli":
        cli(sdk, "promises", "resolve", approval_id, "--data", json.dumps(decision))
    else:
        response = sdk.api.patch(
            f"/promises/{approval_id}",
            json={"state": "RESOLVED", "value": {"data": encode_value(decision)}},
        )
        assert response.status_code in (200, 201), response.text

    result = sdk.wait_result(client, timeout=20)
    assert result == {"before": 300, "decision": decision, "after": 300}
    sdk.check_alive()
    assert sdk.sdk_errors() == []
    assert len(sdk.records("local", "before-approval")) == 1
    assert len(sdk.records("local", "after-approval")) == 1
    assert_resolved(sdk, approval_id, value=decision)
    assert_resolved(sdk, wf, value=result)

    # (g) The search lists its promises; `resonate tree` shows them as the call graph.
    assert searched_ids(sdk, wf) == {wf, f"{wf}:1", f"{wf}:2", f"{wf}:3"}
    tree = cli(sdk, "tree", wf)
    for child in (f"{wf}:1", f"{wf}:2", f"{wf}:3"):
        assert child in tree, tree


# ---------------------------------------------------------------------------------------------
# auth: a JWT with a prefix (P6)


def test_jwt_with_prefix(
    request: pytest.FixtureRequest,
    py_sdk_python: Any,
    server_factory: type[ServerProcess],
    store_kind: str,
    tmp_path: Any,
) -> None:
    """A server with JWT auth: the SDK processes get a token (RESONATE_TOKEN) whose `prefix`
    claim is the workflow's id; the SDK sends it in `head.auth` and as a Bearer header (also
    on its SSE stream), and `main_workflow` runs as without auth. Without a token the server
    answers 401 (envelope and stream), outside the prefix 403."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = jwt.encode({"prefix": "authwf", "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    auth_args = ["--api-auth-public-key", pem.decode()]
    with (
        start_sdk2026_server(
            request, server_factory, store_kind, tmp_path / "server", auth_args
        ) as server,
        py_sdk_cluster(request, py_sdk_python, server, tmp_path / "py-sdk", token) as sdk,
        httpx.Client(base_url=server.url, timeout=10, trust_env=False) as anonymous,
    ):
        assert call_2026(anonymous, "promise.get", {"id": "authwf"})[0] == 401
        with anonymous.stream("GET", "/poll/workflows/nobody") as stream:
            assert stream.status_code == 401
        assert sdk.call("promise.get", {"id": "elsewhere"})[0] == 403

        sdk.start_workers("workflows", "remote")
        client = sdk.start_client("rpc", "authwf", "workflows", "main_workflow", 2)
        result = sdk.wait_result(client, timeout=30)
        assert result == {
            "base": 200,
            "described": "n=2",
            "squares": [1, 4],
            "after": 200,
            "total": 405,
        }
        sdk.check_alive()
        assert sdk.sdk_errors() == []
        assert_resolved(sdk, "authwf", value=result)
        assert_resolved(sdk, "authwf:3", resonate_timer="true")
