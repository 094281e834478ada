"""Connection limits of every listener (docs/server.md, "Limits"): the header timeout, the idle
timeout, the connection cap, and the open-files limit. Timeouts are configured short (1 s) and
every wait polls against a deadline.

The store plays no part here: these run once, on SQLite.
"""

from __future__ import annotations

import asyncio
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resonate.server.http.connections import connections_per_listener
from tests.server.raw_http import closed_by_peer, error_of, exchange, read_response, request_bytes
from tests.support.live import LiveServer
from tests.support.servers import ServerProcess, eventually, wait_until

TIMEOUT = 1.0  # the header and idle timeouts these servers run with, seconds
EARLY = 0.8  # a connection closed sooner than this broke the timeout (timers fire on time)
SLACK = 4.0  # a loaded machine (2 shared cores) may fire late, never early


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--api-http-header-timeout", "1s", "--api-http-idle-timeout", "1s"]
    args += ["--aio-poll-keep-alive", "200ms"]
    process = ServerProcess(tmp_path_factory.mktemp("timed"), extra_args=args).start()
    yield process
    process.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def lifetime(sock: socket.socket, opened: float) -> float:
    """Seconds from ``opened`` until the server closes ``sock``; fails past the slack."""
    assert closed_by_peer(sock, opened + TIMEOUT + SLACK), "the server never closed it"
    return time.monotonic() - opened


# ---- header timeout: a request line and headers within api.http.headerTimeout ----------------


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"GET /healthz HT", id="part-of-the-request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: test\r\n", id="headers-never-end"),
    ],
)
@pytest.mark.parametrize("listener", ["api", "poll"])
def test_a_connection_without_complete_headers_is_closed_after_the_header_timeout(
    timed: ServerProcess, listener: str, sent: bytes
) -> None:
    port = timed.port if listener == "api" else timed.poll_port
    opened = time.monotonic()
    with connect(port) as sock:
        sock.sendall(sent)
        assert lifetime(sock, opened) >= EARLY


def test_bytes_trickling_in_do_not_extend_the_header_timeout(timed: ServerProcess) -> None:
    """A slowloris client: one byte every 200 ms still has 1 s for the whole header."""
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    opened = time.monotonic()
    with connect(timed.port) as sock:
        for byte in request[:10]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if closed_by_peer(sock, time.monotonic() + 0.2):
                break
        assert EARLY <= lifetime(sock, opened) <= TIMEOUT + SLACK


def test_the_header_timeout_restarts_for_each_request_of_a_connection(
    timed: ServerProcess,
) -> None:
    """The clock runs from the first byte of a request, not from the connection's opening."""
    with connect(timed.port) as sock:
        for _ in range(3):
            sock.sendall(request_bytes("GET", "/healthz", close=False))
            assert read_response(sock, time.monotonic() + 5).status == 200
            # Longer than the header timeout in all, each request well within it.
            assert not closed_by_peer(sock, time.monotonic() + 0.5)


# ---- idle timeout: keep-alive connections waiting for a request --------------------------------


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    timed: ServerProcess,
) -> None:
    with connect(timed.port) as sock:
        sock.sendall(request_bytes("GET", "/healthz", close=False))
        assert read_response(sock, time.monotonic() + 5).status == 200
        answered = time.monotonic()
        assert lifetime(sock, answered) >= EARLY


@pytest.mark.parametrize("listener", ["api", "poll"])
def test_a_poll_stream_outlives_both_timeouts(timed: ServerProcess, listener: str) -> None:
    """A stream is a request in progress, never idle: it stays open (with its keep-alive
    comments) well past the header and idle timeouts."""
    port, path = (timed.port, "/poll/g/w1") if listener == "api" else (timed.poll_port, "/g/w2")
    with connect(port) as sock:
        sock.sendall(request_bytes("GET", path, close=False))
        until = time.monotonic() + 3 * TIMEOUT
        received = b""
        while time.monotonic() < until:
            sock.settimeout(until - time.monotonic())
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            assert chunk, "the server closed a live stream"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert received.count(b": keep-alive") >= 5


# ---- the connection cap --------------------------------------------------------------------

CAP = 20


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--api-http-max-connections", str(CAP), "--api-http-header-timeout", "30s"]
    process = ServerProcess(tmp_path_factory.mktemp("capped"), extra_args=args).start()
    yield process
    process.stop()


def test_at_the_cap_a_new_connection_closes_the_oldest_idle_one(capped: ServerProcess) -> None:
    """Connections that serve no request make room: /healthz gets through a full listener."""
    idle = [connect(capped.port) for _ in range(CAP)]
    try:
        time.sleep(0)  # nothing to wait for: the server accepts them in order
        response = exchange(capped.port, request_bytes("GET", "/healthz"))
        assert response.status == 200
        assert closed_by_peer(idle[0], time.monotonic() + 5)  # the oldest made room
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("listener", ["api", "poll"])
def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused(
    capped: ServerProcess, listener: str
) -> None:
    """The API answers 503 (an SDK retries after 1 s); the poll listener only closes the
    connection (an SDK poller stops for good on a non-2xx answer, reconnects after a refusal)."""
    port, prefix = (capped.port, "/poll/g/") if listener == "api" else (capped.poll_port, "/g/")
    streams = []
    try:
        for index in range(CAP):
            sock = connect(port)
            sock.sendall(request_bytes("GET", f"{prefix}busy-{listener}-{index}", close=False))
            assert read_response_head(sock).startswith(b"HTTP/1.1 200")
            streams.append(sock)
        with connect(port) as extra:
            if listener == "api":
                response = read_response(extra, time.monotonic() + 5)
                error_of(response, 50302)
                assert response.headers["retry-after"] == "1"
            else:
                assert closed_by_peer(extra, time.monotonic() + 5)
                extra.settimeout(0)
    finally:
        for sock in streams:
            sock.close()


def read_response_head(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(deadline - time.monotonic())
        data += sock.recv(4096)
    return data


@pytest.mark.parametrize(
    ("configured", "listeners", "open_files", "expected"),
    [
        (4096, 3, 1_048_576, 4096),
        (4096, 3, 20_000, 4096),
        (4096, 3, 4096, (4096 - 256) // 3),
        (4096, 3, None, 4096),
        (4096, 3, -1, 4096),  # RLIM_INFINITY
        (10, 3, 200, 1),
    ],
)
def test_the_cap_is_lowered_to_what_the_open_files_limit_allows(
    configured: int, listeners: int, open_files: int | None, expected: int
) -> None:
    assert connections_per_listener(configured, listeners, open_files) == expected


def test_the_server_raises_its_open_files_limit_and_says_so(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip("needs a finite hard limit of open files of at least 2048")
    code = (
        "import resource;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (1024, {hard}));"
        "from resonate.server.http.connections import raise_open_files_limit;"
        "print(raise_open_files_limit())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"OpenFilesLimit(before=1024, now={hard})"


# ---- 2,000 half-open connections --------------------------------------------------------------

HALF_OPEN = 2000


def open_files_of(pid: int) -> int | None:
    path = Path(f"/proc/{pid}/fd")
    return len(os.listdir(path)) if path.exists() else None


class HealthProbe(threading.Thread):
    """GET /healthz on a fresh connection, again and again, timing each answer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = exchange(self.port, request_bytes("GET", "/healthz"), timeout=5)
                assert response.status == 200
            except Exception as error:  # recorded: the test reports them all
                self.failures.append(repr(error))
            self.latencies.append(time.monotonic() - started)
            self.stop.wait(0.02)


def test_2000_half_open_connections_are_closed_in_time_and_healthz_stays_fast(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = HALF_OPEN + 200
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    server = ServerProcess(tmp_path, extra_args=["--api-http-header-timeout", "1s"]).start()
    probe = HealthProbe(server.port)
    sockets: dict[int, tuple[socket.socket, float]] = {}
    try:
        assert server.process is not None
        before = open_files_of(server.process.pid)
        probe.start()
        started = time.monotonic()
        for _ in range(HALF_OPEN):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # headers never end
            sock.setblocking(False)
            sockets[sock.fileno()] = (sock, time.monotonic())
        opening = time.monotonic() - started
        lifetimes = wait_for_all_closed(sockets, deadline=time.monotonic() + TIMEOUT + 3 * SLACK)
        probe.stop.set()
        probe.join(10)
        assert len(lifetimes) == HALF_OPEN, f"{HALF_OPEN - len(lifetimes)} never closed"
        after = (
            wait_until(
                lambda: (
                    (n := open_files_of(server.process.pid)) is not None  # type: ignore[union-attr]
                    and n <= before + 10
                    and n
                ),
                time.monotonic() + 10,
                what="the server's descriptors to come back",
            )
            if before is not None
            else None
        )
        latencies = sorted(probe.latencies)
        figures = {
            "opening (s)": round(opening, 2),
            "lifetime min/median/max (s)": (
                round(min(lifetimes), 2),
                round(statistics.median(lifetimes), 2),
                round(max(lifetimes), 2),
            ),
            "healthz requests": len(latencies),
            "healthz median/p95/max (ms)": (
                round(statistics.median(latencies) * 1000, 1),
                round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
                round(latencies[-1] * 1000, 1),
            ),
            "server descriptors before/after": (before, after),
        }
        print(f"\n2000 half-open connections: {figures}")
        assert not probe.failures, probe.failures[:5]
        assert min(lifetimes) >= EARLY
        assert max(lifetimes) <= opening + TIMEOUT + SLACK
        assert statistics.median(latencies) < 0.1, figures
        assert latencies[-1] < 1.0, figures
        assert "Traceback" not in server.log()
    finally:
        probe.stop.set()
        for sock, _ in sockets.values():
            sock.close()
        server.stop()


def wait_for_all_closed(
    sockets: dict[int, tuple[socket.socket, float]], deadline: float
) -> list[float]:
    """Each socket's lifetime, from its opening until the server closed it."""
    selector = selectors.DefaultSelector()
    for fileno, (sock, _) in sockets.items():
        selector.register(sock, selectors.EVENT_READ, fileno)
    lifetimes: list[float] = []
    while len(lifetimes) < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            sock, opened = sockets[key.data]
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                lifetimes.append(time.monotonic() - opened)
                selector.unregister(sock)
    selector.close()
    return lifetimes


# ---- §12: a body still arriving when the server shuts down -------------------------------------


async def test_a_body_still_arriving_at_shutdown_is_answered_503_at_once(tmp_path: Path) -> None:
    """aiohttp reads nothing more from a connection once the drain starts: the request gets
    503 (50300) at once, not a 408 (or a cut connection) when the drain times out."""
    live = LiveServer(tmp_path / "live.db")
    await live.start()
    stopped = False
    sock = None
    try:
        assert live.server.api_address is not None
        listener = live.server.listeners["api"]
        sock = socket.create_connection(("127.0.0.1", live.server.api_address[1]), timeout=10)
        sock.sendall(b"POST /promises HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{")
        # Serving (out of the idle books) once the handler waits for the rest of the body.
        await eventually(lambda: listener.open_connections == 1 and not listener.idle, 5)
        reader = asyncio.create_task(asyncio.to_thread(read_response, sock, time.monotonic() + 15))
        started = time.monotonic()
        await live.stop()
        stopped = True
        response = await reader
        assert time.monotonic() - started < 5  # the drain limit, api.http.timeout, is 10 s
        error_of(response, 50300)
    finally:
        if sock is not None:
            sock.close()
        if not stopped:
            await live.stop()
