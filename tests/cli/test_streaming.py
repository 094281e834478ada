"""`--all` with `-o jsonl` and `-o id` streams: each page's lines are out before the next page is
requested, so `resonate promises search --all -o id | xargs …` starts at once on a big search.

Two proofs: in-process, a hook on the client and on stdout records the order of page requests
and lines; in a real process, a proxy holds the request for the second page until the test has
read the first line from the pipe.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import typer

from resonate.client import ApiRequest, ApiResponse, ResonateClient
from tests.cli.cli_runner import RunCli
from tests.cli.pipes import lines_of
from tests.support.servers import ServerProcess, wait_until

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def api(server: ServerProcess) -> Iterator[ResonateClient]:
    with ResonateClient(server.url) as client:
        yield client


@pytest.fixture
def order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the CLI did, in order: `page` for each request it sent, `line` for each stdout line."""
    happened: list[str] = []
    send = ResonateClient.send
    echo = typer.echo

    def recording_send(self: ResonateClient, request: ApiRequest) -> ApiResponse:
        happened.append("page")
        return send(self, request)

    def recording_echo(message: Any = None, *args: Any, err: bool = False, **kwargs: Any) -> None:
        if not err:
            happened.append("line")
        echo(message, *args, err=err, **kwargs)

    monkeypatch.setattr(ResonateClient, "send", recording_send)
    monkeypatch.setattr(typer, "echo", recording_echo)
    return happened


# Three items of each resource under the test's prefix, and the search that finds them.
def three_promises(api: ResonateClient, uid: str) -> list[str]:
    for name in "abc":
        api.create_promise(f"{uid}/{name}", now_ms() + HOUR_MS)
    return ["promises", "search", f"{uid}/*"]


def three_schedules(api: ResonateClient, uid: str) -> list[str]:
    for name in "abc":
        api.create_schedule(f"{uid}/{name}", "0 0 1 1 *", "p.{{.timestamp}}", 60_000)
    return ["schedules", "search", f"{uid}/*"]


def three_locks(api: ResonateClient, uid: str) -> list[str]:
    for name in "abc":
        api.acquire_lock(f"{uid}/{name}", "e1", f"{uid}-p", HOUR_MS)
    return ["locks", "search", f"{uid}/*"]


def three_tasks(api: ResonateClient, uid: str) -> list[str]:
    tags = {"resonate:invoke": "poll://any@nobody"}  # no worker: each task stays INIT
    for name in "abc":
        api.create_promise(f"{uid}/{name}", now_ms() + HOUR_MS, tags=tags)
    return ["tasks", "search", "--protocol", "rest", f"__invoke:{uid}/*"]


@pytest.mark.parametrize("output", ["jsonl", "id"])
@pytest.mark.parametrize("make_three", [three_promises, three_schedules, three_locks, three_tasks])
def test_all_prints_each_page_before_requesting_the_next(
    cli: RunCli,
    api: ResonateClient,
    order: list[str],
    uid: str,
    output: str,
    make_three: Callable[[ResonateClient, str], list[str]],
) -> None:
    search = make_three(api, uid)
    order.clear()
    result = cli(*search, "--all", "--limit", "1", "-o", output)
    assert (result.exit_code, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == 3
    # One item per page: its line is out before the next page is asked for. The server may
    # answer the third page with a cursor to an empty fourth.
    assert order[:6] == ["page", "line", "page", "line", "page", "line"]
    assert order[6:] in ([], ["page"])


def test_streamed_lines_are_the_items_of_the_collected_page(
    cli: RunCli, api: ResonateClient, uid: str
) -> None:
    three_promises(api, uid)
    streamed = cli("promises", "search", f"{uid}/*", "--all", "--limit", "2", "-o", "jsonl")
    collected = cli("promises", "search", f"{uid}/*", "--all", "--limit", "2", "-o", "json")
    items = collected.json()["promises"]
    assert [json.loads(line) for line in streamed.stdout.splitlines()] == items
    assert [item["id"] for item in items] == [f"{uid}/c", f"{uid}/b", f"{uid}/a"]


class GatedProxy:
    """An HTTP proxy to `target` that holds each request for a next page (one with a `cursor`)
    until `release()`, or at most `HOLD_SECONDS`."""

    HOLD_SECONDS = 30.0

    def __init__(self, target: str) -> None:
        self.gate = threading.Event()
        self.held = 0
        self.released_by_timeout = False
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if "cursor=" in self.path:
                    proxy.held += 1
                    if not proxy.gate.wait(proxy.HOLD_SECONDS):
                        proxy.released_by_timeout = True
                answer = httpx.get(target + self.path, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GatedProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self.gate.set()


def test_a_pipe_reads_the_first_line_while_the_next_page_is_still_held(
    server: ServerProcess, api: ResonateClient, uid: str
) -> None:
    three_promises(api, uid)
    with GatedProxy(server.url) as proxy:
        command = [sys.executable, "-m", "resonate", "promises", "search", f"{uid}/*"]
        process = subprocess.Popen(
            [*command, "--all", "--limit", "1", "-o", "id", "-S", proxy.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            lines = lines_of(process.stdout)
            # Page 2 is held by the proxy, yet the first id is already in the pipe.
            assert lines.get(timeout=20) == f"{uid}/c\n"
            wait_until(lambda: proxy.held == 1, time.monotonic() + 20, what="page 2 to be held")
            proxy.release()
            assert process.wait(timeout=20) == 0
            assert [lines.get(timeout=20) for _ in range(2)] == [f"{uid}/b\n", f"{uid}/a\n"]
            assert not proxy.released_by_timeout
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
