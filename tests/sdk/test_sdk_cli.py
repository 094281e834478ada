"""Acceptance: the CLI drives real SDK workers (resonate-sdk 0.4.12) in two groups.

"With workers connected to two groups, `resonate invoke` of a registered function returns its
result, and `resonate tree` shows the whole call graph."

Group `workflows` runs `fanout_workflow` (tests/sdk/workers/app.py): a durable local step, three
remote calls to `square` in group `workers`, a 1 s durable sleep and another local step. The
workflow is started by our own CLI, `resonate invoke … --target poll://any@workflows --wait`, as
a subprocess; then `resonate tree` is run on its root promise, as JSON and as plain text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.sdk.conftest import SdkCluster

pytestmark = pytest.mark.sdk

CLI_TIMEOUT = 60  # seconds; subprocess.run kills the CLI when it is exceeded
EXPECTED = {"base": 300, "squares": [1, 4, 9], "after": 300, "total": 614}


def run_cli(sdk: SdkCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Our CLI (`python -m resonate`, this interpreter) against the test's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
    env.pop("NO_COLOR", None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return subprocess.run(
        [sys.executable, "-m", "resonate", *args, "-S", sdk.server.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def invoke_fanout(sdk: SdkCluster, wf: str) -> subprocess.CompletedProcess[str]:
    """`resonate invoke <wf> --func fanout_workflow --arg 3 … --wait` in group `workflows` (the
    test's: `sdk.group("workflows")`)."""
    return run_cli(
        sdk,
        "invoke",
        wf,
        "--func",
        "fanout_workflow",
        "--arg",
        "3",
        "--json-args",
        "--target",
        f"poll://any@{sdk.group('workflows')}",
        "--wait",
        "--wait-timeout",
        "40s",
    )


def flatten(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every node of a `tree -o json` document by id (each id once)."""
    nodes = {node["id"]: node}
    for child in node["children"]:
        for promise_id, sub in flatten(child).items():
            assert promise_id not in nodes, f"{promise_id} appears twice"
            nodes[promise_id] = sub
    return nodes


def test_cli_invoke_and_tree_with_two_groups(sdk: SdkCluster) -> None:
    started = sdk.start_workers(
        [("workflows-1", "workflows"), ("workers-1", "workers"), ("workers-2", "workers")]
    )
    workflow_worker = started[0]
    workers = started[1:]
    wf = "cli-fanout"

    # resonate invoke … --wait: creates the root promise, waits, prints the result.
    invoked = invoke_fanout(sdk, wf)
    sdk.check_alive()
    assert invoked.returncode == 0, (invoked.returncode, invoked.stdout, invoked.stderr)
    assert json.loads(invoked.stdout) == EXPECTED, invoked.stdout
    assert "created" in invoked.stderr, invoked.stderr

    # The workflow ran in `workflows`, each remote call once in `workers`.
    for name in ("base", "after-sleep"):
        runs = sdk.records("local", name)
        assert [r.os_pid for r in runs] == [workflow_worker.pid], runs
    worker_pids = {p.pid for p in workers}
    for i in (1, 2, 3):
        runs = sdk.records("square-start", i)
        assert len(runs) == 1 and runs[0].os_pid in worker_pids, runs

    # resonate tree -o json: the nested call graph.
    shown = run_cli(sdk, "tree", wf, "-o", "json")
    assert shown.returncode == 0, (shown.returncode, shown.stdout, shown.stderr)
    graph = json.loads(shown.stdout)
    assert graph["id"] == wf
    assert graph["state"] == "RESOLVED"
    # Labels come from what the SDK stores: the root and the remote calls carry their function
    # in the param and the `resonate:invoke` tag; a local step stores no function name.
    assert graph["label"] == "(rpc fanout_workflow)"
    children = {child["id"]: child for child in graph["children"]}
    # .1 local step, .2-.4 the fan-out, .5 the sleep, .6 the local step after it.
    assert list(children) == [f"{wf}.{n}" for n in range(1, 7)], list(children)
    for child in children.values():
        assert child["state"] == "RESOLVED", child
        assert child["children"] == [], child
    labels = {promise_id: child["label"] for promise_id, child in children.items()}
    assert labels == {
        f"{wf}.1": "(run)",
        f"{wf}.2": "(rpc square)",
        f"{wf}.3": "(rpc square)",
        f"{wf}.4": "(rpc square)",
        f"{wf}.5": "(sleep)",
        f"{wf}.6": "(run)",
    }, labels
    nodes = flatten(graph)
    assert len(nodes) == 7, sorted(nodes)

    # resonate tree --no-color: one line per promise, `+` for resolved, box drawing.
    text = run_cli(sdk, "tree", wf, "--no-color")
    assert text.returncode == 0, (text.returncode, text.stdout, text.stderr)
    lines = text.stdout.splitlines()
    assert len(lines) == len(nodes), text.stdout
    assert lines == [
        f"+ {wf} (rpc fanout_workflow)",
        f"├── + {wf}.1 (run)",
        f"├── + {wf}.2 (rpc square)",
        f"├── + {wf}.3 (rpc square)",
        f"├── + {wf}.4 (rpc square)",
        f"├── + {wf}.5 (sleep)",
        f"└── + {wf}.6 (run)",
    ], lines
    assert "\x1b[" not in text.stdout, "colour codes with --no-color"

    sdk.check_alive()
