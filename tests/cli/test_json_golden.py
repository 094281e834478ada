"""`-o json` prints exactly the API's JSON (cli.md §2), for every resource: a golden file per
answer, against a real `resonate serve`.

Each document is compared as text, key order included, after replacing what changes from run
to run, and only that: this test's id prefix by `<uid>`, the server's address by `<server>`,
the value of a time field by `<time>` (only when it is an integer: a time that turned into a
string would still differ), an opaque cursor by `<cursor>`. A read is also compared, untouched,
with what the API itself answers.

After an intended change of the API, regenerate the files and review their diff:

    RESONATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_json_golden.py -p no:randomly
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cli.cli_runner import RunCli
from tests.support.servers import ServerProcess

GOLDEN = Path(__file__).parent / "golden" / "json"
UPDATE = bool(os.environ.get("RESONATE_UPDATE_GOLDEN"))

# Absolute times (ms) that depend on when the test ran.
TIME_FIELDS = frozenset(
    {"timeout", "createdOn", "completedOn", "expiresAt", "nextRunTime", "lastRunTime"}
)
NOBODY = "poll://any@nobody"  # a poll group nobody listens to: tasks stay where tests put them


Volatile = dict[str, str]  # text that changes from run to run -> its placeholder


def normalize(value: Any, volatile: Volatile, key: str = "") -> Any:
    if isinstance(value, dict):
        return {
            normalize(name, volatile): normalize(item, volatile, name)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [normalize(item, volatile) for item in value]
    if key in TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return "<time>"
    if key == "cursor" and isinstance(value, str):
        return "<cursor>"
    if isinstance(value, str):
        for text, placeholder in volatile.items():
            value = value.replace(text, placeholder)
    return value


def check_golden(name: str, stdout: str, volatile: Volatile) -> Any:
    """The document printed, checked against `golden/json/<name>.json`; returned as parsed."""
    document = json.loads(stdout)
    # The exact text of `-o json`: indented by two, UTF-8 as is, one newline at the end.
    assert stdout == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    text = json.dumps(normalize(document, volatile), indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with RESONATE_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name}: -o json differs from {path}"
    return document


@pytest.fixture
def volatile(server: ServerProcess, uid: str) -> Volatile:
    return {server.url: "<server>", uid: "<uid>"}


@pytest.fixture
def cli(run_cli: RunCli, server: ServerProcess) -> RunCli:
    def run(*args: str, **options: Any) -> Any:
        result = run_cli("-S", server.url, *args, "-o", "json", **options)
        assert result.exit_code == 0, result
        return result

    return run


@pytest.fixture
def api(server: ServerProcess) -> Any:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def api_json(api: httpx.Client, path: str, **params: str) -> Any:
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_promise(cli: RunCli, api: httpx.Client, uid: str, volatile: Volatile) -> None:
    promise_id = f"{uid}/order"
    created = cli(
        "promises", "create", promise_id, "-t", "1h", "--data", "hello",
        "--header", "content-type=text/plain", "--tag", "env=golden", "-k", "create-key",
    )  # fmt: skip
    check_golden("promise-created", created.stdout, volatile)
    resolved = cli("promises", "resolve", promise_id, "--data", "done", "-k", "done-key")
    check_golden("promise-resolved", resolved.stdout, volatile)
    shown = check_golden("promise", cli("promises", "get", promise_id).stdout, volatile)
    assert shown == api_json(api, f"/promises/{promise_id.replace('/', '%2F')}")


def test_promise_search_pages(
    cli: RunCli,
    run_cli: RunCli,
    server: ServerProcess,
    api: httpx.Client,
    uid: str,
    volatile: Volatile,
) -> None:
    for index in range(3):
        cli("promises", "create", f"{uid}/item-{index}", "-t", "1h", "--tag", "env=golden")
    page = cli("promises", "search", f"{uid}/*", "--limit", "2")
    first = check_golden("promise-search-page", page.stdout, volatile)
    assert first == api_json(api, "/promises", id=f"{uid}/*", limit="2")
    rest = cli("promises", "search", "--cursor", first["cursor"])
    check_golden("promise-search-last-page", rest.stdout, volatile)
    everything = cli("promises", "search", f"{uid}/*", "--all", "--state", "pending")
    every = check_golden("promise-search-all", everything.stdout, volatile)
    # jsonl: each item of the page on its own line; yaml: the json document.
    lines = run_cli("-S", server.url, "promises", "search", f"{uid}/*", "--all", "-o", "jsonl")
    assert [json.loads(line) for line in lines.stdout.splitlines()] == every["promises"]
    as_yaml = run_cli("-S", server.url, "promises", "search", f"{uid}/*", "--all", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == every


def test_callback_and_subscription_registrations(cli: RunCli, uid: str, volatile: Volatile) -> None:
    cli("promises", "create", f"{uid}/root", "-t", "1h")
    cli("promises", "create", f"{uid}/leaf", "-t", "1h")
    callback = cli(
        "promises", "callback", f"{uid}/leaf", "-r", f"{uid}/root", "-t", "1h",
        "--recv", NOBODY,
    )  # fmt: skip
    check_golden("callback-registration", callback.stdout, volatile)
    subscription = cli(
        "promises", "subscribe", f"{uid}/leaf", "-i", "dashboard", "-t", "1h", "--recv", NOBODY
    )
    check_golden("subscription-registration", subscription.stdout, volatile)


def test_task(cli: RunCli, api: httpx.Client, uid: str, volatile: Volatile) -> None:
    promise_id = f"{uid}/job"
    task_id = f"__invoke:{promise_id}"
    cli("promises", "create", promise_id, "-t", "1h", "--tag", f"resonate:invoke={NOBODY}")
    claimed = cli("tasks", "claim", task_id, "-c", "1", "--process-id", "golden", "--ttl", "1h")
    check_golden("task-claimed", claimed.stdout, volatile)
    shown = check_golden("task", cli("tasks", "get", task_id).stdout, volatile)
    assert shown == api_json(api, f"/tasks/{task_id.replace('/', '%2F')}")
    page = cli("tasks", "search", "--root-promise-id", promise_id)
    listed = check_golden("task-search", page.stdout, volatile)
    assert listed == api_json(api, "/tasks", id="*", rootPromiseId=promise_id)
    completed = cli("tasks", "complete", task_id, "-c", "1")
    check_golden("task-completed", completed.stdout, volatile)


def test_schedule(cli: RunCli, api: httpx.Client, uid: str, volatile: Volatile) -> None:
    schedule_id = f"{uid}/nightly"
    created = cli(
        "schedules", "create", schedule_id, "--cron", "0 2 1 1 *",
        "--promise-id", "report.{{.timestamp}}", "--promise-timeout", "1h",
        "--description", "golden", "--tag", "team=ops", "--promise-data", "payload",
        "--promise-tag", f"resonate:invoke={NOBODY}", "-k", "schedule-key",
    )  # fmt: skip
    check_golden("schedule-created", created.stdout, volatile)
    shown = check_golden("schedule", cli("schedules", "get", schedule_id).stdout, volatile)
    assert shown == api_json(api, f"/schedules/{schedule_id.replace('/', '%2F')}")
    page = cli("schedules", "search", f"{uid}/*")
    listed = check_golden("schedule-search", page.stdout, volatile)
    assert listed == api_json(api, "/schedules", id=f"{uid}/*")


def test_lock(cli: RunCli, api: httpx.Client, uid: str, volatile: Volatile) -> None:
    resource_id = f"{uid}/report"
    acquired = cli(
        "locks", "acquire", resource_id, "--execution-id", "e1", "--process-id", f"{uid}-p",
        "--ttl", "1h",
    )  # fmt: skip
    check_golden("lock-acquired", acquired.stdout, volatile)
    shown = check_golden("lock", cli("locks", "get", resource_id).stdout, volatile)
    assert shown == api_json(api, f"/locks/{resource_id.replace('/', '%2F')}")
    page = cli("locks", "search", f"{uid}/*")
    listed = check_golden("lock-search", page.stdout, volatile)
    assert listed == api_json(api, "/locks", resourceId=f"{uid}/*")
    heartbeat = cli("locks", "heartbeat", "--process-id", f"{uid}-p")
    assert set(json.loads(heartbeat.stdout)) == {"locksAffected"}
