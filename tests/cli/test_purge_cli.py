"""`resonate promises purge`: the real CLI against a real `resonate serve` process, and against
canned answers for the failures a real server does not give on demand.

The session server is shared, so every purge is scoped to the test's own `uid` prefix with
`--id`; `--older-than 0s` makes the promises completed just before old enough.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from resonate.cli import promises as promises_cli
from resonate.client import ApiRequest, ApiResponse, ResonateClient, purge_promises_request
from tests.cli.cli_runner import CliResult, RunCli
from tests.cli.fake_http import Answer, canned

DRY_RUN_KEYS = {"count", "sample", "before"}
PURGE_KEYS = {"promises", "tasks", "before"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The JSON body of every purge request the CLI sends (the requests still go out)."""
    bodies: list[dict[str, Any]] = []
    send = ResonateClient.send

    def spy(self: ResonateClient, request: ApiRequest) -> ApiResponse:
        if request.path == "/promises/purge":
            bodies.append(dict(request.json or {}))
        return send(self, request)

    monkeypatch.setattr(ResonateClient, "send", spy)
    return bodies


@pytest.fixture
def every_progress_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promises_cli, "PURGE_PROGRESS_SECONDS", 0.0)


def completed(cli: RunCli, uid: str, names: dict[str, str], *tags: str) -> list[str]:
    """Create `uid/<name>` for each name and complete it with the given verb."""
    ids = []
    for name, verb in names.items():
        promise_id = f"{uid}/{name}"
        tag_args = [arg for tag in tags for arg in ("--tag", tag)]
        assert cli("promises", "create", promise_id, "-t", "1h", *tag_args).exit_code == 0
        yes = ["-y"] if verb == "cancel" else []
        assert cli("promises", verb, promise_id, *yes).exit_code == 0
        ids.append(promise_id)
    return ids


def exists(cli: RunCli, promise_id: str) -> bool:
    result = cli("promises", "get", promise_id)
    assert result.exit_code in (0, 4), result
    return result.exit_code == 0


def purge(cli: RunCli, uid: str, *args: str, **options: object) -> CliResult:
    return cli("promises", "purge", "--older-than", "0s", "--id", f"{uid}/*", *args, **options)


def assert_one_error_line(result: CliResult, exit_code: int, pattern: str) -> None:
    assert result.exit_code == exit_code, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


# --- against a real server ----------------------------------------------------------------------


def test_dry_run_prints_the_count_and_a_sample_and_deletes_nothing(
    cli: RunCli, uid: str, sent: list[dict[str, Any]]
) -> None:
    ids = completed(cli, uid, {"a": "resolve", "b": "reject", "c": "cancel"})
    assert cli("promises", "create", f"{uid}/pending", "-t", "1h").exit_code == 0

    result = purge(cli, uid, "--dry-run", "-o", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result
    document = result.json()
    assert set(document) == DRY_RUN_KEYS
    assert document["count"] == 3
    assert sorted(document["sample"]) == ids
    assert isinstance(document["before"], int)
    assert sent == [{"olderThan": 0, "id": f"{uid}/*", "dryRun": True}]

    table = purge(cli, uid, "--dry-run")
    assert table.exit_code == 0, table
    lines = table.stdout.splitlines()
    assert re.match(r"would purge 3 promises completed before \d{4}-\d\d-\d\dT.*Z \(", lines[0])
    assert sorted(line.strip() for line in lines[1:]) == ids

    only_ids = purge(cli, uid, "--dry-run", "-o", "id")
    assert sorted(only_ids.stdout.splitlines()) == ids
    assert all(exists(cli, promise_id) for promise_id in [*ids, f"{uid}/pending"])


def test_yes_purges_every_match_over_several_batches_with_one_cutoff(
    cli: RunCli, uid: str, sent: list[dict[str, Any]], every_progress_line: None
) -> None:
    ids = completed(cli, uid, {f"p{n}": "resolve" for n in range(7)})
    assert cli("promises", "create", f"{uid}/pending", "-t", "1h").exit_code == 0
    dry = purge(cli, uid, "--dry-run", "-o", "json").json()
    sent.clear()

    result = purge(cli, uid, "--batch-size", "2", "--yes", "-o", "json")
    assert result.exit_code == 0, result
    document = result.json()
    assert set(document) == PURGE_KEYS
    assert document["promises"] == dry["count"] == 7
    assert document["tasks"] == 0
    # 2 + 2 + 2 + 1: a progress line after each batch that another follows.
    assert result.stderr.splitlines() == [
        "purged 2 promises (0 tasks)...",
        "purged 4 promises (0 tasks)...",
        "purged 6 promises (0 tasks)...",
    ]
    assert len(sent) == 4
    assert sent[0] == {"olderThan": 0, "id": f"{uid}/*", "limit": 2, "dryRun": False}
    cutoff = document["before"]
    for body in sent[1:]:
        assert body == {"before": cutoff, "id": f"{uid}/*", "limit": 2, "dryRun": False}
    assert not any(exists(cli, promise_id) for promise_id in ids)
    assert exists(cli, f"{uid}/pending")


def test_the_table_output_says_what_was_purged(cli: RunCli, uid: str) -> None:
    completed(cli, uid, {"only": "resolve"})
    result = purge(cli, uid, "-y")
    assert result.exit_code == 0, result
    assert re.fullmatch(
        r"purged 1 promise \(0 tasks\) completed before \S+Z \([^)]*\)\n", result.stdout
    )


def test_without_yes_and_without_a_terminal_exits_3_and_sends_nothing(
    cli: RunCli, uid: str, sent: list[dict[str, Any]]
) -> None:
    ids = completed(cli, uid, {"a": "resolve"})
    result = purge(cli, uid)
    assert_one_error_line(result, 3, r"^error: confirmation required: pass --yes")
    assert sent == []
    assert exists(cli, ids[0])


@pytest.mark.parametrize(("answer", "exit_code"), [("n\n", 1), ("", 1), ("y\n", 0)])
def test_on_a_terminal_it_asks_with_the_dry_run_s_count(
    cli: RunCli,
    uid: str,
    sent: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    exit_code: int,
) -> None:
    monkeypatch.setattr(promises_cli, "stdin_is_terminal", lambda: True)
    ids = completed(cli, uid, {"a": "resolve", "b": "reject"})
    result = purge(cli, uid, "-o", "json", input=answer)
    assert result.exit_code == exit_code, result
    assert re.search(r"Purge 2 promises completed before \S+Z \([^)]*\)\? \[y/N\]", result.stderr)
    assert sent[0]["dryRun"] is True
    if exit_code:
        assert "{" not in result.stdout  # (the test runner echoes the answer on stdout)
        assert result.stderr.endswith("error: aborted\n")
        assert len(sent) == 1
        assert all(exists(cli, promise_id) for promise_id in ids)
        return
    # The purge counts from the cutoff the dry run fixed.
    dry_run_cutoff = sent[0]
    assert "olderThan" in dry_run_cutoff
    echoed_answer, document = result.stdout.split("\n", 1)
    assert echoed_answer.strip() == "y"
    assert json.loads(document)["promises"] == 2
    assert all("before" in body and "olderThan" not in body for body in sent[1:])
    assert not any(exists(cli, promise_id) for promise_id in ids)


def test_nothing_to_purge_does_not_ask(
    cli: RunCli, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promises_cli, "stdin_is_terminal", lambda: True)
    result = purge(cli, uid, "-o", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result
    assert result.json()["promises"] == 0


def test_state_id_and_tag_filters_reach_the_server(
    cli: RunCli, uid: str, sent: list[dict[str, Any]]
) -> None:
    completed(cli, uid, {"a1": "resolve", "a2": "reject", "a3": "cancel"}, "env=prod")
    completed(cli, uid, {"b1": "resolve", "b2": "reject"}, "env=test")

    def count(*args: str) -> int:
        result = purge(cli, uid, "--dry-run", "-o", "json", *args)
        assert result.exit_code == 0, result
        return int(result.json()["count"])

    assert count() == 5
    assert count("--state", "rejected", "--state", "REJECTED_CANCELED") == 3
    assert count("--tag", "env=prod") == 3
    assert count("--tag", "env=prod", "--state", "Resolved") == 1
    by_id = cli(
        "promises", "purge", "--older-than", "0s", "--id", f"{uid}/b*", "--dry-run", "-o", "json"
    )
    assert by_id.json()["count"] == 2
    assert count("--older-than", "1d") == 0  # the later --older-than wins: nothing is a day old
    assert sent[1]["states"] == ["REJECTED", "REJECTED_CANCELED"]
    assert sent[2]["tags"] == {"env": "prod"}

    result = purge(cli, uid, "--state", "rejected", "--tag", "env=test", "-y", "-o", "json")
    assert result.json()["promises"] == 1
    assert not exists(cli, f"{uid}/b2")
    assert count() == 4


def test_rejected_timedout_and_repeated_states_are_sent_once_in_upper_case(
    cli: RunCli, uid: str, sent: list[dict[str, Any]]
) -> None:
    result = purge(
        cli, uid, "--state", "rejected_timedout", "--state", "REJECTED_TIMEDOUT", "--dry-run"
    )
    assert result.exit_code == 0, result
    assert sent[0]["states"] == ["REJECTED_TIMEDOUT"]


# --- usage errors, API errors, interrupts -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((), r"^error: missing option --older-than"),
        (("--older-than", "3 weeks"), r"^error: .*--older-than.*invalid duration '3 weeks'"),
        (("--older-than", "1d", "--state", "pending"), r"^error: invalid --state value 'pending'"),
        (("--older-than", "1d", "--batch-size", "0"), r"^error: .*--batch-size"),
        (("--older-than", "1d", "--tag", "env"), r"^error: .*--tag.*expected k=v"),
    ],
)
def test_a_bad_option_is_one_error_line_and_exit_2(
    run_cli: RunCli, closed_port_url: str, args: tuple[str, ...], pattern: str
) -> None:
    result = run_cli("promises", "purge", *args, "--yes", "-S", closed_port_url)
    assert_one_error_line(result, 2, pattern)


@pytest.mark.parametrize(
    ("answer", "exit_code", "pattern"),
    [
        (Answer.api_error(400, 40000, "The request is invalid"), 2, r"\(HTTP 400, code 40000\)$"),
        (Answer.api_error(401, 40100, "Unauthorized"), 6, r"\(HTTP 401, code 40100\)$"),
        (Answer.api_error(500, 50000, "Internal error"), 8, r"\(HTTP 500, code 50000\)$"),
        (Answer.json(200, {"purged": 3}), 1, r"^error: unexpected response \(HTTP 200\)"),
    ],
)
@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_an_api_error_is_one_error_line_with_its_exit_code(
    run_cli: RunCli, answer: Answer, exit_code: int, pattern: str, mode: str
) -> None:
    with canned(answer) as server:
        result = run_cli("-S", server.url, "promises", "purge", "--older-than", "1d", mode)
    assert_one_error_line(result, exit_code, pattern)
    assert server.requests == ["POST /promises/purge"]


def batches(*answers: dict[str, Any] | BaseException) -> Any:
    """A `ResonateClient.send` that gives these answers (or raises them) in turn."""
    queue = list(answers)

    def send(self: ResonateClient, request: ApiRequest) -> ApiResponse:
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return ApiResponse(200, answer)

    return send


def full(promises: int, tasks: int) -> dict[str, Any]:
    return {"before": 1_800_000_000_000, "promises": promises, "tasks": tasks, "more": True}


def test_ctrl_c_during_a_batch_exits_130_saying_what_was_purged(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ResonateClient, "send", batches(full(2, 1), full(2, 0), KeyboardInterrupt())
    )
    result = run_cli("promises", "purge", "--older-than", "1d", "-y", "-S", closed_port_url)
    assert_one_error_line(
        result,
        130,
        r"^error: interrupted after purging 4 promises \(1 task\); "
        r"the batch under way may have been purged too$",
    )


def test_a_failure_after_some_batches_notes_what_they_purged(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resonate.client import ServerUnreachable

    failure = ServerUnreachable(closed_port_url, "timed out")
    monkeypatch.setattr(ResonateClient, "send", batches(full(3, 2), failure))
    result = run_cli("promises", "purge", "--older-than", "1d", "-y", "-S", closed_port_url)
    assert result.exit_code == 5, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "purged 3 promises (2 tasks) before the error",
        f"error: cannot reach {closed_port_url}: timed out",
    ]


def test_a_full_batch_that_purged_nothing_ends_the_purge(
    run_cli: RunCli, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ResonateClient, "send", batches(full(5, 0), full(0, 0)))
    result = run_cli(
        "promises", "purge", "--older-than", "1d", "-y", "-o", "json", "-S", closed_port_url
    )
    assert result.exit_code == 0, result
    assert result.json() == {"promises": 5, "tasks": 0, "before": 1_800_000_000_000}


def test_the_request_takes_exactly_one_cutoff() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        purge_promises_request()
    with pytest.raises(ValueError, match="exactly one"):
        purge_promises_request(older_than=1, before=2)
    request = purge_promises_request(
        before=5, states=("RESOLVED",), tags={"k": "v"}, limit=10, dry_run=True, sample=3
    )
    assert (request.method, request.path) == ("POST", "/promises/purge")
    assert request.json == {
        "before": 5,
        "states": ["RESOLVED"],
        "id": "*",
        "tags": {"k": "v"},
        "limit": 10,
        "dryRun": True,
        "sample": 3,
    }
