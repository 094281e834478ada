"""`resonate promises callback|subscribe` end to end, against a real `resonate serve` process
(cli.md §5, http-api.md §3)."""

from __future__ import annotations

import time

import pytest

from tests.cli.cli_runner import RunCli

CALLBACK_KEYS = {"id", "promiseId", "rootPromiseId", "timeout", "createdOn"}


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def leaf(cli: RunCli, uid: str) -> str:
    """A pending promise to register on; its id has a '/' to check the path encoding."""
    promise_id = f"{uid}/leaf"
    assert cli("promises", "create", promise_id, "-t", "1h").exit_code == 0
    return promise_id


# --- callback ---------------------------------------------------------------------------------


def test_callback_is_created_with_a_deadline_timeout(cli: RunCli, uid: str, leaf: str) -> None:
    before = now_ms()
    result = cli("promises", "callback", leaf, "-r", f"{uid}/root", "-t", "1h", "-o", "json")
    after = now_ms()
    assert (result.exit_code, result.stderr) == (0, "created\n")
    body = result.json()
    assert set(body) == {"callback", "promise"}
    callback = body["callback"]
    assert set(callback) == CALLBACK_KEYS
    assert callback["id"] == f"__resume:{uid}/root:{leaf}"
    assert (callback["promiseId"], callback["rootPromiseId"]) == (leaf, f"{uid}/root")
    # --timeout is sent as now + duration (absolute ms), like a promise timeout.
    assert before + 3_600_000 <= callback["timeout"] <= after + 3_600_000
    assert body["promise"]["id"] == leaf
    assert body["promise"]["state"] == "PENDING"


def test_repeated_callback_is_deduplicated_exit_0(cli: RunCli, uid: str, leaf: str) -> None:
    first = cli("promises", "callback", leaf, "--root-promise-id", uid, "-t", "1h", "-o", "json")
    again = cli("promises", "callback", leaf, "--root-promise-id", uid, "-t", "2h", "-o", "json")
    assert (again.exit_code, again.stderr) == (0, "deduplicated\n")
    assert again.json()["callback"] == first.json()["callback"]  # the stored one


def test_callback_on_a_completed_promise_is_not_registered(
    cli: RunCli, uid: str, leaf: str
) -> None:
    assert cli("promises", "resolve", leaf).exit_code == 0
    result = cli("promises", "callback", leaf, "-r", uid, "-t", "1h", "-o", "json")
    assert result.exit_code == 0
    assert result.stderr == "not registered: the promise is already RESOLVED\n"
    assert result.json()["callback"] is None
    assert result.json()["promise"]["state"] == "RESOLVED"
    # The table shows the completed promise instead; -o id prints nothing (no callback).
    table = cli("promises", "callback", leaf, "-r", uid, "-t", "1h")
    assert "RESOLVED" in table.stdout
    assert cli("promises", "callback", leaf, "-r", uid, "-t", "1h", "-o", "id").stdout == ""


def test_callback_table_and_id_show_the_callback(cli: RunCli, uid: str, leaf: str) -> None:
    table = cli("promises", "callback", leaf, "-r", uid, "-t", "1h", "--no-color")
    assert table.exit_code == 0
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert rows["id"] == f"__resume:{uid}:{leaf}"
    assert rows["rootPromiseId"] == uid
    assert "(in 59m)" in rows["timeout"] or "(in 1h)" in rows["timeout"]
    as_id = cli("promises", "callback", leaf, "-r", uid, "-t", "1h", "-o", "id")
    assert as_id.stdout == f"__resume:{uid}:{leaf}\n"


@pytest.mark.parametrize(
    "recv",
    [
        "default",
        "poll://any@workers",
        "http://127.0.0.1:9/hook",
        '{"type": "poll", "data": {"group": "g"}}',
    ],
)
def test_callback_recv_forms(cli: RunCli, uid: str, leaf: str, recv: str) -> None:
    result = cli("promises", "callback", leaf, "-r", uid, "-t", "1m", "--recv", recv)
    assert (result.exit_code, result.stderr) == (0, "created\n")


def test_callback_on_a_missing_promise_exits_4(cli: RunCli, uid: str) -> None:
    result = cli("promises", "callback", f"{uid}/missing", "-r", uid, "-t", "1m")
    assert result.exit_code == 4
    assert result.stderr == "error: The specified promise was not found (HTTP 404, code 40400)\n"


def test_callback_on_itself_is_a_server_400_exit_2(cli: RunCli, leaf: str) -> None:
    result = cli("promises", "callback", leaf, "-r", leaf, "-t", "1m")
    assert result.exit_code == 2
    assert "(HTTP 400, code 40000)" in result.stderr


# --- subscribe --------------------------------------------------------------------------------


def test_subscribe_is_created_and_deduplicated(cli: RunCli, uid: str, leaf: str) -> None:
    before = now_ms()
    created = cli("promises", "subscribe", leaf, "--id", "watcher", "-t", "10m", "-o", "json")
    assert (created.exit_code, created.stderr) == (0, "created\n")
    callback = created.json()["callback"]
    assert callback["id"] == f"__notify:{leaf}:watcher"
    assert callback["rootPromiseId"] == leaf
    assert callback["timeout"] >= before + 600_000

    again = cli("promises", "subscribe", leaf, "-i", "watcher", "-t", "10m", "-o", "id")
    assert (again.exit_code, again.stderr, again.stdout) == (
        0,
        "deduplicated\n",
        f"__notify:{leaf}:watcher\n",
    )
    other = cli("promises", "subscribe", leaf, "-i", "other", "-t", "10m", "--recv", "poll://any@g")
    assert (other.exit_code, other.stderr) == (0, "created\n")


def test_subscribe_to_a_completed_promise(cli: RunCli, leaf: str) -> None:
    cli("promises", "reject", leaf)
    result = cli("promises", "subscribe", leaf, "-i", "late", "-t", "1m", "-o", "json")
    assert result.exit_code == 0
    assert result.stderr == "not registered: the promise is already REJECTED\n"
    assert result.json()["callback"] is None


def test_subscribe_on_a_missing_promise_exits_4(cli: RunCli, uid: str) -> None:
    assert cli("promises", "subscribe", f"{uid}/nope", "-i", "s", "-t", "1m").exit_code == 4


# --- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["callback", "p", "-t", "1m"], "--root-promise-id"),
        (["callback", "p", "-r", "root"], "--timeout"),
        (["callback", "p", "-r", "root", "-t", "soon"], "invalid duration"),
        (["callback", "p", "-r", "root", "-t", "1m", "--recv", "{not json"], "invalid JSON"),
        (["callback", "p", "-r", "root", "-t", "1m", "--recv", '{"data": 1}'], "physical"),
        (["callback", "p", "-r", "root", "-t", "1m", "--recv", ""], "empty"),
        (["callback", "p", "-r", "root", "-t", "1m", "--recv", "not a recv"], "not a recv"),
        (["subscribe", "p", "-i", "s", "-t", "1m", "--recv", "sqs://queue"], "poll://"),
        (["subscribe", "p", "-t", "1m"], "--id"),
        (["subscribe", "p", "-i", "s"], "--timeout"),
    ],
)
def test_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli("promises", *args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr
