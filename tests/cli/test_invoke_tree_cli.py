"""`resonate invoke` and `resonate tree` end to end, against a real `resonate serve` process
(cli.md §9, §10)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.cli.cli_runner import RunCli
from tests.support.servers import ServerProcess

INT64_MAX = 2**63 - 1


def now_ms() -> int:
    return int(time.time() * 1000)


def b64_json(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def decoded_param(promise: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(promise["param"]["data"]))


# --- invoke -----------------------------------------------------------------------------------


def test_invoke_creates_the_root_promise(cli: RunCli, uid: str) -> None:
    before = now_ms()
    result = cli("invoke", uid, "--func", "greet", "--arg", "ada", "--arg", "1", "-o", "json")
    after = now_ms()
    assert (result.exit_code, result.stderr) == (0, "created\n")
    promise = result.json()
    assert promise["id"] == uid
    assert promise["state"] == "PENDING"
    # Without --json-args every value is a string; kwargs is always present.
    assert decoded_param(promise) == {
        "func": "greet",
        "args": ["ada", "1"],
        "kwargs": {},
        "version": 1,
    }
    assert promise["tags"] == {"resonate:invoke": "poll://any@default"}
    # Default --timeout 1h, as an absolute deadline.
    assert before + 3_600_000 <= promise["timeout"] <= after + 3_600_000


def test_invoke_json_args_kwargs_version_target_tags(cli: RunCli, uid: str) -> None:
    result = cli(
        "invoke", uid, "-f", "add", "--json-args",
        "--arg", "1", "--arg", '{"a": [true, null]}', "--kwarg", "scale=2.5", "--kwarg", 'n="x=y"',
        "--version", "3", "--target", "poll://any@math", "-t", "5m",
        "--tag", "team=core", "-k", f"{uid}-key", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    promise = result.json()
    assert decoded_param(promise) == {
        "func": "add",
        "args": [1, {"a": [True, None]}],
        "kwargs": {"scale": 2.5, "n": "x=y"},
        "version": 3,
    }
    assert promise["tags"] == {"resonate:invoke": "poll://any@math", "team": "core"}
    assert promise["idempotencyKeyForCreate"] == f"{uid}-key"

    again = cli("invoke", uid, "-f", "add", "-k", f"{uid}-key", "-o", "id")
    assert (again.exit_code, again.stderr, again.stdout) == (0, "deduplicated\n", f"{uid}\n")
    conflict = cli("invoke", uid, "-f", "add")
    assert conflict.exit_code == 7


def test_invoke_with_delay(cli: RunCli, uid: str) -> None:
    before = now_ms()
    result = cli("invoke", uid, "-f", "later", "--delay", "10m", "-t", "1m", "-o", "json")
    after = now_ms()
    assert result.exit_code == 0, result.stderr
    promise = result.json()
    delay_at = int(promise["tags"]["resonate:delay"])
    assert before + 600_000 <= delay_at <= after + 600_000
    # timeout = now + delay + timeout
    assert before + 660_000 <= promise["timeout"] <= after + 660_000


def test_invoke_table_output_like_promises_create(cli: RunCli, uid: str) -> None:
    result = cli("invoke", uid, "-f", "greet", "--kwarg", "name=ada", "--no-color")
    assert (result.exit_code, result.stderr) == (0, "created\n")
    assert "PENDING" in result.stdout
    assert '"kwargs":{"name":"ada"}' in result.stdout
    assert "resonate:invoke=poll://any@default" in result.stdout


@contextmanager
def resolve_later(server: ServerProcess, promise_id: str, value: Any, state: str) -> Iterator[None]:
    """Complete `promise_id` from another thread once the CLI is waiting for it."""

    def complete() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = {"state": state, "value": {"data": b64_json(value)}}
                answer = api.patch(f"/promises/{promise_id}", json=body)
                if answer.status_code != 404:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=complete)
    thread.start()
    yield
    thread.join()


def test_invoke_wait_prints_the_result(cli: RunCli, server: ServerProcess, uid: str) -> None:
    with resolve_later(server, uid, {"sum": 3}, "RESOLVED"):
        result = cli("invoke", uid, "-f", "add", "--arg", "1", "--arg", "2", "--wait")
    assert (result.exit_code, result.stderr) == (0, "created\n")
    assert json.loads(result.stdout) == {"sum": 3}


def test_invoke_wait_json_prints_the_completed_promise(
    cli: RunCli, server: ServerProcess, uid: str
) -> None:
    with resolve_later(server, uid, "done", "RESOLVED"):
        result = cli("invoke", uid, "-f", "job", "--wait", "-o", "json")
    assert result.exit_code == 0
    assert result.json()["state"] == "RESOLVED"
    assert result.json()["value"] == {"data": b64_json("done")}


def test_invoke_wait_on_a_rejection_exits_9(cli: RunCli, server: ServerProcess, uid: str) -> None:
    with resolve_later(server, uid, {"__error__": "boom"}, "REJECTED"):
        result = cli("invoke", uid, "-f", "fail", "--wait")
    assert result.exit_code == 9
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "created",
        f"error: promise '{uid}' is REJECTED: {json.dumps({'__error__': 'boom'})}",
    ]


def test_invoke_wait_timeout_exits_10(cli: RunCli, uid: str) -> None:
    started = time.monotonic()
    result = cli("invoke", uid, "-f", "slow", "--wait", "--wait-timeout", "300ms")
    assert 0.3 <= time.monotonic() - started < 5
    assert result.exit_code == 10
    assert f"error: promise '{uid}' is still PENDING after 300ms" in result.stderr
    # The invocation goes on.
    assert cli("promises", "get", uid, "-o", "json").json()["state"] == "PENDING"


def test_invoke_wait_ends_when_the_promise_times_out(cli: RunCli, uid: str) -> None:
    result = cli("invoke", uid, "-f", "slow", "-t", "200ms", "--wait")
    assert result.exit_code == 9
    assert f"error: promise '{uid}' is REJECTED_TIMEDOUT" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["invoke", "p"], "--func"),
        (["invoke", "p", "-f", "f", "--json-args", "--arg", "nope"], "not JSON"),
        (["invoke", "p", "-f", "f", "--kwarg", "novalue"], "k=v"),
        (["invoke", "p", "-f", "f", "--delay", "soon"], "invalid duration"),
        (["invoke", "p", "-f", "f", "--wait-timeout", "x"], "invalid duration"),
        (["invoke", "p", "-f", "f", "--version", "0"], "--version"),
        (["invoke", "p", "-f", "f", "--target", '{"data": {}}'], "physical"),
        # --target is checked against the recv forms the server can deliver to (http-api §4.5).
        (["invoke", "p", "-f", "f", "--target", "not a recv"], "'not a recv' is not a recv"),
        (["invoke", "p", "-f", "f", "--target", "kafka://t"], "poll:// and http(s)://"),
        (["invoke", "p", "-f", "f", "--target", "poll://all@g"], "neither any nor uni"),
        (["invoke", "p", "-f", "f", "--target", "poll://any@"], "needs a group"),
        (["invoke", "p", "-f", "f", "--target", "http://"], "no host"),
        (["invoke", "p", "-f", "f", "--target", "g/p1"], "not a recv"),
        (["invoke", "p", "-f", "f", "--target", '{"type": "sqs", "data": {}}'], "'sqs'"),
        (["invoke", "p", "-f", "f", "--target", '{"type": "poll", "data": {}}'], "group"),
        (
            [
                "invoke",
                "p",
                "-f",
                "f",
                "--target",
                '{"type": "poll", "data": {"group": "g"}, "x": 1}',
            ],
            "no other keys",
        ),
        (
            ["invoke", "p", "-f", "f", "--target", '{"type": "http", "data": {"url": "ftp://x"}}'],
            "url",
        ),
        (["tree", "p", "--depth", "-1"], "--depth"),
    ],
)
def test_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli(*args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr


def test_an_invalid_target_exits_2_with_one_line_and_creates_nothing(cli: RunCli, uid: str) -> None:
    result = cli("invoke", uid, "--func", "square", "--target", "not a recv")
    assert (result.exit_code, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert "poll://[cast@]group[/id]" in result.stderr
    assert cli("promises", "get", uid).exit_code == 4


@pytest.mark.parametrize(
    "target",
    [
        "default",
        "workers.v2",
        "poll://any@workers",
        "poll://UNI@workers/process-7",
        "poll://workers",
        "https://hooks.example/resonate?x=1",
        '{"type": "poll", "data": {"group": "g", "cast": "uni", "id": "p"}}',
        '{"type": "http", "data": {"url": "http://127.0.0.1:9/x", "headers": {"a": "b"}}}',
    ],
)
def test_every_documented_target_form_is_accepted(cli: RunCli, uid: str, target: str) -> None:
    result = cli("invoke", uid, "-f", "f", "--target", target, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["tags"]["resonate:invoke"] == target


# --- tree ---------------------------------------------------------------------------------------


class Graph:
    """Builds promise graphs through the API."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    def create(
        self,
        promise_id: str,
        func: str | None = None,
        tags: dict[str, str] | None = None,
        timeout_ms: int = 3_600_000,
    ) -> None:
        body: dict[str, Any] = {"id": promise_id, "timeout": now_ms() + timeout_ms}
        if func:
            body["param"] = {"data": b64_json({"func": func, "args": [], "kwargs": {}})}
        if tags:
            body["tags"] = tags
        assert self.api.post("/promises", json=body).status_code == 201

    def create_sdk_local_step(self, promise_id: str) -> None:
        """What the Python SDK 0.4.12 stores for `ctx.lfc`: the id, a never-ending timeout."""
        body = {"id": promise_id, "timeout": INT64_MAX}
        assert self.api.post("/promises", json=body).status_code == 201

    def complete(self, promise_id: str, state: str) -> None:
        answer = self.api.patch(f"/promises/{promise_id}", json={"state": state})
        assert answer.status_code == 201


@pytest.fixture
def graph(api: httpx.Client) -> Graph:
    return Graph(api)


def tagged(root: str, parent: str, scope: str, **extra: str) -> dict[str, str]:
    return {"resonate:root": root, "resonate:parent": parent, "resonate:scope": scope, **extra}


@pytest.fixture
def tagged_graph(graph: Graph, uid: str) -> str:
    """A TypeScript-SDK style graph: every promise tagged with its root, parent and scope.

    wf (rpc main)
    ├── wf:a (run fetch), resolved
    │   └── wf:a:sleep (sleep)
    ├── wf:b (rpc remote): a global child, root of its own invocation
    │   └── wf:b:1 (run inner), rejected
    └── wf:c (run)
    """
    root = f"{uid}wf"
    graph.create(root, "main", tagged(root, root, "global"))
    graph.create(f"{root}:a", "fetch", tagged(root, root, "local"))
    graph.create(
        f"{root}:a:sleep", None, tagged(root, f"{root}:a", "local", **{"resonate:timeout": "true"})
    )
    graph.create(f"{root}:b", "remote", tagged(root, root, "global"))
    graph.create(f"{root}:b:1", "inner", tagged(f"{root}:b", f"{root}:b", "local"))
    graph.create(f"{root}:c", None, tagged(root, root, "local"))
    graph.complete(f"{root}:a", "RESOLVED")
    graph.complete(f"{root}:b:1", "REJECTED")
    return root


def test_tree_nests_by_tags_and_follows_global_roots(cli: RunCli, tagged_graph: str) -> None:
    root = tagged_graph
    result = cli("tree", root)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"🟡 {root} (rpc main)",
        f"├── 🟢 {root}:a (run fetch)",
        f"│   └── 🟡 {root}:a:sleep (sleep)",
        f"├── 🟡 {root}:b (rpc remote)",
        f"│   └── 🔴 {root}:b:1 (run inner)",
        f"└── 🟡 {root}:c (run)",
    ]


def test_tree_no_color_uses_plain_glyphs(cli: RunCli, tagged_graph: str) -> None:
    root = tagged_graph
    expected = [
        f"* {root} (rpc main)",
        f"├── + {root}:a (run fetch)",
        f"│   └── * {root}:a:sleep (sleep)",
        f"├── * {root}:b (rpc remote)",
        f"│   └── x {root}:b:1 (run inner)",
        f"└── * {root}:c (run)",
    ]
    assert cli("tree", root, "--no-color").stdout.splitlines() == expected
    assert cli("tree", root, env={"NO_COLOR": "1"}).stdout.splitlines() == expected


def test_tree_json_is_nested(cli: RunCli, tagged_graph: str) -> None:
    root = tagged_graph
    result = cli("tree", root, "-o", "json")
    assert result.exit_code == 0

    def leaf(promise_id: str, state: str, label: str) -> dict[str, Any]:
        return {"id": promise_id, "state": state, "label": label, "children": []}

    assert result.json() == {
        "id": root,
        "state": "PENDING",
        "label": "(rpc main)",
        "children": [
            {
                **leaf(f"{root}:a", "RESOLVED", "(run fetch)"),
                "children": [leaf(f"{root}:a:sleep", "PENDING", "(sleep)")],
            },
            {
                **leaf(f"{root}:b", "PENDING", "(rpc remote)"),
                "children": [leaf(f"{root}:b:1", "REJECTED", "(run inner)")],
            },
            leaf(f"{root}:c", "PENDING", "(run)"),
        ],
    }


def test_tree_depth_and_id_output(cli: RunCli, tagged_graph: str) -> None:
    root = tagged_graph
    shallow = cli("tree", root, "--depth", "1", "--no-color")
    assert shallow.stdout.splitlines() == [
        f"* {root} (rpc main)",
        f"├── + {root}:a (run fetch)",
        f"├── * {root}:b (rpc remote)",
        f"└── * {root}:c (run)",
    ]
    assert cli("tree", root, "--depth", "0", "-o", "id").stdout == f"{root}\n"
    assert cli("tree", root, "-o", "id").stdout.splitlines() == [
        root,
        f"{root}:a",
        f"{root}:a:sleep",
        f"{root}:b",
        f"{root}:b:1",
        f"{root}:c",
    ]
    as_json = cli("tree", root, "--depth", "1", "-o", "json").json()
    assert [child["children"] for child in as_json["children"]] == [[], [], []]


def test_tree_follows_cursors(cli: RunCli, graph: Graph, uid: str) -> None:
    """More children than one search page (100) holds."""
    root = f"{uid}big"
    graph.create(root, "fan_out", tagged(root, root, "global"))
    for index in range(105):
        graph.create(f"{root}:{index}", "leaf", tagged(root, root, "local"))
    lines = cli("tree", root, "--no-color").stdout.splitlines()
    assert len(lines) == 106
    # Children in creation order.
    assert lines[1] == f"├── * {root}:0 (run leaf)"
    assert lines[-1] == f"└── * {root}:104 (run leaf)"


def test_tree_falls_back_to_id_nesting(cli: RunCli, graph: Graph, uid: str) -> None:
    """Python SDK 0.4.x: children are `<parent>.<n>`; a remote call carries its param and the
    invoke tag, a local step nothing (labelled `(run)`), a sleep the timeout tag. A child with
    a param and no tag shows its function."""
    root = f"{uid}.py"
    graph.create(root, "workflow", {"resonate:invoke": "poll://any@default"})
    graph.create_sdk_local_step(f"{root}.1")
    graph.create(f"{root}.2", "remote_step", {"resonate:invoke": "poll://any@default"})
    graph.create(f"{root}.2.1", "inner")
    graph.create(f"{root}.3", None, {"resonate:timeout": "true"})
    graph.create(f"{root}.10", "late")
    graph.create(f"{root}.11")  # a plain promise: no label
    graph.create(f"{root}x.1", "unrelated")  # not under `<root>.`
    graph.complete(f"{root}.1", "RESOLVED")
    graph.complete(f"{root}.2.1", "REJECTED_CANCELED")

    result = cli("tree", root, "--no-color")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"* {root} (rpc workflow)",
        f"├── + {root}.1 (run)",
        f"├── * {root}.2 (rpc remote_step)",
        f"│   └── x {root}.2.1 inner",
        f"├── * {root}.3 (sleep)",
        f"├── * {root}.10 late",
        f"└── * {root}.11",
    ]
    nested = cli("tree", root, "-o", "json").json()
    assert [child["id"] for child in nested["children"]] == [
        f"{root}.1",
        f"{root}.2",
        f"{root}.3",
        f"{root}.10",
        f"{root}.11",
    ]
    assert nested["children"][1]["children"][0]["state"] == "REJECTED_CANCELED"


def test_tree_root_tagged_with_itself_still_falls_back(cli: RunCli, graph: Graph, uid: str) -> None:
    """Only the root carries `resonate:root`: its children can only be found by id."""
    root = f"{uid}self"
    graph.create(root, "main", tagged(root, root, "global"))
    graph.create(f"{root}.1", "child")
    assert cli("tree", root, "--no-color").stdout.splitlines() == [
        f"* {root} (rpc main)",
        f"└── * {root}.1 child",
    ]


def test_tree_of_a_lone_promise(cli: RunCli, graph: Graph, uid: str) -> None:
    graph.create(uid)
    assert cli("tree", uid, "--no-color").stdout == f"* {uid}\n"
    assert cli("tree", uid, "-o", "jsonl").stdout == (
        json.dumps(
            {"id": uid, "state": "PENDING", "label": "", "children": []}, separators=(",", ":")
        )
        + "\n"
    )


def test_tree_of_a_missing_promise_exits_4(cli: RunCli, uid: str) -> None:
    result = cli("tree", f"{uid}/missing")
    assert result.exit_code == 4
    assert result.stderr == "error: The specified promise was not found (HTTP 404, code 40400)\n"
