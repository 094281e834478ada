"""`resonate locks …` end to end, against a real `resonate serve` process (cli.md §8,
http-api.md §8)."""

from __future__ import annotations

import time

import pytest

from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess

LOCK_KEYS = {"resourceId", "executionId", "processId", "ttl", "expiresAt"}


def now_ms() -> int:
    return int(time.time() * 1000)


def acquire(cli: RunCli, resource: str, execution: str, process: str, *extra: str) -> CliResult:
    return cli(
        "locks", "acquire", resource, "--execution-id", execution, "--process-id", process, *extra
    )


def get_lock(cli: RunCli, resource: str) -> dict:
    result = cli("locks", "get", resource, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def resources(result: CliResult) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [lock["resourceId"] for lock in result.json()["locks"]]


# --- acquire, get, heartbeat, release -----------------------------------------------------------


def test_acquire_get_heartbeat_release(cli: RunCli, uid: str) -> None:
    resource, process = f"{uid}/orders 1", f"{uid}-p"
    before = now_ms()
    acquired = acquire(cli, resource, "e1", process, "-o", "json")
    assert (acquired.exit_code, acquired.stderr) == (0, "acquired\n")
    lock = acquired.json()
    assert set(lock) == LOCK_KEYS
    assert (lock["resourceId"], lock["executionId"], lock["processId"]) == (resource, "e1", process)
    assert lock["ttl"] == 60_000  # the default --ttl is 1m
    assert before + 60_000 <= lock["expiresAt"] <= now_ms() + 60_000
    assert get_lock(cli, resource) == lock

    as_id = cli("locks", "get", resource, "-o", "id")
    assert (as_id.exit_code, as_id.stdout) == (0, f"{resource}\n")
    table = cli("locks", "get", resource, "--no-color")
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert rows["resourceId"] == resource
    assert rows["ttl"] == "60000"
    assert "(in 1m)" in rows["expiresAt"] or "(in 59s)" in rows["expiresAt"]

    # The holder renews with another ttl.
    renewed = acquire(cli, resource, "e1", process, "--ttl", "30s", "-o", "json")
    assert (renewed.exit_code, renewed.json()["ttl"]) == (0, 30_000)

    beat = cli("locks", "heartbeat", "--process-id", process)
    assert (beat.exit_code, beat.stdout) == (0, "1\n")
    as_json = cli("locks", "heartbeat", "--process-id", process, "-o", "json")
    assert as_json.json() == {"locksAffected": 1}

    released = cli("locks", "release", resource, "--execution-id", "e1", "--yes")
    assert (released.exit_code, released.stdout, released.stderr) == (0, "", "released\n")
    gone = cli("locks", "get", resource)
    assert gone.exit_code == 4
    assert gone.stderr == "error: The specified lock was not found (HTTP 404, code 40402)\n"
    assert cli("locks", "heartbeat", "--process-id", process).stdout == "0\n"


def test_another_execution_is_refused_exit_7(cli: RunCli, uid: str) -> None:
    assert acquire(cli, uid, "e1", "p1").exit_code == 0
    refused = acquire(cli, uid, "e2", "p2")
    assert refused.exit_code == 7
    assert refused.stderr == "error: The lock is already acquired (HTTP 403, code 40305)\n"
    assert get_lock(cli, uid)["executionId"] == "e1"


def test_release_by_the_wrong_execution_exits_4(cli: RunCli, uid: str) -> None:
    assert acquire(cli, uid, "e1", "p1").exit_code == 0
    wrong = cli("locks", "release", uid, "--execution-id", "e2", "-y")
    assert wrong.exit_code == 4
    assert wrong.stderr == "error: The specified lock was not found (HTTP 404, code 40402)\n"
    assert get_lock(cli, uid)["executionId"] == "e1"


# --- confirmation -------------------------------------------------------------------------------


def test_release_without_a_terminal_needs_yes(cli: RunCli, uid: str) -> None:
    assert acquire(cli, uid, "e1", "p1").exit_code == 0
    refused = cli("locks", "release", uid, "--execution-id", "e1")
    assert refused.exit_code == 3
    assert "--yes" in refused.stderr
    assert get_lock(cli, uid)["executionId"] == "e1"


@pytest.mark.parametrize(("answer", "exit_code", "held"), [("n\n", 1, True), ("y\n", 0, False)])
def test_release_on_a_terminal_asks(
    cli: RunCli,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    exit_code: int,
    held: bool,
) -> None:
    assert acquire(cli, uid, "e1", "p1").exit_code == 0
    monkeypatch.setattr("resonate.cli.promises.stdin_is_terminal", lambda: True)
    result = cli("locks", "release", uid, "--execution-id", "e1", input=answer)
    assert f"Release the lock on '{uid}'?" in result.stderr
    assert result.exit_code == exit_code
    assert (cli("locks", "get", uid).exit_code == 0) is held


# --- search -------------------------------------------------------------------------------------


def test_search_filters_in_resource_order(cli: RunCli, uid: str) -> None:
    for resource, execution, process in [
        (f"{uid}/c", "e1", f"{uid}-p1"),
        (f"{uid}/a", "e2", f"{uid}-p2"),
        (f"{uid}/b", "e3", f"{uid}-p1"),
    ]:
        assert acquire(cli, resource, execution, process).exit_code == 0
    every = cli("locks", "search", f"{uid}/*", "-o", "json")
    assert resources(every) == [f"{uid}/a", f"{uid}/b", f"{uid}/c"]
    by_process = cli("locks", "search", f"{uid}/*", "--process-id", f"{uid}-p1", "-o", "json")
    assert resources(by_process) == [f"{uid}/b", f"{uid}/c"]
    by_execution = cli("locks", "search", f"{uid}/*", "--execution-id", "e2", "-o", "json")
    assert resources(by_execution) == [f"{uid}/a"]
    by_process_only = cli("locks", "search", "--process-id", f"{uid}-p2", "-o", "json")
    assert resources(by_process_only) == [f"{uid}/a"]


def test_search_table_pages_and_all(cli: RunCli, uid: str) -> None:
    names = [f"{uid}/{index}" for index in range(3)]
    for name in names:
        assert acquire(cli, name, f"{name}-e", f"{uid}-worker", "--ttl", "1h").exit_code == 0

    table = cli("locks", "search", f"{uid}/*", "--no-color")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["RESOURCE", "EXECUTION", "PROCESS", "EXPIRES"]
    row = lines[1].split()
    assert row[:3] == [names[0], f"{names[0]}-e", f"{uid}-worker"]
    assert "(in 1h)" in lines[1] or "(in 59m)" in lines[1]

    first = cli("locks", "search", f"{uid}/*", "--limit", "2", "-o", "json")
    assert resources(first) == names[:2]
    cursor = first.json()["cursor"]
    assert cursor
    assert resources(cli("locks", "search", "--cursor", cursor, "-o", "json")) == names[2:]
    paged = cli("locks", "search", f"{uid}/*", "--limit", "2", "--all", "-o", "json")
    assert paged.json()["cursor"] is None
    assert resources(paged) == names
    as_ids = cli("locks", "search", f"{uid}/*", "--limit", "2", "-o", "id")
    assert as_ids.stdout.splitlines() == names[:2]
    assert f"more results: --cursor {cursor}" in as_ids.stderr


# --- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["acquire", "r", "--process-id", "p"], "--execution-id"),
        (["acquire", "r", "--execution-id", "e"], "--process-id"),
        (["acquire", "r", "--execution-id", "e", "--process-id", "p", "--ttl", "x"], "duration"),
        (["release", "r", "-y"], "--execution-id"),
        (["heartbeat"], "--process-id"),
        (["search", "--limit", "101"], "--limit"),
        (["get"], "RESOURCE_ID"),
    ],
)
def test_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli("locks", *args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr


def test_an_unreachable_server_exits_5(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("locks", "get", "r", "-S", closed_port_url)
    assert result.exit_code == 5


# --- the asynchronous client (used by the TUI) --------------------------------------------------


async def test_async_client_lock_methods(server: ServerProcess, uid: str) -> None:
    from resonate.client import ApiError, AsyncResonateClient

    async with AsyncResonateClient(server.url) as client:
        acquired = await client.acquire_lock(f"{uid}/a", "e1", f"{uid}-p", 10_000)
        assert (acquired.status, acquired.body["executionId"]) == (201, "e1")
        await client.acquire_lock(f"{uid}/b", "e2", f"{uid}-p", 10_000)
        with pytest.raises(ApiError) as refused:
            await client.acquire_lock(f"{uid}/a", "e9", "other", 10_000)
        assert refused.value.code == 40305
        assert (await client.get_lock(f"{uid}/a")).body["ttl"] == 10_000
        page = (await client.search_locks(f"{uid}/*", limit=1)).body
        assert [lock["resourceId"] for lock in page["locks"]] == [f"{uid}/a"]
        every = [lock["resourceId"] async for lock in client.iter_locks(f"{uid}/*", limit=1)]
        assert every == [f"{uid}/a", f"{uid}/b"]
        by_execution = (await client.search_locks(execution_id="e2", process_id=f"{uid}-p")).body
        assert [lock["resourceId"] for lock in by_execution["locks"]] == [f"{uid}/b"]
        assert (await client.heartbeat_locks(f"{uid}-p")).body == {"locksAffected": 2}
        released = await client.release_lock(f"{uid}/a", "e1")
        assert (released.status, released.body) == (204, None)
        with pytest.raises(ApiError) as missing:
            await client.release_lock(f"{uid}/a", "e1")
        assert missing.value.code == 40402
