"""What the operator CLI shows of the 2026-04-01 protocol (protocol-2026.md §0 P10), end to end
against a real `resonate serve` on both stores: promises and tasks are created by POSTing
envelopes, as the current SDKs do, then read with `resonate tasks`, `promises` and `tree`.

The workflow (ids of the Python SDK 0.8.1: 1-based, `:`-separated):

    <uid>              task.create: acquired v1 by <uid>-worker (target poll://any@g)
    ├── <uid>:1        fenced create with a target (a remote call): its own task, pending v0;
    │   │              then acquired v1 by <uid>-remote
    │   └── <uid>:1:1  fenced create by <uid>:1, local (no target, no task)
    ├── <uid>:2        fenced create of a durable sleep (resonate:timer)
    └── <uid>:3        fenced create of a local step, resolved
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from resonate.client import ResonateClient, TaskQuery
from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess

VERSION = "2026-04-01"
HOUR_MS = 3_600_000
NOBODY = "poll://any@nobody"


def now_ms() -> int:
    return int(time.time() * 1000)


def param(func: str) -> dict[str, str]:
    document = {"func": func, "args": [], "version": 1}
    return {"data": base64.b64encode(json.dumps(document).encode()).decode()}


class Envelopes:
    """`POST /` with the 2026 envelope, as the SDKs send it."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, kind: str, data: dict[str, Any], status: int = 200) -> Any:
        head = {"corrId": uuid.uuid4().hex, "version": VERSION}
        answer = self.http.post("/", json={"kind": kind, "head": head, "data": data})
        assert answer.status_code == status, answer.text
        return answer.json()["data"]

    @staticmethod
    def create(promise_id: str, tags: dict[str, str], func: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": promise_id, "timeoutAt": now_ms() + HOUR_MS, "tags": tags}
        if func:
            data["param"] = param(func)
        return {"kind": "promise.create", "head": {"corrId": "c", "version": VERSION}, "data": data}

    def fence(self, task_id: str, version: int, action: dict[str, Any]) -> Any:
        return self.call("task.fence", {"id": task_id, "version": version, "action": action})


def lineage(origin: str, branch: str, parent: str, **extra: str) -> dict[str, str]:
    return {
        "resonate:origin": origin,
        "resonate:branch": branch,
        "resonate:parent": parent,
        **extra,
    }


@pytest.fixture
def envelopes(server: ServerProcess) -> Iterator[Envelopes]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield Envelopes(http)


@pytest.fixture
def workflow(envelopes: Envelopes, uid: str) -> str:
    return build_workflow(envelopes, uid)


def build_workflow(envelopes: Envelopes, uid: str) -> str:
    """The workflow of the module's docstring, rooted at `uid`; its root id."""
    root = uid
    target = {"resonate:target": "poll://any@g", "resonate:scope": "global"}
    created = envelopes.call(
        "task.create",
        {
            "pid": f"{uid}-worker",
            "ttl": HOUR_MS,
            "action": envelopes.create(root, lineage(root, root, root, **target), "main"),
        },
    )
    assert created["task"]["state"] == "acquired"
    remote = envelopes.create(f"{root}:1", lineage(root, f"{root}:1", root, **target), "remote")
    envelopes.fence(root, 1, remote)
    sleep = lineage(root, f"{root}:2", root, **{"resonate:timer": "true"})
    envelopes.fence(root, 1, envelopes.create(f"{root}:2", sleep))
    step = lineage(root, root, root, **{"resonate:scope": "local"})
    envelopes.fence(root, 1, envelopes.create(f"{root}:3", step, "fetch"))
    settle = {"id": f"{root}:3", "state": "resolved", "value": {}}
    envelopes.fence(
        root,
        1,
        {"kind": "promise.settle", "head": {"corrId": "s", "version": VERSION}, "data": settle},
    )
    acquired = envelopes.call(
        "task.acquire", {"id": f"{root}:1", "version": 0, "pid": f"{uid}-remote", "ttl": HOUR_MS}
    )
    assert acquired["task"]["version"] == 1
    inner = lineage(root, f"{root}:1", f"{root}:1", **{"resonate:scope": "local"})
    envelopes.fence(f"{root}:1", 1, envelopes.create(f"{root}:1:1", inner, "inner"))
    return root


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.stderr
    return result


def rows(result: CliResult) -> list[list[str]]:
    return [line.split() for line in ok(result).stdout.splitlines()]


def stored_task(envelopes: Envelopes, task_id: str) -> dict[str, Any]:
    return dict(envelopes.call("task.get", {"id": task_id})["task"])


# --- tasks --------------------------------------------------------------------------------------


def test_tasks_search_lists_2026_tasks_with_a_protocol_column(
    cli: RunCli, envelopes: Envelopes, workflow: str, uid: str
) -> None:
    root = workflow
    cli("promises", "create", f"{uid}.rest", "-t", "1h", "--tag", f"resonate:invoke={NOBODY}")
    table = rows(cli("tasks", "search", "--root-promise-id", root, "--no-color"))
    assert table[0] == ["ID", "PROTOCOL", "STATE", "COUNTER", "PROCESS", "ROOT", "EXPIRES"]
    assert table[1:] == [
        [root, "2026", "ACQUIRED", "1", f"{uid}-worker", root],
        [f"{root}:1", "2026", "ACQUIRED", "1", f"{uid}-remote", root],
    ]
    # A REST task of a REST root next to them.
    rest = rows(cli("tasks", "search", "--root-promise-id", f"{uid}.rest", "--no-color"))
    assert rest[1][:4] == [f"__invoke:{uid}.rest", "rest", "INIT", "1"]

    # -o json: each task as stored for its protocol; 2026 ones marked with the protocol.
    page = ok(cli("tasks", "search", "--root-promise-id", root, "-o", "json")).json()
    assert page == {
        "cursor": None,
        "tasks": [
            {**stored_task(envelopes, root), "protocol": VERSION},
            {**stored_task(envelopes, f"{root}:1"), "protocol": VERSION},
        ],
    }
    assert page["tasks"][0] == {
        "id": root,
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": HOUR_MS,
        "pid": f"{uid}-worker",
        "protocol": VERSION,
    }
    rest_page = ok(cli("tasks", "search", "--root-promise-id", f"{uid}.rest", "-o", "json"))
    assert "protocol" not in rest_page.json()["tasks"][0]


def test_protocol_and_state_choose_the_model(cli: RunCli, workflow: str, uid: str) -> None:
    root = workflow
    cli("promises", "create", f"{uid}:rest", "-t", "1h", "--tag", f"resonate:invoke={NOBODY}")
    both = ok(cli("tasks", "search", f"*{uid}*", "-o", "id")).stdout.splitlines()
    assert both == [f"__invoke:{uid}:rest", root, f"{root}:1"]
    only_rest = cli("tasks", "search", f"*{uid}*", "--protocol", "rest", "-o", "id")
    assert ok(only_rest).stdout.splitlines() == [f"__invoke:{uid}:rest"]
    only_2026 = cli("tasks", "search", f"*{uid}*", "--protocol", "2026", "-o", "id")
    assert ok(only_2026).stdout.splitlines() == [root, f"{root}:1"]
    # A REST state reads REST tasks only; a 2026 state 2026 tasks only (any case).
    init = cli("tasks", "search", f"*{uid}*", "--state", "INIT", "-o", "id")
    assert ok(init).stdout.splitlines() == [f"__invoke:{uid}:rest"]
    acquired = cli("tasks", "search", f"{uid}*", "--state", "acquired", "-o", "id")
    assert ok(acquired).stdout.splitlines() == [root, f"{root}:1"]
    by_process = cli("tasks", "search", "--process-id", f"{uid}-remote", "-o", "id")
    assert ok(by_process).stdout.splitlines() == [f"{root}:1"]
    none = cli("tasks", "search", f"{uid}*", "--state", "halted", "-o", "json")
    assert ok(none).json() == {"cursor": None, "tasks": []}


def test_2026_pages_follow_cursors(cli: RunCli, workflow: str) -> None:
    root = workflow
    search = ("tasks", "search", "--root-promise-id", root, "--protocol", "2026")
    first = ok(cli(*search, "--limit", "1", "-o", "json")).json()
    assert [task["id"] for task in first["tasks"]] == [root]
    cursor = first["cursor"]
    assert cursor and cursor.startswith("2026.")
    noted = cli(*search, "--limit", "1")
    assert f"more results: --cursor {cursor}" in noted.stderr
    # The cursor alone continues the same search (filters included), as a REST cursor does.
    rest: list[str] = []
    while cursor:  # as with REST cursors, the last one may lead to an empty page
        page = ok(cli("tasks", "search", "--cursor", cursor, "-o", "json")).json()
        rest.extend(task["id"] for task in page["tasks"])
        cursor = page["cursor"]
    assert rest == [f"{root}:1"]
    every = ok(cli(*search, "--limit", "1", "--all", "-o", "jsonl")).stdout.splitlines()
    assert [json.loads(line)["id"] for line in every] == [root, f"{root}:1"]
    assert all(json.loads(line)["protocol"] == VERSION for line in every)
    bad = cli("tasks", "search", "--cursor", "2026.not-a-cursor")
    assert bad.exit_code == 2 and "--cursor" in bad.stderr


def test_tasks_get_reads_a_2026_task_when_no_rest_task_has_the_id(
    cli: RunCli, envelopes: Envelopes, workflow: str, uid: str
) -> None:
    root = workflow
    as_json = ok(cli("tasks", "get", root, "-o", "json")).json()
    assert as_json == {**stored_task(envelopes, root), "protocol": VERSION}
    table = dict(line.split(None, 1) for line in ok(cli("tasks", "get", root)).stdout.splitlines())
    assert table["state"] == "ACQUIRED"
    assert (table["version"], table["pid"], table["protocol"]) == ("1", f"{uid}-worker", VERSION)
    assert ok(cli("tasks", "get", f"{root}:1", "-o", "id")).stdout == f"{root}:1\n"
    # No task at all (a promise without a target has none): the REST 404, exit 4.
    missing = cli("tasks", "get", f"{root}:2")
    assert missing.exit_code == 4
    assert "not found" in missing.stderr
    # A REST task is shown as before, without a protocol.
    cli("promises", "create", f"{uid}.r", "-t", "1h", "--tag", f"resonate:invoke={NOBODY}")
    rest = ok(cli("tasks", "get", f"__invoke:{uid}.r", "-o", "json")).json()
    assert rest["state"] == "INIT" and "protocol" not in rest


def test_rest_only_verbs_leave_2026_tasks_alone(cli: RunCli, workflow: str) -> None:
    claimed = cli("tasks", "claim", workflow, "-c", "1")
    assert claimed.exit_code == 4


# --- promises and tree --------------------------------------------------------------------------


def test_promises_get_and_search_show_2026_promises(cli: RunCli, workflow: str) -> None:
    root = workflow
    promise = ok(cli("promises", "get", root, "-o", "json")).json()
    assert promise["state"] == "PENDING"
    assert promise["tags"]["resonate:target"] == "poll://any@g"
    step = ok(cli("promises", "get", f"{root}:3", "-o", "json")).json()
    assert step["state"] == "RESOLVED"
    found = cli("promises", "search", f"{root}*", "--tag", f"resonate:origin={root}", "-o", "id")
    assert sorted(ok(found).stdout.splitlines()) == sorted(
        [root, f"{root}:1", f"{root}:1:1", f"{root}:2", f"{root}:3"]
    )


def test_tree_of_a_2026_workflow(cli: RunCli, workflow: str) -> None:
    root = workflow
    assert ok(cli("tree", root, "--no-color")).stdout.splitlines() == [
        f"* {root} (rpc main)",
        f"├── * {root}:1 (rpc remote)",
        f"│   └── * {root}:1:1 (run inner)",
        f"├── * {root}:2 (sleep)",
        f"└── + {root}:3 (run fetch)",
    ]
    # Below the origin: the part of the graph under that promise.
    assert ok(cli("tree", f"{root}:1", "--no-color")).stdout.splitlines() == [
        f"* {root}:1 (rpc remote)",
        f"└── * {root}:1:1 (run inner)",
    ]
    nested = ok(cli("tree", root, "-o", "json")).json()
    assert [child["id"] for child in nested["children"]] == [f"{root}:1", f"{root}:2", f"{root}:3"]
    assert nested["children"][0]["children"][0]["label"] == "(run inner)"
    assert nested["children"][1] == {
        "id": f"{root}:2",
        "state": "PENDING",
        "label": "(sleep)",
        "children": [],
    }


# --- the client ---------------------------------------------------------------------------------


def test_client_envelope_calls(server: ServerProcess, workflow: str) -> None:
    from resonate.client import ApiError

    root = workflow
    with ResonateClient(server.url) as client:
        assert client.get_task_2026(root).body["task"]["state"] == "acquired"
        with pytest.raises(ApiError) as missing:
            client.get_task_2026(f"{root}:2")
        assert (missing.value.status, missing.value.message) == (404, "Task not found")
        with pytest.raises(ApiError) as invalid:
            client.search_tasks_2026(limit=1001)
        assert invalid.value.status == 400 and invalid.value.message
        every = [task["id"] for task in client.iter_tasks_2026(limit=1)]
        assert root in every and f"{root}:1" in every
        query = TaskQuery(root_promise_id=root)
        assert [task["id"] for task in client.iter_all_tasks(query)] == [root, f"{root}:1"]
        assert client.call("promise.get", {"id": root}).body["promise"]["state"] == "pending"


# --- one page over both models, without I/O -----------------------------------------------------


def run_page(query: TaskQuery, cursor: str | None, answers: list[Any]) -> tuple[list[Any], Any]:
    """Drive `task_page` with canned answer bodies; the requests it made, and its page."""
    from resonate.client import task_page

    walk = task_page(query, cursor)
    requests = [next(walk)]
    try:
        for answer in answers:
            requests.append(walk.send(answer))
    except StopIteration as done:
        return requests, done.value
    raise AssertionError("the walk asked for more than the answers given")


def test_page_cursor_continues_what_has_more() -> None:
    from resonate.client import decode_task_cursor

    query = TaskQuery(limit=1)
    requests, page = run_page(
        query,
        None,
        [
            {"cursor": "cmVzdA", "tasks": [{"id": "__invoke:a", "state": "INIT"}]},
            {
                "tasks": [{"id": "wf", "state": "pending", "version": 0, "resumes": 0}],
                "cursor": "wf",
            },
        ],
    )
    assert [(r.method, r.path, r.envelope) for r in requests] == [
        ("GET", "/tasks", False),
        ("POST", "/", True),
    ]
    assert requests[1].json["kind"] == "task.search" and requests[1].json["data"] == {"limit": 1}
    assert requests[1].json["head"]["version"] == VERSION
    assert page["tasks"][1] == {
        "id": "wf", "state": "pending", "version": 0, "resumes": 0, "protocol": VERSION
    }  # fmt: skip
    _, rest, after = decode_task_cursor(page["cursor"])
    assert (rest, after) == ("cmVzdA", "wf")

    # The cursor alone: the next REST page from its cursor, the next 2026 page after `wf`.
    requests, page = run_page(TaskQuery(), page["cursor"], [{"tasks": []}, {"tasks": []}])
    assert requests[0].params == (("cursor", "cmVzdA"),)
    assert requests[1].json["data"] == {"limit": 1, "cursor": "wf"}
    assert page == {"cursor": None, "tasks": []}

    # A plain REST cursor continues REST tasks only.
    requests, page = run_page(TaskQuery(), "cmVzdA", [{"cursor": None, "tasks": []}])
    assert len(requests) == 1 and page == {"cursor": None, "tasks": []}
