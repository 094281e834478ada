"""End-to-end: the official Python SDK (resonate-sdk 0.4.12) against a real `resonate serve`.

The application is tests/sdk/workers/app.py; processes run in their own virtualenv (see
conftest.py). Groups: `workflows` runs the durable workflows, `workers` the functions they call
remotely (`poll://workers`), `clients` the processes that start a workflow with
`resonate.trigger` and wait for its result (a subscription answered by a notify). The tests of a
store share a server: each test's processes join these groups suffixed for it (`sdk.group`,
`sdk.target`), and its promise ids are its own.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.sdk.conftest import SdkCluster, SdkProcess, wait_for

pytestmark = pytest.mark.sdk


def decode(value: dict[str, Any]) -> Any:
    """The JSON a Value carries (base64 of JSON), or None when it has no data."""
    data = value.get("data")
    return None if data is None else json.loads(base64.b64decode(data))


def assert_resolved(sdk: SdkCluster, promise_id: str, value: Any = ..., **tags: str) -> dict:
    promise = sdk.promise(promise_id)
    assert promise["state"] == "RESOLVED", promise
    if value is not ...:
        assert decode(promise["value"]) == value, promise
    for key, expected in tags.items():
        assert promise.get("tags", {}).get(key.replace("_", ":")) == expected, promise
    return promise


def by_pid(processes: list[SdkProcess], os_pid: int) -> SdkProcess:
    matches = [p for p in processes if p.pid == os_pid]
    assert matches, f"pid {os_pid} is none of {[(p.name, p.pid) for p in processes]}"
    return matches[0]


# ---------------------------------------------------------------------------------------------
# (a) local step + fan-out to another group + durable sleep


@pytest.mark.parametrize("mode", ["trigger", "run"])
def test_fanout_workflow(sdk: SdkCluster, mode: str) -> None:
    """A workflow does a durable local step, fans out 3 remote calls to the `workers` group,
    sleeps 1 s durably and returns a value computed from all of them.

    trigger: a client in group `clients` starts it with resonate.trigger (logical invoke tag
      `poll://workflows`, routed to the workflow worker; result via subscription/notify).
    run: the client itself is in `workflows` and runs it with resonate.run (POST /promises/task,
      invoke tag = the JSON of its own recv; callbacks come back to that process).
    """
    specs = [("workers-1", "workers"), ("workers-2", "workers")]
    if mode == "trigger":
        specs.append(("workflows-1", "workflows"))
    started = sdk.start_workers(specs)
    workers = [p for p in started if p.group == "workers"]

    wf = f"fanout-{mode}"
    begin = time.monotonic()
    if mode == "trigger":
        client = sdk.run_client("trigger", wf, sdk.target("workflows"), "fanout_workflow", 3)
    else:
        client = sdk.run_client("run", wf, "workflows", "fanout_workflow", 3)
    result = sdk.wait_result(client, timeout=40)
    elapsed = time.monotonic() - begin

    assert result == {"base": 300, "squares": [1, 4, 9], "after": 300, "total": 614}
    assert elapsed >= 1.0, f"the 1 s durable sleep took no time ({elapsed:.2f} s)"
    sdk.check_alive()

    # Each local step ran exactly once, in the process that runs the workflow.
    workflow_runner = client if mode == "run" else by_pid(started, sdk.records("local")[0].os_pid)
    assert workflow_runner.group == "workflows"
    for name in ("base", "after-sleep"):
        runs = sdk.records("local", name)
        assert [r.os_pid for r in runs] == [workflow_runner.pid], runs
    # Each remote call ran exactly once, in the workers group.
    for i in (1, 2, 3):
        runs = sdk.records("square-start", i)
        assert len(runs) == 1, runs
        assert by_pid(workers, runs[0].os_pid).group == "workers"

    # The server's view, through our HTTP API.
    root = assert_resolved(sdk, wf, value=result)
    assert decode(root["param"]) == {"func": "fanout_workflow", "args": [3], "kwargs": {}}
    invoke_tag = root["tags"]["resonate:invoke"]
    if mode == "trigger":
        assert invoke_tag == sdk.target("workflows")
    else:
        client_sdk_pid = sdk.records("client-started", wf)[0].sdk_pid
        assert json.loads(invoke_tag) == {
            "type": "poll",
            "data": {"group": sdk.group("workflows"), "id": client_sdk_pid},
        }
    assert_resolved(sdk, f"{wf}.1", value=300)  # local step
    for n, i in enumerate((1, 2, 3), start=2):  # fan-out
        child = assert_resolved(
            sdk, f"{wf}.{n}", value=i * i, resonate_invoke=sdk.target("workers")
        )
        assert decode(child["param"]) == {"func": "square", "args": [i], "kwargs": {}}
    sleep = assert_resolved(sdk, f"{wf}.5", value=None, resonate_timeout="true")
    assert sleep["timeout"] - sleep["createdOn"] >= 1000 - 50, sleep
    assert_resolved(sdk, f"{wf}.6", value=300)  # local step after the sleep
    assert sdk.find_promise(f"{wf}.7") is None


# ---------------------------------------------------------------------------------------------
# (b) a worker is SIGKILLed in the middle of a remote call


def test_crash_recovery_mid_remote_call(sdk: SdkCluster) -> None:
    """The workflow calls `process` in the `workers` group (two processes). `process` runs a
    quick local step, then a slow one that blocks on a release file. The worker running it is
    SIGKILLed mid-call; its lease expires (~5 s), the invoke task is re-issued (counter 2) to
    the sibling, which replays `process`: the completed step is deduplicated by the server
    (POST /promises answers the resolved promise), only the interrupted step runs again."""
    started = sdk.start_workers(
        [("workflows-1", "workflows"), ("workers-1", "workers"), ("workers-2", "workers")]
    )
    workflow_worker = started[0]
    workers = started[1:]
    wf = "crash"
    client = sdk.run_client("trigger", wf, sdk.target("workflows"), "crash_workflow", 7)

    first = wait_for(
        lambda: sdk.check_alive() or sdk.records("slow-start"), 30, "the slow step to start"
    )[0]
    victim = by_pid(workers, first.os_pid)
    survivor = next(p for p in workers if p is not victim)
    # The quick step is durably done before the slow one starts.
    assert_resolved(sdk, f"{wf}.2.1", value=700)
    assert sdk.promise(f"{wf}.2.2")["state"] == "PENDING"

    sdk.kill(victim)
    killed_at = time.monotonic()
    sdk.release_path.touch()

    result = sdk.wait_result(client, timeout=45)
    recovered_in = time.monotonic() - killed_at
    assert result == {"before": 700, "processed": 7700, "total": 8400}
    sdk.check_alive()
    assert workflow_worker.alive() and survivor.alive()

    # The interrupted step ran again on the survivor; it finished once.
    starts = sdk.records("slow-start")
    assert [r.os_pid for r in starts] == [victim.pid, survivor.pid], starts
    finishes = sdk.records("slow-finish")
    assert [r.os_pid for r in finishes] == [survivor.pid], finishes
    # Steps that had completed before the crash did not run again.
    prepare = sdk.records("local", "prepare")
    assert [r.os_pid for r in prepare] == [victim.pid], prepare
    before = sdk.records("local", "before")
    assert [r.os_pid for r in before] == [workflow_worker.pid], before

    assert_resolved(sdk, wf, value=result)
    assert_resolved(sdk, f"{wf}.1", value=700)
    assert_resolved(sdk, f"{wf}.2", value=7700, resonate_invoke=sdk.target("workers"))
    assert_resolved(sdk, f"{wf}.2.1", value=700)
    assert_resolved(sdk, f"{wf}.2.2", value=7000)
    task = sdk.task(f"__invoke:{wf}.2")
    if task is not None:  # operator extension GET /tasks/{id}
        assert task["state"] == "COMPLETED" and task["counter"] >= 2, task
    assert recovered_in < 40, f"recovery took {recovered_in:.1f} s"


# ---------------------------------------------------------------------------------------------
# (c) the workflow's process is SIGKILLed during a durable sleep


def test_crash_recovery_during_durable_sleep(sdk: SdkCluster) -> None:
    """Two workflow workers. The one running the workflow is SIGKILLed while the workflow is
    in a 3 s durable sleep. When the timer fires, the resume task addressed to the dead pid
    must reach the sibling (routing falls back to any live member of the group), which
    replays: the step before the sleep is not run again, the step after it runs once."""
    workflow_workers = sdk.start_workers(
        [("workflows-1", "workflows"), ("workflows-2", "workflows")]
    )
    wf = "sleepy"
    client = sdk.run_client("trigger", wf, sdk.target("workflows"), "sleepy_workflow", 5)

    first = wait_for(
        lambda: sdk.check_alive() or sdk.records("local", "before-sleep"),
        30,
        "the step before the sleep",
    )[0]
    victim = by_pid(workflow_workers, first.os_pid)
    survivor = next(p for p in workflow_workers if p is not victim)

    def sleeping() -> bool:
        step, timer = sdk.find_promise(f"{wf}.1"), sdk.find_promise(f"{wf}.2")
        return bool(step and step["state"] == "RESOLVED" and timer is not None)

    wait_for(sleeping, 10, "the step to be resolved and the sleep timer created")
    # Prefer killing once the worker has given its task back (it completes the invoke task
    # right after registering the timer's callback); then recovery goes through the resume
    # task only. Without the operator endpoint, kill now (the lease expiry also recovers).
    if sdk.task(f"__invoke:{wf}") is not None:
        wait_for(
            lambda: (sdk.task(f"__invoke:{wf}") or {}).get("state") == "COMPLETED",
            10,
            "the invoke task to be completed",
        )
    sdk.kill(victim)
    killed_at = time.monotonic()

    result = sdk.wait_result(client, timeout=40)
    recovered_in = time.monotonic() - killed_at
    assert result == {"before": 500, "after": 500, "total": 1000}
    sdk.check_alive()
    assert survivor.alive()

    before = sdk.records("local", "before-sleep")
    assert [r.os_pid for r in before] == [victim.pid], before
    after = sdk.records("local", "after-sleep")
    assert [r.os_pid for r in after] == [survivor.pid], after

    assert_resolved(sdk, wf, value=result)
    assert_resolved(sdk, f"{wf}.1", value=500)
    assert_resolved(sdk, f"{wf}.2", value=None, resonate_timeout="true")
    assert_resolved(sdk, f"{wf}.3", value=500)
    assert recovered_in < 35, f"recovery took {recovered_in:.1f} s"
