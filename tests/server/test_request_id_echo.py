"""Every answer of the API listener echoes its request id in one `Request-Id` header (§1.4;
docs/configuration.md, "Logs"): answers of the routes, of the middleware (404, 405, 413, a 400
of validation), aiohttp's own refusals that no middleware sees (an unknown Expect), and the 2026
worker stream, whose headers go out before the middleware sees its response."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("echo")).start()
    try:
        yield process
    finally:
        process.terminate()


def exchange(port: int, data: bytes, *, until_headers: bool = False) -> tuple[int, list[str]]:
    """Send raw bytes; the status and every header line of the answer, as sent (duplicates
    kept). ``until_headers``: stop reading at the end of the headers (a stream never ends)."""
    deadline = time.monotonic() + 10
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            if until_headers and b"\r\n\r\n" in received:
                break
    head = received.partition(b"\r\n\r\n")[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    return int(status_line.split()[1]), lines


def request(method: str, path: str, rid: str, body: bytes | None = None, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Request-Id: {rid}", *extra]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def echoed(lines: list[str]) -> list[str]:
    return [
        line.partition(":")[2].strip() for line in lines if line.lower().startswith("request-id:")
    ]


def promise_body(promise_id: str) -> bytes:
    return json.dumps({"id": promise_id, "timeout": 2**62}).encode()


CASES = [
    pytest.param("POST", "/promises", "create", None, 201, id="create 201"),
    pytest.param("GET", "/promises/absent-echo", None, None, 404, id="read 404"),
    pytest.param("PUT", "/promises", None, None, 405, id="405 method not allowed"),
    pytest.param("GET", "/no/such/route", None, None, 404, id="404 no route"),
    pytest.param("POST", "/promises", b"{}", None, 400, id="400 validation"),
    pytest.param("POST", "/promises", b"{}", "Expect: teapot", 400, id="aiohttp's Expect refusal"),
]


@pytest.mark.parametrize(("method", "path", "body", "extra", "status"), CASES)
def test_every_answer_echoes_the_request_id_once(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | str | None,
    extra: str | None,
    status: int,
) -> None:
    rid = f"rid-{uuid.uuid4().hex[:8]}"
    payload = promise_body(rid) if body == "create" else body
    assert payload is None or isinstance(payload, bytes)
    extra_lines = [extra] if extra else []
    got, lines = exchange(server.port, request(method, path, rid, payload, *extra_lines))
    assert got == status, lines
    assert echoed(lines) == [rid]


def test_a_completion_echoes_the_request_id_once(server: ServerProcess) -> None:
    promise_id = f"p-{uuid.uuid4().hex[:8]}"
    assert (
        exchange(server.port, request("POST", "/promises", "c", promise_body(promise_id)))[0] == 201
    )
    body = json.dumps({"state": "RESOLVED", "value": {}}).encode()
    got, lines = exchange(server.port, request("PATCH", f"/promises/{promise_id}", "rid-x", body))
    assert got == 201 and echoed(lines) == ["rid-x"]


def test_a_generated_request_id_is_a_uuid4(server: ServerProcess) -> None:
    data = b"GET /promises/absent-echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    got, lines = exchange(server.port, data)
    assert got == 404
    (rid,) = echoed(lines)
    parsed = uuid.UUID(rid)
    assert str(parsed) == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_body_too_large_echoes_the_request_id(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=["--api-http-max-body-size", "64"]).start()
    try:
        got, lines = exchange(server.port, request("POST", "/promises", "big", b"x" * 100))
        assert got == 413 and echoed(lines) == ["big"]
    finally:
        server.terminate()


def test_the_2026_worker_stream_echoes_the_request_id(server: ServerProcess) -> None:
    data = request("GET", "/poll/echo-group/w1", "rid-stream")
    got, lines = exchange(server.port, data, until_headers=True)
    assert got == 200
    assert echoed(lines) == ["rid-stream"]
    assert any(line.lower().startswith("resonate-version:") for line in lines)
