"""`resonate tasks …` end to end, against a real `resonate serve` process (cli.md §7,
http-api.md §4.8–§4.10).

Tasks come from the router: a promise tagged `resonate:invoke` gets the task `__invoke:<id>` in
INIT with counter 1. Its recv names a poll group nobody listens to, so the server cannot deliver
it and the task stays INIT (a failed delivery is retried after 15 s) for the test to claim.
"""

from __future__ import annotations

import time

import pytest

from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess

NOBODY = "poll://any@nobody"
EXTENDED_TASK_KEYS = {
    "id",
    "state",
    "type",
    "counter",
    "attempt",
    "rootPromiseId",
    "recv",
    "timeout",
    "ttl",
    "expiresAt",
    "createdOn",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def invoke_task(cli: RunCli, promise_id: str) -> str:
    """Create a routed promise; the id of its invoke task."""
    created = cli(
        "promises", "create", promise_id, "-t", "1h", "--tag", f"resonate:invoke={NOBODY}"
    )
    assert created.exit_code == 0, created.stderr
    return f"__invoke:{promise_id}"


def get_task(cli: RunCli, task_id: str) -> dict:
    result = cli("tasks", "get", task_id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def task_ids(result: CliResult) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [task["id"] for task in result.json()["tasks"]]


# --- get and search -----------------------------------------------------------------------------


def test_a_routed_promise_has_an_init_invoke_task(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, uid)
    promise_timeout = cli("promises", "get", uid, "-o", "json").json()["timeout"]
    task = get_task(cli, task_id)
    assert set(task) >= EXTENDED_TASK_KEYS
    assert task["id"] == task_id
    assert (task["state"], task["type"], task["counter"]) == ("INIT", "invoke", 1)
    assert (task["rootPromiseId"], task["leafPromiseId"]) == (uid, uid)
    assert task["recv"] == NOBODY
    assert task["timeout"] == promise_timeout
    assert "processId" not in task

    table = cli("tasks", "get", task_id, "--no-color")
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert (rows["id"], rows["state"], rows["counter"]) == (task_id, "INIT", "1")
    assert rows["timeout"].endswith("(in 59m)") or rows["timeout"].endswith("(in 1h)")
    assert cli("tasks", "get", task_id, "-o", "id").stdout == f"{task_id}\n"


def test_task_ids_with_reserved_characters(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, f"{uid}/a b?c#d%")
    assert get_task(cli, task_id)["id"] == task_id
    found = cli("tasks", "search", f"__invoke:{uid}/*", "-o", "id")
    assert found.stdout == f"{task_id}\n"


def test_search_by_root_state_and_process(cli: RunCli, uid: str) -> None:
    first = invoke_task(cli, f"{uid}/1")
    second = invoke_task(cli, f"{uid}/2")
    by_root = cli("tasks", "search", "--root-promise-id", f"{uid}/1", "-o", "json")
    assert task_ids(by_root) == [first]
    assert task_ids(cli("tasks", "search", f"__invoke:{uid}/*", "-o", "json")) == [second, first]

    assert cli("tasks", "claim", second, "-c", "1", "--process-id", f"{uid}-p").exit_code == 0
    claimed = cli("tasks", "search", f"__invoke:{uid}/*", "--state", "claimed", "-o", "json")
    assert task_ids(claimed) == [second]
    initial = cli("tasks", "search", f"__invoke:{uid}/*", "--state", "INIT", "-o", "json")
    assert task_ids(initial) == [first]
    by_process = cli("tasks", "search", "--process-id", f"{uid}-p", "-o", "json")
    assert task_ids(by_process) == [second]


def test_search_table_pages_and_all(cli: RunCli, uid: str) -> None:
    ids = [invoke_task(cli, f"{uid}/{index}") for index in range(3)]
    cli("tasks", "claim", ids[0], "-c", "1", "--process-id", f"{uid}-worker")

    table = cli("tasks", "search", f"__invoke:{uid}/*", "--no-color")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "PROTOCOL", "STATE", "COUNTER", "PROCESS", "ROOT", "EXPIRES"]
    claimed_row = next(line for line in lines if line.startswith(ids[0]))
    assert claimed_row.split()[:6] == [
        *(ids[0], "rest", "CLAIMED", "1", f"{uid}-worker", f"{uid}/0"),
    ]
    assert "(in 1m)" in claimed_row or "(in 59s)" in claimed_row

    first = cli("tasks", "search", f"__invoke:{uid}/*", "--limit", "2", "-o", "json")
    assert task_ids(first) == ids[:0:-1]
    cursor = first.json()["cursor"]
    assert cursor
    assert task_ids(cli("tasks", "search", "--cursor", cursor, "-o", "json")) == [ids[0]]
    paged = cli("tasks", "search", f"__invoke:{uid}/*", "--limit", "2", "--all", "-o", "json")
    assert paged.json()["cursor"] is None
    assert task_ids(paged) == ids[::-1]
    noted = cli("tasks", "search", f"__invoke:{uid}/*", "--limit", "2", "-o", "id")
    assert f"more results: --cursor {cursor}" in noted.stderr


# --- claim, heartbeat, complete -------------------------------------------------------------


def test_claim_heartbeat_complete(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, uid)
    process = f"{uid}-p"

    before = now_ms()
    claimed = cli("tasks", "claim", task_id, "-c", "1", "--process-id", process, "-o", "json")
    assert (claimed.exit_code, claimed.stderr) == (0, "claimed\n")
    body = claimed.json()
    assert body["type"] == "invoke"
    assert set(body["promises"]) == {"root"}
    root = body["promises"]["root"]
    assert root["id"] == uid
    assert root["href"].endswith(f"/promises/{uid}")
    assert root["data"]["id"] == uid and root["data"]["state"] == "PENDING"

    task = get_task(cli, task_id)
    assert (task["state"], task["processId"], task["ttl"]) == ("CLAIMED", process, 60_000)
    assert before + 60_000 <= task["expiresAt"] <= now_ms() + 60_000

    beat = cli("tasks", "heartbeat", "--process-id", process)
    assert (beat.exit_code, beat.stdout) == (0, "1\n")
    as_json = cli("tasks", "heartbeat", "--process-id", process, "-o", "json")
    assert as_json.json() == {"tasksAffected": 1}
    nobody = cli("tasks", "heartbeat", "--process-id", f"{uid}-nobody")
    assert (nobody.exit_code, nobody.stdout) == (0, "0\n")

    completed = cli("tasks", "complete", task_id, "-c", "1", "-o", "json")
    assert (completed.exit_code, completed.stderr) == (0, "completed\n")
    assert completed.json()["id"] == task_id
    assert "completedOn" in completed.json()
    assert "processId" not in completed.json()
    assert get_task(cli, task_id)["state"] == "COMPLETED"
    assert cli("tasks", "heartbeat", "--process-id", process).stdout == "0\n"
    # An ended task has no claimer and no expiry to show.
    row = cli("tasks", "search", task_id, "--no-color").stdout.splitlines()[1]
    assert row.split() == [task_id, "rest", "COMPLETED", "1", uid]

    again = cli("tasks", "complete", task_id, "-c", "1")
    assert (again.exit_code, again.stderr) == (0, "deduplicated: the task had already ended\n")
    assert task_id in again.stdout


def test_claim_table_ttl_and_default_process(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, uid)
    table = cli("tasks", "claim", task_id, "--counter", "1", "--ttl", "30s", "--no-color")
    assert (table.exit_code, table.stderr) == (0, "claimed\n")
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert rows == {"type": "invoke", "root": f"{uid} (PENDING)"}
    task = get_task(cli, task_id)
    assert (task["processId"], task["ttl"]) == ("resonate-cli", 30_000)
    # A retried claim by the same process and counter succeeds again (D17).
    retry = cli("tasks", "claim", task_id, "-c", "1", "--ttl", "30s", "-o", "id")
    assert (retry.exit_code, retry.stdout) == (0, f"{task_id}\n")


def test_claim_conflicts_exit_7(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, uid)
    wrong_counter = cli("tasks", "claim", task_id, "-c", "2", "--process-id", "a")
    assert wrong_counter.exit_code == 7
    assert "(HTTP 403, code 40308)" in wrong_counter.stderr
    not_claimed = cli("tasks", "complete", task_id, "-c", "1")
    assert not_claimed.exit_code == 7
    assert "(HTTP 403, code 40309)" in not_claimed.stderr

    assert cli("tasks", "claim", task_id, "-c", "1", "--process-id", "a").exit_code == 0
    taken = cli("tasks", "claim", task_id, "-c", "1", "--process-id", "b")
    assert taken.exit_code == 7
    assert taken.stderr == "error: The task is already claimed (HTTP 403, code 40306)\n"


def test_claim_of_a_resume_task_has_root_and_leaf(cli: RunCli, uid: str) -> None:
    root, leaf = f"{uid}/root", f"{uid}/leaf"
    assert cli("promises", "create", root, "-t", "1h").exit_code == 0
    assert cli("promises", "create", leaf, "-t", "1h").exit_code == 0
    registered = cli("promises", "callback", leaf, "-r", root, "-t", "1h", "--recv", NOBODY)
    assert registered.exit_code == 0
    assert cli("promises", "resolve", leaf, "--data", "42").exit_code == 0

    task_id = f"__resume:{root}:{leaf}"
    task = get_task(cli, task_id)
    assert (task["type"], task["rootPromiseId"], task["leafPromiseId"]) == ("resume", root, leaf)
    claimed = cli("tasks", "claim", task_id, "-c", "1", "--process-id", "p", "-o", "json")
    assert claimed.exit_code == 0, claimed.stderr
    promises = claimed.json()["promises"]
    assert promises["root"]["data"]["state"] == "PENDING"
    assert promises["leaf"]["id"] == leaf
    assert promises["leaf"]["data"]["state"] == "RESOLVED"


def test_a_subscription_keeps_its_physical_recv(cli: RunCli, uid: str) -> None:
    recv = '{"type": "poll", "data": {"group": "nobody"}}'
    assert cli("promises", "create", uid, "-t", "1h").exit_code == 0
    assert cli("promises", "subscribe", uid, "-i", "s", "-t", "1h", "--recv", recv).exit_code == 0
    assert cli("promises", "resolve", uid).exit_code == 0
    task = get_task(cli, f"__notify:{uid}:s")
    assert task["type"] == "notify"
    assert task["recv"] == {"type": "poll", "data": {"group": "nobody"}}


# --- drop ---------------------------------------------------------------------------------------


def test_drop_gives_the_task_back_with_the_next_counter(cli: RunCli, uid: str) -> None:
    task_id = invoke_task(cli, uid)
    assert cli("tasks", "claim", task_id, "-c", "1", "--process-id", "p").exit_code == 0

    refused = cli("tasks", "drop", task_id, "-c", "1")
    assert refused.exit_code == 3
    assert "--yes" in refused.stderr
    assert get_task(cli, task_id)["state"] == "CLAIMED"

    assert cli("tasks", "drop", task_id, "-c", "2", "-y").exit_code == 7  # stale counter
    dropped = cli("tasks", "drop", task_id, "-c", "1", "--yes")
    assert (dropped.exit_code, dropped.stdout, dropped.stderr) == (0, "", "dropped\n")
    task = get_task(cli, task_id)
    assert task["counter"] == 2
    assert task["state"] in ("INIT", "ENQUEUED")
    assert "processId" not in task

    again = cli("tasks", "drop", task_id, "-c", "2", "-y")
    assert (again.exit_code, again.stderr) == (0, "deduplicated: the task is not claimed\n")
    # The new counter can be claimed.
    assert cli("tasks", "claim", task_id, "-c", "2", "--process-id", "p").exit_code == 0


@pytest.mark.parametrize(
    ("answer", "exit_code", "states_after"),
    [("n\n", 1, {"CLAIMED"}), ("y\n", 0, {"INIT", "ENQUEUED"})],
)
def test_drop_on_a_terminal_asks(
    cli: RunCli,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    exit_code: int,
    states_after: set[str],
) -> None:
    task_id = invoke_task(cli, uid)
    cli("tasks", "claim", task_id, "-c", "1", "--process-id", "p")
    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    result = cli("tasks", "drop", task_id, "-c", "1", input=answer)
    assert f"Drop task '{task_id}'?" in result.stderr
    assert result.exit_code == exit_code
    assert get_task(cli, task_id)["state"] in states_after


# --- not found and usage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["get"],
        ["claim", "-c", "1"],
        ["complete", "-c", "1"],
        ["drop", "-c", "1", "-y"],
    ],
)
def test_an_unknown_task_exits_4(cli: RunCli, uid: str, command: list[str]) -> None:
    result = cli("tasks", command[0], f"__invoke:{uid}/missing", *command[1:])
    assert result.exit_code == 4
    assert result.stderr == "error: The specified task was not found (HTTP 404, code 40403)\n"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["claim", "t"], "--counter"),
        (["claim", "t", "-c", "0"], "--counter"),
        (["claim", "t", "-c", "1", "--ttl", "long"], "invalid duration"),
        (["complete", "t"], "--counter"),
        (["drop", "t", "-y"], "--counter"),
        (["heartbeat"], "--process-id"),
        (["search", "--state", "done"], "--state"),
        (["search", "--limit", "101"], "--limit"),
        (["get"], "ID"),
    ],
)
def test_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli("tasks", *args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr


# --- the asynchronous client (used by the TUI) --------------------------------------------------


async def test_async_client_task_methods(cli: RunCli, server: ServerProcess, uid: str) -> None:
    from resonate.client import AsyncResonateClient

    task_id = invoke_task(cli, f"{uid}/a")
    other_id = invoke_task(cli, f"{uid}/b")
    async with AsyncResonateClient(server.url) as client:
        assert (await client.get_task(task_id)).body["state"] == "INIT"
        page = (await client.search_tasks(f"__invoke:{uid}/*", limit=1)).body
        assert [task["id"] for task in page["tasks"]] == [other_id]
        every = [task["id"] async for task in client.iter_tasks(f"__invoke:{uid}/*", limit=1)]
        assert every == [other_id, task_id]

        claimed = await client.claim_task(task_id, 1, f"{uid}-p", 10_000)
        assert (claimed.status, claimed.body["type"]) == (201, "invoke")
        assert (await client.heartbeat_tasks(f"{uid}-p")).body == {"tasksAffected": 1}
        completed = await client.complete_task(task_id, 1)
        assert (completed.status, completed.body["id"]) == (201, task_id)

        await client.claim_task(other_id, 1, f"{uid}-p", 10_000)
        dropped = await client.drop_task(other_id, 1)
        assert (dropped.status, dropped.body) == (201, None)
        assert (await client.get_task(other_id)).body["counter"] == 2

        await client.create_promise(f"{uid}/leaf", now_ms() + 60_000)
        callback = await client.create_callback(f"{uid}/leaf", uid, "default", now_ms() + 60_000)
        assert (callback.status, callback.body["callback"]["rootPromiseId"]) == (201, uid)
        subscription = await client.create_subscription(
            f"{uid}/leaf", "s", {"type": "poll", "data": {"group": "g"}}, now_ms() + 60_000
        )
        assert subscription.body["callback"]["id"] == f"__notify:{uid}/leaf:s"
