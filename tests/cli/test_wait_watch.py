"""`--wait` and `--watch` end to end: the real CLI against a real `resonate serve` process.

The poll loops take their clock and sleep from `resonate.cli.watch.TIMING`. `Steps` replaces
both: each sleep moves a fake clock on and runs the test's next step (an API call between two
reads), and the sleep after the last step is Ctrl-C. So the CLI reads, the test changes
something, the CLI reads again, and no test waits for real time; the intervals the CLI asked
for are recorded. One test sends a real SIGINT to a real process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resonate.cli import watch
from resonate.client import ResonateClient, encode_value
from tests.cli.cli_runner import CliResult, RunCli
from tests.cli.pipes import lines_of
from tests.support.servers import ServerProcess

HOUR_MS = 3_600_000
YEARLY = "0 0 1 1 *"


def now_ms() -> int:
    return int(time.time() * 1000)


class Steps:
    """The poll loops' clock and sleep: every sleep runs the next step; then Ctrl-C."""

    def __init__(self, *steps: Callable[[], object]) -> None:
        self.steps = list(steps)
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now = round(self.now + seconds, 6)  # no float drift past a deadline
        if not self.steps:
            raise KeyboardInterrupt
        self.steps.pop(0)()


def nothing() -> None:
    """A step that changes nothing between two reads."""


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Steps]:
    """Install `Steps(*steps)` as the clock and sleep of the CLI's poll loops."""

    def install(*steps: Callable[[], object]) -> Steps:
        script = Steps(*steps)
        monkeypatch.setattr(watch, "TIMING", watch.PollTiming(script.clock, script.sleep))
        return script

    return install


@pytest.fixture
def api(server: ServerProcess) -> Iterator[ResonateClient]:
    """The typed client, for the changes a test makes between two reads of the CLI."""
    with ResonateClient(server.url) as client:
        yield client


def create(api: ResonateClient, promise_id: str, timeout_ms: int = HOUR_MS) -> None:
    api.create_promise(promise_id, now_ms() + timeout_ms)


def events(result: CliResult, resource: str = "promise") -> list[tuple[str, str, str]]:
    """`(event, id, state)` of each line of a `--watch -o jsonl` feed."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(line) == {"event", resource} for line in lines), lines
    key = "resourceId" if resource == "lock" else "id"
    return [(line["event"], line[resource][key], line[resource].get("state", "")) for line in lines]


# --- promises get --wait ----------------------------------------------------------------------


def test_get_wait_blocks_until_resolved_prints_it_and_exits_0(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, uid)
    steps = drive(lambda: api.complete_promise(uid, "RESOLVED", encode_value("done")))
    result = cli("promises", "get", uid, "--wait", "-o", "json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.json()["state"] == "RESOLVED"
    assert result.json()["value"] == encode_value("done")
    assert steps.sleeps == [0.1]


@pytest.mark.parametrize("state", ["REJECTED", "REJECTED_CANCELED"])
def test_get_wait_on_a_rejection_prints_it_and_exits_9(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str, state: str
) -> None:
    create(api, uid)
    reason = encode_value('{"error": "boom"}')
    drive(lambda: api.complete_promise(uid, state, reason))  # type: ignore[arg-type]
    result = cli("promises", "get", uid, "--wait", "-o", "json")
    assert result.exit_code == 9
    assert result.json()["state"] == state
    assert result.stderr == f'error: promise {uid!r} is {state}: {{"error": "boom"}}\n'


def test_get_wait_on_a_timed_out_promise_exits_9(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, uid, timeout_ms=-1)  # overdue: the first read times it out
    steps = drive()
    result = cli("promises", "get", uid, "--wait", "-o", "id")
    assert (result.exit_code, result.stdout) == (9, f"{uid}\n")
    assert result.stderr == f"error: promise {uid!r} is REJECTED_TIMEDOUT\n"
    assert steps.sleeps == []


def test_get_wait_backs_off_from_100ms_doubling_to_2s(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, uid)
    steps = drive(*[nothing] * 7, lambda: api.complete_promise(uid, "RESOLVED"))
    result = cli("promises", "get", uid, "--wait", "-o", "id")
    assert (result.exit_code, result.stdout) == (0, f"{uid}\n")
    assert steps.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_get_wait_timeout_exits_10_and_prints_nothing(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, uid)
    steps = drive(*[nothing] * 10)
    result = cli("promises", "get", uid, "--wait", "--timeout", "1s")
    assert (result.exit_code, result.stdout) == (10, "")
    assert result.stderr == (
        f"error: promise {uid!r} is still PENDING after 1s; it goes on "
        f"(wait again: resonate promises get {uid} --wait)\n"
    )
    # The last pause is cut to the deadline, and the promise is read once more at it.
    assert steps.sleeps == [0.1, 0.2, 0.4, 0.3]


def test_get_wait_on_a_missing_promise_exits_4(cli: RunCli, uid: str) -> None:
    result = cli("promises", "get", f"{uid}/missing", "--wait")
    assert result.exit_code == 4
    assert "(HTTP 404, code 40400)" in result.stderr


def test_get_wait_on_a_completed_promise_answers_at_once(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, uid)
    api.complete_promise(uid, "RESOLVED")
    steps = drive()
    result = cli("promises", "get", uid, "--wait", "--no-color")
    assert result.exit_code == 0
    assert "RESOLVED" in result.stdout
    assert steps.sleeps == []


# --- invoke --wait: the same wait ---------------------------------------------------------------


def test_invoke_wait_prints_the_decoded_result_after_the_same_backoff(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    value = encode_value(json.dumps({"square": 49}))
    steps = drive(nothing, lambda: api.complete_promise(uid, "RESOLVED", value))
    result = cli("invoke", uid, "-f", "square", "--arg", "7", "--wait")
    assert (result.exit_code, result.stderr) == (0, "created\n")
    assert json.loads(result.stdout) == {"square": 49}
    assert steps.sleeps == [0.1, 0.2]


def test_invoke_wait_timeout_exits_10(cli: RunCli, drive: Callable[..., Steps], uid: str) -> None:
    steps = drive(*[nothing] * 10)
    result = cli("invoke", uid, "-f", "slow", "--wait", "--wait-timeout", "500ms")
    assert (result.exit_code, result.stdout) == (10, "")
    assert f"error: promise {uid!r} is still PENDING after 500ms" in result.stderr
    assert steps.sleeps == [0.1, 0.2, 0.2]


def test_invoke_wait_on_a_cancel_exits_9_with_the_reason(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    drive(lambda: api.complete_promise(uid, "REJECTED_CANCELED", encode_value('"no longer"')))
    result = cli("invoke", uid, "-f", "slow", "--wait")
    assert (result.exit_code, result.stdout) == (9, "")
    assert result.stderr.splitlines() == [
        "created",
        f'error: promise {uid!r} is REJECTED_CANCELED: "no longer"',
    ]


# --- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["promises", "get", "p", "--timeout", "1s"], "--wait"),
        (["promises", "get", "p", "--wait", "--timeout", "soon"], "invalid duration"),
        (["promises", "get", "p", "--wait", "--watch"], "exclusive"),
        (["promises", "get", "p", "-n", "1"], "--watch"),
        (["tasks", "search", "-n", "1"], "--watch"),
        (["promises", "search", "--watch", "-o", "json"], "--watch"),
        (["schedules", "get", "s", "--watch", "-o", "yaml"], "--watch"),
        (["locks", "search", "--watch", "-n", "0.01"], "interval"),
    ],
)
def test_wait_and_watch_usage_errors_exit_2(
    run_cli: RunCli, closed_port_url: str, args: list[str], complaint: str
) -> None:
    result = run_cli(*args, "-S", closed_port_url)
    assert result.exit_code == 2, result.stderr
    assert complaint in result.stderr
    assert result.stdout == ""


# --- --watch -o jsonl: a change feed ------------------------------------------------------------


def test_watch_jsonl_feed_of_a_filtered_search(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, f"{uid}/a")
    create(api, f"{uid}/b")

    def change() -> None:
        api.complete_promise(f"{uid}/a", "RESOLVED")
        create(api, f"{uid}/c")

    steps = drive(change, nothing)
    result = cli("promises", "search", f"{uid}/*", "--state", "pending", "--watch", "-o", "jsonl")
    assert (result.exit_code, result.stderr) == (0, "")
    assert events(result) == [
        # The first read: every match is new to the watch.
        ("created", f"{uid}/b", "PENDING"),
        ("created", f"{uid}/a", "PENDING"),
        # A new match, and one that no longer matches (shown as last seen).
        ("created", f"{uid}/c", "PENDING"),
        ("gone", f"{uid}/a", "PENDING"),
        # The third read found no change: no line.
    ]
    assert steps.sleeps == [2.0, 2.0, 2.0]  # the default interval


def test_watch_jsonl_reports_a_changed_state(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, f"{uid}/a")
    steps = drive(lambda: api.complete_promise(f"{uid}/a", "REJECTED"))
    result = cli("promises", "search", f"{uid}/*", "--watch", "-n", "0.5", "-o", "jsonl")
    assert result.exit_code == 0
    assert events(result) == [
        ("created", f"{uid}/a", "PENDING"),
        ("changed", f"{uid}/a", "REJECTED"),
    ]
    assert json.loads(result.stdout.splitlines()[1])["promise"]["state"] == "REJECTED"
    assert steps.sleeps == [0.5, 0.5]


def test_watch_follows_every_page(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    for name in "abc":
        create(api, f"{uid}/{name}")
    drive(lambda: api.complete_promise(f"{uid}/a", "RESOLVED"))
    result = cli("promises", "search", f"{uid}/*", "--limit", "1", "--watch", "-o", "jsonl")
    assert result.exit_code == 0
    assert events(result) == [
        ("created", f"{uid}/c", "PENDING"),
        ("created", f"{uid}/b", "PENDING"),
        ("created", f"{uid}/a", "PENDING"),
        ("changed", f"{uid}/a", "RESOLVED"),
    ]


def test_watch_id_prints_each_new_match(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, f"{uid}/a")

    def change() -> None:
        api.complete_promise(f"{uid}/a", "RESOLVED")
        create(api, f"{uid}/b")

    drive(change)
    result = cli("promises", "search", f"{uid}/*", "--watch", "-o", "id")
    assert (result.exit_code, result.stdout) == (0, f"{uid}/a\n{uid}/b\n")


def test_get_watch_of_a_lock_created_changed_gone(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    resource = f"{uid}/lock"
    drive(
        lambda: api.acquire_lock(resource, "e1", "p1", HOUR_MS),
        lambda: api.acquire_lock(resource, "e1", "p1", 2 * HOUR_MS),
        lambda: api.release_lock(resource, "e1"),
    )
    result = cli("locks", "get", resource, "--watch", "-o", "jsonl")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # Absent at first: no line until it appears.
    assert [(line["event"], line["lock"]["ttl"]) for line in lines] == [
        ("created", HOUR_MS),
        ("changed", 2 * HOUR_MS),
        ("gone", 2 * HOUR_MS),
    ]
    assert {line["lock"]["resourceId"] for line in lines} == {resource}


def test_search_watch_of_schedules(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    api.create_schedule(f"{uid}/a", YEARLY, "p.{{.timestamp}}", 60_000)
    drive(
        lambda: api.create_schedule(f"{uid}/b", YEARLY, "p.{{.timestamp}}", 60_000),
        lambda: api.delete_schedule(f"{uid}/a"),
    )
    result = cli("schedules", "search", f"{uid}/*", "--watch", "-o", "jsonl")
    assert result.exit_code == 0
    assert [(event, key) for event, key, _state in events(result, "schedule")] == [
        ("created", f"{uid}/a"),
        ("created", f"{uid}/b"),
        ("gone", f"{uid}/a"),
    ]


def test_search_watch_of_locks(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    drive(
        lambda: api.acquire_lock(f"{uid}/a", "e1", f"{uid}-p", HOUR_MS),
        lambda: api.release_lock(f"{uid}/a", "e1"),
    )
    result = cli("locks", "search", f"{uid}/*", "--watch", "-o", "jsonl")
    assert result.exit_code == 0
    assert [(event, key) for event, key, _state in events(result, "lock")] == [
        ("created", f"{uid}/a"),
        ("gone", f"{uid}/a"),
    ]


def test_search_and_get_watch_of_tasks(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    # The invoke task of a promise routed to a group nobody listens to stays INIT until claimed.
    task_id = f"__invoke:{uid}"
    api.create_promise(uid, now_ms() + HOUR_MS, tags={"resonate:invoke": "poll://any@nobody"})
    drive(lambda: api.claim_task(task_id, 1, f"{uid}-p", HOUR_MS))
    searched = cli("tasks", "search", "--root-promise-id", uid, "--watch", "-o", "jsonl")
    assert searched.exit_code == 0
    feed = events(searched, "task")
    assert feed[0] == ("created", task_id, "INIT")
    # A failed delivery may change the INIT task before the claim does; the claim comes last.
    assert feed[-1] == ("changed", task_id, "CLAIMED")

    drive(lambda: api.complete_task(task_id, 1))
    got = cli("tasks", "get", task_id, "--watch", "-o", "jsonl")
    assert got.exit_code == 0
    assert events(got, "task") == [
        ("created", task_id, "CLAIMED"),
        ("changed", task_id, "COMPLETED"),
    ]


# --- --watch as a table ------------------------------------------------------------------------


def test_watch_table_without_a_terminal_prints_again_at_each_change(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, f"{uid}/a")
    drive(nothing, lambda: api.complete_promise(f"{uid}/a", "RESOLVED"), nothing)
    result = cli("promises", "search", f"{uid}/*", "--watch", "--no-color")
    assert (result.exit_code, result.stderr) == (0, "")
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 2  # the first read, and the one change
    for block, state in zip(blocks, ["PENDING", "RESOLVED"], strict=True):
        title, header, row = block.strip("\n").splitlines()
        assert title.startswith(f"Every 2s: promises search {uid}/*  1 found  ")
        assert header.split() == ["ID", "STATE", "TIMEOUT", "TAGS"]
        assert row.split()[:2] == [f"{uid}/a", state]


def test_get_watch_table_shows_not_found_until_it_appears(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    drive(lambda: api.create_schedule(uid, YEARLY, "p.{{.timestamp}}", 60_000))
    result = cli("schedules", "get", uid, "--watch", "-n", "1", "--no-color")
    assert result.exit_code == 0
    first, second = result.stdout.split("\n\n")
    assert first.splitlines()[1:] == [f"not found: {uid}"]
    assert first.startswith(f"Every 1s: schedules get {uid}  ")
    fields = dict(
        line.split(None, 1) for line in second.splitlines()[1:] if len(line.split(None, 1)) == 2
    )
    assert fields["id"] == uid
    assert fields["cron"] == YEARLY


def test_watch_table_on_a_terminal_is_redrawn_in_place(
    cli: RunCli, api: ResonateClient, drive: Callable[..., Steps], uid: str
) -> None:
    create(api, f"{uid}/a")
    drive(lambda: api.complete_promise(f"{uid}/a", "RESOLVED"))
    # Rich takes the output for an interactive terminal (CliRunner's is not a TTY).
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120", "LINES": "40"}
    result = cli("promises", "search", f"{uid}/*", "--watch", "--no-color", env=terminal)
    assert (result.exit_code, result.stderr) == (0, "")
    output = result.stdout
    # Hidden cursor, then each redraw erases the previous one (erase line, cursor up).
    assert output.startswith("\x1b[?25l")
    assert "\x1b[2K\x1b[1A" in output
    first, _, redrawn = output.partition("\x1b[2K\x1b[1A")
    assert "PENDING" in first and "RESOLVED" not in first
    assert "RESOLVED" in redrawn
    assert output.count(f"Every 2s: promises search {uid}/*  1 found") >= 2
    assert output.rstrip("\r\n").endswith("\x1b[?25h")  # the cursor is back after Ctrl-C


# --- reads that fail ----------------------------------------------------------------------------


def test_watch_whose_first_read_fails_exits_with_its_code(
    run_cli: RunCli, closed_port_url: str, drive: Callable[..., Steps]
) -> None:
    drive()
    result = run_cli("promises", "search", "--watch", "-o", "jsonl", "-S", closed_port_url)
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: cannot reach {closed_port_url}")


def test_watch_outlives_a_server_restart(
    run_cli: RunCli,
    server_factory: type[ServerProcess],
    tmp_path: Path,
    drive: Callable[..., Steps],
) -> None:
    server = server_factory(tmp_path).start()
    with ResonateClient(server.url) as api:
        create(api, "a")

    def restart() -> None:
        server.start()
        with ResonateClient(server.url) as api:
            api.complete_promise("a", "RESOLVED")

    drive(server.kill, nothing, restart)
    result = run_cli("promises", "search", "--watch", "-n", "1", "-o", "jsonl", "-S", server.url)
    assert result.exit_code == 0
    assert events(result) == [("created", "a", "PENDING"), ("changed", "a", "RESOLVED")]
    notes = result.stderr.splitlines()
    assert len(notes) == 2, notes  # the outage once, though two reads failed
    assert notes[0].startswith(f"cannot reach {server.url}")
    assert notes[0].endswith("; retrying every 1s")
    assert notes[1] == "reconnected"


# --- Ctrl-C in a real process -----------------------------------------------------------------


def test_ctrl_c_ends_a_real_watch_with_exit_0_and_no_traceback(
    server: ServerProcess, api: ResonateClient, uid: str
) -> None:
    create(api, f"{uid}/a")
    command = [sys.executable, "-m", "resonate", "promises", "search", f"{uid}/*"]
    process = subprocess.Popen(
        [*command, "--watch", "-n", "0.1", "-o", "jsonl", "-S", server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = lines_of(process.stdout)
        # A pipe gets each change as it happens (the reader waits at most 20 s for it).
        assert json.loads(lines.get(timeout=20))["event"] == "created"
        api.complete_promise(f"{uid}/a", "RESOLVED")
        changed = json.loads(lines.get(timeout=20))
        assert (changed["event"], changed["promise"]["state"]) == ("changed", "RESOLVED")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
