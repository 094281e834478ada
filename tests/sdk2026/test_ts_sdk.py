"""End-to-end: the official TypeScript SDK (@resonatehq/sdk 0.11.5, 2026-04-01 protocol) on
Node against a real `resonate serve`, on each store (protocol-2026.md §10).

The application is tests/sdk2026/ts/app.mjs (generator functions); the harness is
tests/sdk2026/ts_support.py. Groups (suffixed per test: the tests of a store share a server):
`sdkts-main-…` runs the workflows, `sdkts-remote-…` the functions they call with ctx.rpc,
`sdkts-clients-…` the processes that start a workflow with resonate.rpc and wait for its
result (a listener answered by an `unblock`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sdk2026.conftest import ServerPool, add_report_section
from tests.sdk2026.ts_support import (
    TS_DIR,
    NodeCluster,
    decode,
    ensure_sdk,
    module_server,
    wait_for,
)
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.sdk

# A short lease for the crash scenarios: the SDK heartbeats every ttl/2, and a SIGKILLed
# worker's task goes back to pending ttl after its last heartbeat.
SHORT_TTL_MS = 2000


@pytest.fixture(scope="session")
def ts_node() -> str:
    """The node binary, with @resonatehq/sdk 0.11.5 installed (npm ci, once)."""
    return ensure_sdk()


@pytest.fixture
def ts_server(ts_node: str, store_kind: str, sdk2026_servers: ServerPool) -> ServerProcess:
    """The `resonate serve` of the store shared by this module's tests (tests keep apart by
    their groups), started on first use and kept for the session (conftest's ServerPool)."""
    return sdk2026_servers.get("ts-sdk", store_kind)


@pytest.fixture
def ts(
    request: pytest.FixtureRequest, ts_server: ServerProcess, ts_node: str, tmp_path: Path
) -> Iterator[NodeCluster]:
    """A NodeCluster (groups and pids of its own) against the module's server; on failure
    the server's log of this test, the Node processes' logs and the records are reported."""
    cluster = NodeCluster(ts_node, ts_server, tmp_path)
    add_report_section(request.node, "resonate serve and TypeScript SDK processes", cluster.report)
    try:
        yield cluster
    finally:
        cluster.close()


def assert_resolved(ts: NodeCluster, promise_id: str, value: Any = ..., **tags: str) -> dict:
    promise = ts.promise(promise_id)
    assert promise["state"] == "resolved", promise
    if value is not ...:
        assert decode(promise["value"]) == value, promise
    for key, expected in tags.items():
        assert promise["tags"].get(key.replace("_", ":")) == expected, promise
    return promise


def pids(records: list) -> list[int]:
    return [r.os_pid for r in records]


# ---------------------------------------------------------------------------------------------
# (a) local step, remote call, durable sleep, fan-out


@pytest.mark.parametrize("mode", ["run", "rpc"])
def test_workflow(ts: NodeCluster, mode: str) -> None:
    """`workflow(4, 1000, 3)`: a local step, ctx.rpc to `sdkts-remote` (two Node workers), a
    1 s durable sleep, a fan-out of 3 ctx.beginRpc gathered, a local step.

    run: the client joins `sdkts-main` (with another worker there) and runs it itself
      (task.create; wake-ups come back to it through poll://any@sdkts-main/<pid>).
    rpc: a client in `sdkts-clients` calls it on a worker of `sdkts-main` (promise.create with
      a target, then waits for the unblock on its unicast address).
    """
    remote = ts.start_workers([("remote-1", ts.remote), ("remote-2", ts.remote)])
    wf = f"wf.{mode}.1"  # a dotted root id, as in the SDK README (`countdown.1`; §4.4, P4)
    begin = time.monotonic()
    if mode == "run":
        # A second member of the group: wake-ups to poll://any@main/<client> must still
        # prefer the client's own connection (§6.1), so every replay runs in the client.
        ts.start_workers([("main-other", ts.main)])
        client = ts.start_client("run", wf, "workflow", [4, 1000, 3], group=ts.main)
        runner = client
    else:
        (runner,) = ts.start_workers([("main-1", ts.main)])
        client = ts.start_client(
            "rpc", wf, "workflow", [4, 1000, 3], group=ts.clients, target=ts.main
        )
    result = ts.wait_result(client, timeout=30)
    elapsed = time.monotonic() - begin

    assert result == {"base": 400, "one": 16, "squares": [1, 4, 9], "after": 400, "total": 830}
    assert elapsed >= 1.0, f"the 1 s durable sleep took no time ({elapsed:.2f} s)"
    ts.check_alive()
    ts.assert_no_invalid_replies()

    # Local steps ran once each, in the process that runs the workflow (the first one came
    # from the preload on every replay); remote calls ran once each, in the remote group.
    for name in ("base", "after"):
        assert pids(ts.records("local", name)) == [runner.pid], ts.records("local", name)
    remote_pids = {p.pid for p in remote}
    for i in (4, 1, 2, 3):
        runs = ts.records("square", i)
        assert len(runs) == 1 and runs[0].os_pid in remote_pids, (i, runs)

    # The server's view (§10.2): ids wf:0 … wf:6.
    root = assert_resolved(ts, wf, value=result)
    target = f"poll://any@{ts.main}/{runner.sdk_pid}" if mode == "run" else f"poll://any@{ts.main}"
    assert root["tags"]["resonate:target"] == target, root
    assert decode(root["param"])["func"] == "workflow", root
    assert_resolved(ts, f"{wf}:0", value=400, resonate_scope="local")
    assert_resolved(ts, f"{wf}:1", value=16, resonate_target=f"poll://any@{ts.remote}")
    sleep = assert_resolved(ts, f"{wf}:2", resonate_timer="true")
    assert sleep["tags"]["resonate:target"] == "poll://any@default", sleep
    # The SDK computes the wake time (now + 1 s) before its create reaches the server, and
    # the timeout settles the timer at exactly its timeoutAt (§7).
    assert sleep["timeoutAt"] - sleep["createdAt"] >= 500, sleep
    assert sleep["settledAt"] == sleep["timeoutAt"], sleep
    for n, i in enumerate((1, 2, 3), start=3):
        assert_resolved(ts, f"{wf}:{n}", value=i * i, resonate_target=f"poll://any@{ts.remote}")
    assert_resolved(ts, f"{wf}:6", value=400)
    assert ts.find_promise(f"{wf}:7") is None
    task = ts.task(wf)
    assert task is not None and task["state"] == "fulfilled", task
    assert "pid" not in task and "ttl" not in task, task


# ---------------------------------------------------------------------------------------------
# (b) a worker is SIGKILLed while it holds a task


@pytest.mark.parametrize("where", ["workflow", "remote", "run"])
def test_crash_holding_task(ts: NodeCluster, where: str) -> None:
    """A process holding a task is SIGKILLed in a slow local step; a replacement started in
    the same group gets the task once the lease lapses and replays it: the completed step
    comes from the preload (not run again), the interrupted one runs again, once.

    workflow: `crashy` runs on a worker of sdkts-main (the root task, acquired from an
      execute, heartbeated, lease 2 s), called by a client with resonate.rpc.
    remote: `delegating` runs on a surviving sdkts-main worker and calls `process` on the
      victim in sdkts-remote (the child's task).
    run: the victim runs `crashy` itself with resonate.run (task.create, not heartbeated,
      lease 4 s; target poll://any@sdkts-main/<victim>, so the re-delivery must fall back to
      another connection of the group).
    """
    wf = f"crash-{where}"
    group = ts.remote if where == "remote" else ts.main
    client = None
    if where == "workflow":
        (victim,) = ts.start_workers([("victim", ts.main)], ttl_ms=SHORT_TTL_MS)
        client = ts.start_client("rpc", wf, "crashy", [7], group=ts.clients, target=ts.main)
        done_step, task_id, step_ids = "before", wf, (f"{wf}:0", f"{wf}:1")
    elif where == "remote":
        main, victim = ts.start_workers([("main-1", ts.main), ("victim", ts.remote)], SHORT_TTL_MS)
        client = ts.start_client("rpc", wf, "delegating", [7], group=ts.clients, target=ts.main)
        done_step, task_id, step_ids = "prepare", f"{wf}:1", (f"{wf}:1.0", f"{wf}:1.1")
    else:
        victim = ts.start_client("run", wf, "crashy", [7], group=ts.main, ttl_ms=4000)
        done_step, task_id, step_ids = "before", wf, (f"{wf}:0", f"{wf}:1")

    first = wait_for(
        lambda: ts.check_alive() or ts.records("slow-start"), 20, "the slow step to start"
    )[0]
    assert first.os_pid == victim.pid, first
    # The step before is durably done, the slow one pending, the task held by the victim.
    assert_resolved(ts, step_ids[0], value=700)
    assert ts.promise(step_ids[1])["state"] == "pending"
    held = ts.task(task_id)
    assert held is not None and held["state"] == "acquired", held
    assert held["pid"] == victim.sdk_pid, held

    ts.kill(victim)
    killed_at = time.monotonic()
    ts.release_path.touch()
    (replacement,) = ts.start_workers([("replacement", group)], ttl_ms=SHORT_TTL_MS)

    if client is not None:
        result = ts.wait_result(client, timeout=30)
    else:
        result = decode(wait_settled(ts, wf, timeout=30)["value"])
    recovered_in = time.monotonic() - killed_at
    if where == "remote":
        assert result == {"before": 700, "processed": 7700, "total": 8400}
    else:
        assert result == {"before": 700, "slow": 7000, "total": 7700}
    ts.check_alive()
    ts.assert_no_invalid_replies()

    assert pids(ts.records("local", done_step)) == [victim.pid], ts.records("local", done_step)
    assert pids(ts.records("slow-start")) == [victim.pid, replacement.pid]
    assert pids(ts.records("slow-finish")) == [replacement.pid]
    if where == "remote":
        assert pids(ts.records("local", "before")) == [main.pid]

    assert_resolved(ts, wf, value=result)
    assert_resolved(ts, step_ids[1], value=7000)
    task = ts.task(task_id)
    assert task is not None and task["state"] == "fulfilled" and task["version"] >= 2, task
    assert recovered_in < 20, f"recovery took {recovered_in:.1f} s"


def test_paused_worker_is_fenced_off(ts: NodeCluster) -> None:
    """A worker holding a task is paused (SIGSTOP) in a slow step: its heartbeats stop, the
    lease (2 s) lapses, a replacement acquires the task (version 2) and finishes it. When the
    paused worker resumes and completes its step, its fenced settle carries the old version
    and is refused (409): the stored step value and the result stay the replacement's."""
    (victim,) = ts.start_workers([("victim", ts.main)], ttl_ms=2000)
    wf = "fenced"
    # The paused worker's stream stays open, so poll://any@main could route the re-delivery
    # to it (lost until the next retry): target the replacement's pid, which poll://any@G/P
    # prefers once it is connected (and falls back to the victim, the only member, before).
    target = f"poll://any@{ts.main}/replacement-{ts.suffix}"
    client = ts.start_client("rpc", wf, "fenced", [6], group=ts.clients, target=target)
    first = wait_for(
        lambda: ts.check_alive() or ts.records("slow-start"), 20, "the slow step to start"
    )[0]
    assert first.os_pid == victim.pid, first
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        (replacement,) = ts.start_workers([("replacement", ts.main)], ttl_ms=2000)
        ts.release_path.touch()
        result = ts.wait_result(client, timeout=30)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    assert result == {"before": 600, "slow": {"value": 6000, "by": replacement.pid}}
    # The resumed worker finishes its step, then its fence is refused.
    wait_for(
        lambda: ts.check_alive() or victim.pid in pids(ts.records("slow-finish")),
        20,
        "the resumed worker to finish its step",
    )
    wait_for(
        lambda: (
            '"kind":"task.fence","head":{"corrId"' in victim.log()
            and '"status":409' in victim.log()
        ),
        20,
        "the resumed worker's fence to be refused",
    )
    assert_resolved(ts, f"{wf}:1", value={"value": 6000, "by": replacement.pid})
    assert_resolved(ts, wf, value=result)
    task = ts.task(wf)
    assert task is not None and task["state"] == "fulfilled" and task["version"] == 2, task
    assert pids(ts.records("local", "before")) == [victim.pid]
    ts.check_alive()
    ts.assert_no_invalid_replies()


def test_heartbeat_keeps_the_lease(ts: NodeCluster) -> None:
    """A step longer than the lease (ttl 2 s; the SDK heartbeats every 1 s) is not taken away
    from its live worker: over 4 s (2 ttl) the task stays acquired at version 1 by the
    same pid, and its sibling never starts the step."""
    workers = ts.start_workers([("w1", ts.main), ("w2", ts.main)], ttl_ms=2000)
    wf = "heartbeat"
    client = ts.start_client("rpc", wf, "crashy", [3], group=ts.clients, target=ts.main)
    first = wait_for(
        lambda: ts.check_alive() or ts.records("slow-start"), 20, "the slow step to start"
    )[0]
    holder = next(w for w in workers if w.pid == first.os_pid)
    window_end = time.monotonic() + 4.0

    def window_over_or_stolen() -> bool:
        ts.check_alive()
        task = ts.task(wf)
        assert task is not None and task["state"] == "acquired", task
        assert task["version"] == 1 and task["pid"] == holder.sdk_pid, task
        assert len(ts.records("slow-start")) == 1, ts.records("slow-start")
        return time.monotonic() > window_end

    wait_for(window_over_or_stolen, 12, "the observation window", interval=0.25)
    ts.release_path.touch()
    assert ts.wait_result(client, timeout=20) == {"before": 300, "slow": 3000, "total": 3300}
    assert pids(ts.records("slow-start")) == [holder.pid]
    assert pids(ts.records("slow-finish")) == [holder.pid]
    ts.assert_no_invalid_replies()


def wait_settled(ts: NodeCluster, promise_id: str, timeout: float) -> dict:
    """Poll promise.get until `promise_id` is settled."""

    def settled() -> dict | None:
        ts.check_alive()
        promise = ts.find_promise(promise_id)
        return promise if promise and promise["state"] != "pending" else None

    return wait_for(settled, timeout, f"{promise_id} to be settled", interval=0.1)


# ---------------------------------------------------------------------------------------------
# (c) a worker is SIGKILLed while the workflow sleeps


@pytest.mark.parametrize("mode", ["rpc", "run"])
def test_crash_during_sleep(ts: NodeCluster, mode: str) -> None:
    """`sleepy(5, 2000)` is suspended on its 2 s timer when the process that ran it is
    SIGKILLed. The server's sweep resolves the timer, wakes the root task and sends its
    execute to the group, where a replacement replays: the step before the sleep is not run
    again, the one after it runs once.

    rpc: a worker of sdkts-main runs it for a client in sdkts-clients (target
      poll://any@sdkts-main); the client gets the result.
    run: the victim ran it itself with resonate.run (target poll://any@sdkts-main/<victim>):
      the execute for a dead pid must fall back to another connection of the group (§6.1).
    """
    wf = f"sleepy-{mode}"
    if mode == "rpc":
        (victim,) = ts.start_workers([("victim", ts.main)])
        client = ts.start_client("rpc", wf, "sleepy", [5, 2000], group=ts.clients, target=ts.main)
    else:
        victim = client = ts.start_client("run", wf, "sleepy", [5, 2000], group=ts.main)

    def suspended() -> bool:
        ts.check_alive()
        task = ts.task(wf)
        return bool(task and task["state"] == "suspended")

    wait_for(suspended, 20, "the workflow to suspend on its timer")
    timer = ts.promise(f"{wf}:1")
    assert timer["state"] == "pending" and timer["tags"].get("resonate:timer") == "true", timer
    assert pids(ts.records("local", "before-sleep")) == [victim.pid]

    ts.kill(victim)
    killed_at = time.monotonic()
    (replacement,) = ts.start_workers([("replacement", ts.main)])
    expected = {"before": 500, "after": 500, "total": 1000}
    if mode == "rpc":
        assert ts.wait_result(client, timeout=30) == expected
    else:
        wait_settled(ts, wf, timeout=30)
    recovered_in = time.monotonic() - killed_at

    ts.check_alive()
    ts.assert_no_invalid_replies()
    assert pids(ts.records("local", "before-sleep")) == [victim.pid]
    assert pids(ts.records("local", "after-sleep")) == [replacement.pid]
    assert_resolved(ts, wf, value=expected)
    assert_resolved(ts, f"{wf}:0", value=500)
    assert_resolved(ts, f"{wf}:1", resonate_timer="true")
    assert_resolved(ts, f"{wf}:2", value=500)
    assert recovered_in < 20, f"recovery took {recovered_in:.1f} s"


def test_sleep_with_a_worker_in_the_default_group(ts: NodeCluster) -> None:
    """A sleep's timer promise targets poll://any@default (§10.1): with a worker in `default`,
    that worker acquires the timer's task and drops it (no fulfil, no release). The timeout
    must still resolve the timer (its task acquired, not pending) and wake the workflow."""
    (default,) = ts.start_workers([("default-worker", "default")])
    ts.start_workers([("main-1", ts.main)])
    wf = f"sleepy-default-{ts.suffix}"
    client = ts.start_client("rpc", wf, "sleepy", [5, 1500], group=ts.clients, target=ts.main)
    assert ts.wait_result(client, timeout=30) == {"before": 500, "after": 500, "total": 1000}
    assert '"kind":"task.acquire","head":' in default.log()
    assert f'"id":"{wf}:1"' in default.log(), "the default worker never acquired the timer"
    assert_resolved(ts, f"{wf}:1", resonate_timer="true")
    timer_task = ts.task(f"{wf}:1")
    assert timer_task is not None and timer_task["state"] == "fulfilled", timer_task
    ts.assert_no_invalid_replies()


def test_server_restart_during_sleep(
    request: pytest.FixtureRequest, ts_node: str, store_kind: str, tmp_path: Path
) -> None:
    """The server (a dedicated one) is SIGKILLed and restarted on the same store while a
    workflow sleeps: the worker's stream reconnects (SDK back-off), the restarted server's
    sweep resolves the timer from the store, the wake-up reaches the worker (retried every
    2 s until it is back) and the workflow finishes; nothing ran twice."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    with module_server(server_dir, store_kind) as server:
        ts = NodeCluster(ts_node, server, tmp_path)
        add_report_section(request.node, "resonate serve and TypeScript SDK processes", ts.report)
        try:
            wf = "restart"
            runner = ts.start_client("run", wf, "sleepy", [5, 2000], group=ts.main)

            def suspended() -> bool:
                ts.check_alive()
                task = ts.task(wf)
                return bool(task and task["state"] == "suspended")

            wait_for(suspended, 20, "the workflow to suspend on its timer")
            ts.restart_server()
            wait_for(
                lambda: ts.check_alive() or ts.records("reconnected"),
                20,
                "the runner's stream to reconnect",
            )
            promise = wait_settled(ts, wf, timeout=30)
            assert decode(promise["value"]) == {"before": 500, "after": 500, "total": 1000}
            assert pids(ts.records("local", "before-sleep")) == [runner.pid]
            assert pids(ts.records("local", "after-sleep")) == [runner.pid]
            assert_resolved(ts, f"{wf}:1", resonate_timer="true")
            ts.assert_no_invalid_replies()
        finally:
            ts.close()


# ---------------------------------------------------------------------------------------------
# (P6) auth: the SDK's bearer token (head.auth + Authorization: Bearer, and on its stream)


def test_auth_token(
    request: pytest.FixtureRequest, ts_node: str, store_kind: str, tmp_path: Path
) -> None:
    """A server (a dedicated one) with `--api-auth-public-key` (an Ed25519 key; EdDSA tokens
    made by jwt.mjs): SDK processes given an admin token (`token`, which the SDK sends as
    head.auth and as a Bearer header, and on its stream) run a workflow; without a token,
    with an expired one, or outside a prefix, POST / answers 401/403 envelopes and the stream
    401."""
    keys = tmp_path / "keys"
    keys.mkdir()
    made = subprocess.run(
        [ts_node, str(TS_DIR / "jwt.mjs"), str(keys)], capture_output=True, text=True, timeout=30
    )
    assert made.returncode == 0, made.stderr
    tokens = json.loads(made.stdout)
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    extra = ["--api-auth-public-key", str(keys / "public.pem")]
    with module_server(server_dir, store_kind, extra) as server:
        ts = NodeCluster(ts_node, server, tmp_path)
        add_report_section(request.node, "resonate serve and TypeScript SDK processes", ts.report)
        try:
            _check_auth_answers(ts, tokens)
            ts.extra_env["SDK_TOKEN"] = tokens["admin"]
            ts.start_workers([("remote-1", ts.remote)])
            client = ts.start_client("run", "authwf", "workflow", [2, 300, 2], group=ts.main)
            expected = {"base": 200, "one": 4, "squares": [1, 4], "after": 200, "total": 409}
            assert ts.wait_result(client, timeout=30) == expected
            ts.assert_no_invalid_replies()
        finally:
            ts.close()


def _check_auth_answers(ts: NodeCluster, tokens: dict[str, str]) -> None:
    def post(head: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body = {
            "kind": "promise.get",
            "head": {"corrId": "auth", "version": "2026-04-01", **head},
            "data": {"id": "allowed-x"},
        }
        response = ts.api.post("/", json=body, headers=headers or {})
        reply = response.json()
        assert reply["head"]["status"] == response.status_code, reply
        assert reply["kind"] == "promise.get" and reply["head"]["corrId"] == "auth", reply
        return response.status_code, reply["data"]

    assert post({}) == (401, "Unauthorized")
    assert post({"auth": tokens["expired"]}) == (401, "Unauthorized")
    assert post({"auth": "not-a-jwt"}) == (401, "Unauthorized")
    assert post({"auth": tokens["admin"]})[0] == 404  # authenticated: the promise is missing
    bearer = {"Authorization": f"Bearer {tokens['admin']}"}
    assert post({}, bearer)[0] == 404, "the Bearer header is the fallback of head.auth"
    assert post({"auth": tokens["prefixed"]})[0] == 404  # allowed-x is inside its prefix
    assert post({"auth": tokens["noPrefix"]}) == (403, "Forbidden")
    outside = ts.api.post(
        "/",
        json={
            "kind": "promise.get",
            "head": {"corrId": "auth", "version": "2026-04-01", "auth": tokens["prefixed"]},
            "data": {"id": "other-x"},
        },
    )
    assert outside.status_code == 403 and outside.json()["data"] == "Forbidden", outside.text
    with ts.api.stream("GET", "/poll/g/p") as stream:
        assert stream.status_code == 401, stream.status_code
    with ts.api.stream("GET", "/poll/g/p", headers=bearer) as stream:
        assert stream.status_code == 200, stream.status_code


# ---------------------------------------------------------------------------------------------
# (e) an execute that found no worker is re-sent (--tasks-retry-timeout 2s)


def test_late_worker(ts: NodeCluster) -> None:
    """A client calls `square` on sdkts-remote before any worker of that group is connected:
    the first execute finds no connection and is dropped; the task's retry timer (2 s here)
    re-sends it once a worker has joined (§6, §10.3 item 12)."""
    client = ts.start_client("rpc", "late", "square", [6], group=ts.clients, target=ts.remote)
    first_seen: list[float] = []

    def pending_a_while() -> bool:
        ts.check_alive()
        task = ts.task("late")
        if not task or task["state"] != "pending":
            return False
        first_seen.append(time.monotonic())
        return first_seen[-1] - first_seen[0] >= 0.5  # the delivery loop has run (every 100 ms)

    wait_for(pending_a_while, 20, "the task to be pending with no worker", interval=0.1)
    started = time.monotonic()
    (late,) = ts.start_workers([("late-worker", ts.remote)])
    assert ts.wait_result(client, timeout=20) == 36
    took = time.monotonic() - started
    assert pids(ts.records("square", 6)) == [late.pid]
    ts.assert_no_invalid_replies()
    assert took < 10, f"the execute took {took:.1f} s to be re-sent (retry timeout 2 s)"


# ---------------------------------------------------------------------------------------------
# (f) the SDK's client API: resonate.promises.*, resonate.schedules.*, resonate.schedule


def test_client_api_and_schedule(ts: NodeCluster) -> None:
    """ops.mjs drives resonate.promises (create/get/resolve/reject/cancel/createWithTask/
    registerCallback/registerListener), resonate.get handles, resonate.schedules
    (create/get/delete) and resonate.schedule("* * * * * *", "square", 3) whose firing runs on
    a worker of sdkts-remote; every step must pass (the SDK throws on any non-200 answer or
    on a reply its guards reject)."""
    (remote,) = ts.start_workers([("remote-1", ts.remote)])
    out = ts.workdir / "ops.json"
    sdk_pid = f"ops-{ts.suffix}"
    process = ts.spawn(
        "ops", ts.clients, sdk_pid, "ops.mjs", str(out), ts.clients, sdk_pid, ts.remote
    )
    try:
        process.popen.wait(timeout=45)
    except subprocess.TimeoutExpired:
        ts.kill(process)
        raise AssertionError("ops.mjs did not finish within 45 s") from None
    assert out.exists(), f"ops.mjs exited {process.popen.returncode} without a report"
    report = json.loads(out.read_text())
    failed = [s for s in report["steps"] if not s["ok"]]
    assert not failed, "\n".join(f"- {s['name']}: {'; '.join(s['problems'])}" for s in failed)
    ts.assert_no_invalid_replies()
    fired = next(s["value"] for s in report["steps"] if s["name"].startswith("a firing"))
    assert ts.records("square", 3) and ts.records("square", 3)[0].os_pid == remote.pid
    promise = assert_resolved(ts, fired, value=9)
    assert promise["tags"]["resonate:schedule"] == f"{report['prefix']}-tick", promise
    # P3: the same promise through the REST API.
    rest = ts.api.get(f"/promises/{fired}")
    assert rest.status_code == 200 and rest.json()["state"] == "RESOLVED", rest.text


# ---------------------------------------------------------------------------------------------
# Operator halt/continue under a live worker; many workflows at once


def test_halt_and_continue(ts: NodeCluster) -> None:
    """An operator halts a workflow suspended on a latent promise (task.halt). Settling that
    promise must not wake it: over 1.5 s the task stays halted and nothing runs. task.continue
    sends the execute again and the live worker finishes it (§3.2, §4.2)."""
    ts.start_workers([("main-1", ts.main)])
    wf = "halted"
    client = ts.start_client("rpc", wf, "approval", [3], group=ts.clients, target=ts.main)
    awaited = wait_for(
        lambda: ts.check_alive() or ts.records("awaiting"), 20, "the workflow to await"
    )[0].key

    def suspended() -> bool:
        task = ts.task(wf)
        return bool(task and task["state"] == "suspended")

    wait_for(suspended, 20, "the workflow to suspend")
    assert ts.call("task.halt", {"id": wf})["head"]["status"] == 200
    value = {"headers": {}, "data": base64.b64encode(b'"ok"').decode()}
    settle = ts.call("promise.settle", {"id": awaited, "state": "resolved", "value": value})
    assert settle["head"]["status"] == 200, settle
    window_end = time.monotonic() + 1.5
    result_path = client.result_path
    assert result_path is not None

    def still_halted() -> bool:
        task = ts.task(wf)
        assert task is not None and task["state"] == "halted", task
        assert len(ts.records("awaiting")) == 1, "the halted workflow ran again"
        assert not result_path.exists(), "the halted workflow finished"
        return time.monotonic() > window_end

    wait_for(still_halted, 10, "the observation window", interval=0.1)
    assert ts.call("task.continue", {"id": wf})["head"]["status"] == 200
    assert ts.wait_result(client, timeout=20) == {"before": 300, "approved": "ok"}
    task = ts.task(wf)
    assert task is not None and task["state"] == "fulfilled", task
    ts.assert_no_invalid_replies()


def test_many_workflows_at_once(ts: NodeCluster) -> None:
    """8 workflows started at once (one client, concurrent resonate.rpc), each with a local
    step, a remote call, a 0.5 s sleep and a fan-out of 2, on 2 workers of sdkts-main and 2
    of sdkts-remote: every result is right, every step ran once, and no reply was an error
    the SDK would have to retry (a store conflict surfacing as a 500, …)."""
    ts.start_workers(
        [("main-1", ts.main), ("main-2", ts.main), ("remote-1", ts.remote), ("remote-2", ts.remote)]
    )
    count = 8
    client = ts.start_client(
        "rpc-many", "many", "workflow", [count, 3, 500, 2], group=ts.clients, target=ts.main
    )
    results = ts.wait_result(client, timeout=40)
    expected = {"base": 300, "one": 9, "squares": [1, 4], "after": 300, "total": 614}
    assert results == [expected] * count
    ts.check_alive()
    ts.assert_no_invalid_replies()
    for name in ("base", "after"):
        assert len(ts.records("local", name)) == count, ts.records("local", name)
    assert len(ts.records("square", 3)) == count  # the one remote call of each
    assert len(ts.records("square", 1)) == count and len(ts.records("square", 2)) == count
    for k in range(count):
        assert_resolved(ts, f"many-{k}", value=expected)


# ---------------------------------------------------------------------------------------------
# The package's second engine: async/await, eager operations (concurrent fences)


def test_async_engine(ts: NodeCluster) -> None:
    """`fanAsync(5, 500)` on the async/await engine (@resonatehq/sdk/async), run by a client
    of sdkts-main: a local step, 5 ctx.rpc started at once (concurrent task.fence creates
    on one task version) and gathered with Promise.all on two generator-engine workers of
    sdkts-remote, a 0.5 s durable sleep, then two concurrent local steps."""
    remote = ts.start_workers([("remote-1", ts.remote), ("remote-2", ts.remote)])
    wf = "fan-async"
    client = ts.start_client("run-async", wf, "fanAsync", [5, 500], group=ts.main)
    result = ts.wait_result(client, timeout=30)
    assert result == {"base": 500, "squares": [1, 4, 9, 16, 25], "locals": [100, 200]}
    ts.check_alive()
    ts.assert_no_invalid_replies()
    for name in ("base-async", "la", "lb"):
        assert pids(ts.records("local", name)) == [client.pid], (name, ts.records("local"))
    remote_pids = {p.pid for p in remote}
    for i in range(1, 6):
        runs = ts.records("square", i)
        assert len(runs) == 1 and runs[0].os_pid in remote_pids, (i, runs)
    assert_resolved(ts, wf, value=result)
    task = ts.task(wf)
    assert task is not None and task["state"] == "fulfilled", task


# ---------------------------------------------------------------------------------------------
# task.create on a live task (409) and on a finished one; a child that times out


def test_run_twice(ts: NodeCluster) -> None:
    """Two processes resonate.run the same id: the first gets the task (200 acquired) and
    runs it; the second gets 409 and only listens, and is unblocked with the same result.
    A third run after completion gets the fulfilled task (200) and the stored result at
    once. The function ran once."""
    first = ts.start_client("run", "dup", "crashy", [4], group=ts.main)
    wait_for(lambda: ts.check_alive() or ts.records("slow-start"), 20, "the first run")
    second = ts.start_client("run", "dup", "crashy", [4], group=ts.main)
    wait_for(lambda: '"status":409' in second.log(), 20, "the second run's task.create to get 409")
    ts.release_path.touch()
    expected = {"before": 400, "slow": 4000, "total": 4400}
    assert ts.wait_result(first, timeout=20) == expected
    assert ts.wait_result(second, timeout=20) == expected
    third = ts.start_client("run", "dup", "crashy", [4], group=ts.main)
    assert ts.wait_result(third, timeout=20) == expected
    assert pids(ts.records("slow-start")) == [first.pid]
    assert pids(ts.records("local", "before")) == [first.pid]
    ts.assert_no_invalid_replies()


def test_child_timeout(ts: NodeCluster) -> None:
    """A ctx.rpc to a group nobody serves, with a 1.5 s timeout: the server's timeout sweep
    settles the child rejected_timedout (it has a target), the cascade wakes the suspended
    workflow, and the SDK raises the rejection into it."""
    ts.start_workers([("main-1", ts.main)])
    begin = time.monotonic()
    client = ts.start_client(
        "rpc", "impatient", "impatient", [1500], group=ts.clients, target=ts.main
    )
    result = ts.wait_result(client, timeout=20)
    assert result["caught"] is True, result
    assert time.monotonic() - begin >= 1.5
    child = ts.promise("impatient:0")
    assert child["state"] == "rejected_timedout", child
    assert child["settledAt"] == child["timeoutAt"], child
    assert_resolved(ts, "impatient", value=result)
    ts.assert_no_invalid_replies()


# ---------------------------------------------------------------------------------------------
# (P3) a REST client settles the promise an SDK workflow awaits


def test_rest_settles_an_awaited_promise(ts: NodeCluster) -> None:
    """`approval` awaits a latent promise (ctx.promise(): no target); the test resolves it
    through the REST API (PATCH /promises/{id}); the one settlement cascade wakes the
    suspended 2026 task and the workflow returns the REST value (protocol-2026.md P3)."""
    ts.start_workers([("main-1", ts.main)])
    wf = "approval"
    client = ts.start_client("rpc", wf, "approval", [2], group=ts.clients, target=ts.main)
    awaited = wait_for(
        lambda: ts.check_alive() or ts.records("awaiting"), 20, "the workflow to await"
    )[0].key
    assert awaited == f"{wf}:1", awaited

    def suspended() -> bool:
        task = ts.task(wf)
        return bool(task and task["state"] == "suspended")

    wait_for(suspended, 20, "the workflow to suspend")
    value = base64.b64encode(json.dumps({"by": "rest"}).encode()).decode()
    response = ts.api.patch(
        f"/promises/{awaited}", json={"state": "RESOLVED", "value": {"headers": {}, "data": value}}
    )
    assert response.status_code in (200, 201), response.text
    assert ts.wait_result(client, timeout=20) == {"before": 200, "approved": {"by": "rest"}}
    assert_resolved(ts, awaited, value={"by": "rest"})
    ts.assert_no_invalid_replies()


# ---------------------------------------------------------------------------------------------
# (d) every request kind, checked with the SDK's own guards


def test_reply_shapes(ts: NodeCluster) -> None:
    """shape.mjs sends every kind of §3 with fetch and checks each reply with the SDK's
    exported guards (isPromiseGetRes … isScheduleSearchRes, isExecuteMsg, isUnblockMsg), HTTP
    status == head.status, kind/corrId echo, no nulls, string data on errors, and the
    semantics of each step (see the script)."""
    out = ts.workdir / "shape.json"
    env = {"SDK_WRAP_FETCH": "0", "SDK_POLL_URL": ts.server.poll_url}
    process = ts.spawn("shape", "-", "-", "shape.mjs", str(out), env=env)
    try:
        process.popen.wait(timeout=60)
    except subprocess.TimeoutExpired:
        ts.kill(process)
        raise AssertionError("shape.mjs did not finish within 60 s") from None
    assert out.exists(), f"shape.mjs exited {process.popen.returncode} without a report"
    report = json.loads(out.read_text())
    kinds = {c["kind"] for c in report["checks"]}
    missing = EVERY_KIND - kinds
    assert not missing, f"kinds not exercised: {sorted(missing)}"
    failed = [c for c in report["checks"] if not c["ok"]]
    assert not failed, f"{len(failed)} of {len(report['checks'])} checks failed:\n" + "\n".join(
        f"- {c['name']}: {'; '.join(c['problems'])}\n    sent:  {c.get('sent')}\n"
        f"    reply: {c.get('reply')}"
        for c in failed
    )


EVERY_KIND = {
    "promise.get",
    "promise.create",
    "promise.settle",
    "promise.register_callback",
    "promise.register_listener",
    "promise.search",
    "task.create",
    "task.acquire",
    "task.release",
    "task.fulfill",
    "task.suspend",
    "task.fence",
    "task.heartbeat",
    "task.get",
    "task.search",
    "task.halt",
    "task.continue",
    "schedule.create",
    "schedule.get",
    "schedule.delete",
    "schedule.search",
    "sse",
}


def test_package_pins_the_sdk() -> None:
    """package.json pins the SDK exactly and the lock file agrees (reproducible installs)."""
    package = json.loads((TS_DIR / "package.json").read_text())
    assert package["dependencies"] == {"@resonatehq/sdk": "0.11.5"}
    lock = json.loads((TS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@resonatehq/sdk"]["version"] == "0.11.5"
    assert all("integrity" in v for k, v in lock["packages"].items() if k), "unlocked package"
