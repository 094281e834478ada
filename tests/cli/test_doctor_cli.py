"""`resonate doctor` through the real CLI against real server processes: a fresh server is clean
(exit 0), a server with an unroutable task and a worker group without workers is not (exit 1),
`-o json` prints the route's document, the CLI's usual exit codes for connection errors."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from resonate.cli.doctor import doctor_params, finding_lines, parse_size
from resonate.client import UnexpectedResponse, doctor_report
from tests.cli.cli_runner import CliResult, RunCli
from tests.support.servers import ServerProcess, wait_until

ANSI = re.compile(r"\x1b\[")
# A busy test machine must not make a fresh server "slow" or "short of disk".
LENIENT = ("--slow-batch", "1m", "--min-disk-free", "0")


def create(server: ServerProcess, promise_id: str, recv: str) -> None:
    body = {"id": promise_id, "timeout": 2**62, "tags": {"resonate:invoke": recv}}
    response = httpx.post(server.url + "/promises", json=body)
    assert response.status_code == 201, response.text


def test_a_fresh_server_has_no_problems(
    run_cli: RunCli, server_factory: type[ServerProcess], tmp_path
) -> None:
    server = server_factory(tmp_path).start()
    result = run_cli("doctor", "-S", server.url, *LENIENT)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "no problems found\n", "")
    result = run_cli("doctor", "-S", server.url, *LENIENT, "-o", "json")
    assert result.exit_code == 0
    body = result.json()
    assert (body["ok"], body["findings"], body["groups"]) == (True, [], [])
    assert body["store"]["kind"] == "sqlite"


def test_findings_one_per_line_with_their_action_and_exit_1(
    run_cli: RunCli, server_factory: type[ServerProcess], tmp_path
) -> None:
    server = server_factory(tmp_path).start()
    create(server, "lost", "no-such-target")
    create(server, "billing-job", "poll://any@billing")

    def doctor(*args: str) -> CliResult | None:
        """The answer once both tasks read as waiting: the enqueue loop's failed delivery
        to billing holds its task ENQUEUED for a moment, at most every 15 s."""
        result = run_cli("doctor", "-S", server.url, *LENIENT, *args)
        return result if "billing  0            1" in result.stdout else None

    result = wait_until(lambda: doctor(), time.monotonic() + 10, what="both tasks waiting")
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error   task.unroutable __invoke:lost: INIT for root promise lost")
    assert lines[1].startswith("        -> fix the recv")
    assert any(
        line.startswith("warning group.no_connections billing: 1 REST task(s) waiting")
        for line in lines
    )
    assert "no problems found" not in result.stdout
    assert lines[-3:] == ["", "GROUP    CONNECTIONS  UNDELIVERED", "billing  0            1"]
    assert not ANSI.search(result.stdout)  # not a terminal: never coloured

    result = run_cli("doctor", "-S", server.url, *LENIENT, "-o", "json", "--limit", "1")
    assert result.exit_code == 1
    body = result.json()
    assert body["ok"] is False
    unroutable = [f for f in body["findings"] if f["check"] == "task.unroutable"]
    assert [f["severity"] for f in unroutable][-1:] == ["info"]  # the list stopped at 1
    assert len(unroutable) == 2
    assert set(body) == {"time", "ok", "findings", "groups", "loops", "store"}

    result = run_cli("doctor", "-S", server.url, *LENIENT, "-o", "id")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "__invoke:lost"


def test_thresholds_reach_the_server_on_both_stores(cli: RunCli, uid: str) -> None:
    assert cli("promises", "create", uid, "--timeout", "1h").exit_code == 0  # a store batch
    result = cli("doctor", "--slow-batch", "0ms", "--limit", "100", "-o", "json")
    assert result.exit_code == 1, result.stderr
    slow = [f for f in result.json()["findings"] if f["check"] == "store.slow"]
    assert [(f["severity"], f["kind"], f["id"]) for f in slow] == [("warning", "store", None)]


def test_unreachable_server_and_bad_options(run_cli: RunCli, closed_port_url: str) -> None:
    result = run_cli("doctor", "-S", closed_port_url)
    assert result.exit_code == 5
    assert result.stderr.startswith("error: cannot reach ")
    assert run_cli("doctor", "--slow-batch", "fast").exit_code == 2
    assert run_cli("doctor", "--min-disk-free", "lots").exit_code == 2
    assert run_cli("doctor", "--limit", "0").exit_code == 2


def test_the_query_carries_only_what_was_given() -> None:
    assert doctor_params(None, None, None, None, None, None, None) == ()
    assert doctor_params(5, "1m", "2s", 7, "90s", "250ms", "2G") == (
        ("limit", "5"),
        ("overdueAfter", "60000"),
        ("leaseWithin", "2000"),
        ("loopStalledAfter", "90000"),
        ("slowBatchMs", "250"),
        ("minCounter", "7"),
        ("minDiskFree", str(2 * 1024**3)),
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("1073741824", 1 << 30), ("500M", 500 << 20), ("1GiB", 1 << 30), ("2gb", 2 << 30)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_coloured_finding_has_a_coloured_label_only() -> None:
    finding = {
        "check": "store.slow",
        "severity": "warning",
        "kind": "store",
        "id": None,
        "message": "m",
        "action": "a",
    }
    plain = finding_lines(finding, color=False)
    assert plain == ["warning store.slow: m", "        -> a"]
    coloured = finding_lines(finding, color=True)
    assert ANSI.search(coloured[0]) and coloured[0].endswith("store.slow: m")
    assert coloured[1] == plain[1]


@pytest.mark.parametrize("body", [[], "proxy page", {"ok": True}, {"findings": [], "ok": "yes"}])
def test_an_answer_that_is_not_a_doctor_report_is_refused(body: object) -> None:
    with pytest.raises(UnexpectedResponse):
        doctor_report(body)
    assert doctor_report({"findings": [], "ok": True}) == {"findings": [], "ok": True}
