"""SIGTERM while requests and SSE streams are open (issue 15 item 5; docs/operations.md,
"Drain"): the listeners stop accepting, `/readyz` answers 503 at once, streams end with a final
comment, the in-flight request finishes and commits, the process exits 0 within the bound; a
second signal exits at once with 130 (SIGINT) or 143 (SIGTERM) and loses no acknowledged write.

A request is held in flight deterministically: the test holds SQLite's write lock (`BEGIN
IMMEDIATE` on its own connection), so the server's group-commit batch waits for it (the server
waits up to its 5 s busy timeout) until the test rolls back."""

from __future__ import annotations

import contextlib
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, wait_until

TERMINATOR = b"0\r\n\r\n"
SHUTDOWN_COMMENT = b": shutting down\n\n"
# http-api.md §12: api.http.timeout (10 s) for in-flight requests, plus the background loops'
# current pass and closing the store.
EXIT_BOUND = 15.0


class Stream:
    """An SSE stream on a raw socket, its response head read (status 200)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        request = f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n"
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "the stream closed before its head"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        self.data = head.partition(b"\r\n\r\n")[2]

    def read_until_end(self, within: float = 10.0) -> bytes:
        """What the stream sends until its terminating chunk (or the server closes it)."""
        deadline = time.monotonic() + within
        while not self.data.endswith(TERMINATOR):
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise AssertionError(f"the stream did not end: {self.data!r}") from None
            if not chunk:
                break
            self.data += chunk
        return self.data

    def close(self) -> None:
        self.sock.close()


def ends_with_the_final_comment(data: bytes) -> bool:
    """The last chunk before the terminating one is the `: shutting down` comment."""
    chunk = f"{len(SHUTDOWN_COMMENT):x}\r\n".encode() + SHUTDOWN_COMMENT + b"\r\n"
    return data.endswith(chunk + TERMINATOR)


def in_flight_creates(server: ServerProcess) -> float:
    text = httpx.get(server.metrics_url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("api_requests_in_flight{") and 'type="CreatePromise"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@contextlib.contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock, held by the test until it rolls back (at the latest on exit)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def create(server: ServerProcess, pid: str) -> httpx.Response:
    return httpx.post(server.url + "/promises", json={"id": pid, "timeout": 2**62}, timeout=30)


def start_slow_create(server: ServerProcess, pool: ThreadPoolExecutor) -> Future[httpx.Response]:
    """A create that waits on the test's write lock; returns once the server serves it."""
    slow = pool.submit(create, server, "slow")
    wait_until(
        lambda: in_flight_creates(server) == 1,
        time.monotonic() + 10,
        what="the create to be in flight",
    )
    return slow


def wait_not_ready(probe: httpx.Client) -> httpx.Response:
    """`/readyz` on the probe's open keep-alive connection until it answers 503."""

    def answer() -> httpx.Response | None:
        response = probe.get("/readyz")
        return response if response.status_code == 503 else None

    result: httpx.Response = wait_until(answer, time.monotonic() + 5, what="/readyz 503")
    return result


def refuses_connections(server: ServerProcess) -> bool:
    try:
        httpx.get(server.url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_sigterm_drains_requests_and_streams_and_exits_zero(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(tmp_path).start()
    assert server.process is not None
    api_stream = Stream(server.port, "/poll/drain/api-worker")
    poll_stream = Stream(server.poll_port, "/drain/poll-worker")
    with (
        httpx.Client(base_url=server.url, timeout=10) as probe,
        ThreadPoolExecutor(1) as pool,
    ):
        assert probe.get("/readyz").status_code == 200  # the probe's connection is open
        with write_lock(server.db_path) as lock:
            slow = start_slow_create(server, pool)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            not_ready = wait_not_ready(probe)
            assert not_ready.json()["error"]["code"] == 50300
            assert ends_with_the_final_comment(api_stream.read_until_end())
            assert ends_with_the_final_comment(poll_stream.read_until_end())
            wait_until(
                lambda: refuses_connections(server),
                time.monotonic() + 5,
                what="the listener to stop accepting",
            )
            assert not slow.done()  # still waiting on the lock, the drain waits for it
            lock.execute("ROLLBACK")
        assert slow.result().status_code == 201  # it finished during the drain, committed
        assert server.process.wait(timeout=EXIT_BOUND) == 0
        assert time.monotonic() - signalled < EXIT_BOUND
    api_stream.close()
    poll_stream.close()
    assert "stopped" in server.log()
    restarted = server_factory(tmp_path, db_path=server.db_path).start()
    assert httpx.get(restarted.url + "/promises/slow").json()["state"] == "PENDING"


def test_a_request_past_the_drain_limit_is_cut_and_the_exit_is_still_zero(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    """`api.http.timeout` bounds the wait for in-flight requests: one still waiting then is
    cancelled (no answer, so no 2xx) and logged with its request id; the process exits 0."""
    server = server_factory(tmp_path, extra_args=["--api-http-timeout", "500ms"]).start()
    assert server.process is not None
    with ThreadPoolExecutor(1) as pool, write_lock(server.db_path) as lock:
        slow = start_slow_create(server, pool)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        wait_until(
            lambda: "cancelled at shutdown" in server.log(),
            time.monotonic() + 5,
            what="the request to be cut",
        )
        assert 0.4 < time.monotonic() - signalled < 3
        # Its queued write may still commit once the lock goes (an answer lost, not a 2xx for
        # a write that did not commit); the test stops holding the lock so the store can close.
        lock.execute("ROLLBACK")
        try:
            status = slow.result().status_code
        except httpx.HTTPError:
            status = 0  # cut
        assert not 200 <= status < 300
        assert server.process.wait(timeout=EXIT_BOUND) == 0
    (line,) = [line for line in server.log().splitlines() if "cancelled at shutdown" in line]
    assert "WARNING" in line and "POST /promises" in line and "request id" in line


@pytest.mark.parametrize(
    ("second", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_second_signal_exits_at_once_and_keeps_acknowledged_writes(
    server_factory: type[ServerProcess], tmp_path: Path, second: signal.Signals, code: int
) -> None:
    server = server_factory(tmp_path).start()
    assert server.process is not None
    assert create(server, "acknowledged").status_code == 201
    with (
        httpx.Client(base_url=server.url, timeout=10) as probe,
        ThreadPoolExecutor(1) as pool,
    ):
        assert probe.get("/readyz").status_code == 200
        with write_lock(server.db_path):
            slow = start_slow_create(server, pool)  # keeps the drain going
            server.process.send_signal(signal.SIGTERM)
            wait_not_ready(probe)  # draining
            server.process.send_signal(second)
            assert server.process.wait(timeout=5) == code
            try:
                status = slow.result().status_code
            except httpx.HTTPError:
                status = 0  # the connection closed with the process
            assert not 200 <= status < 300
    assert f"second signal ({second.name})" in server.log()
    restarted = server_factory(tmp_path, db_path=server.db_path).start()
    assert httpx.get(restarted.url + "/promises/acknowledged").json()["state"] == "PENDING"
