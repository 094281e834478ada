"""A socket-level HTTP/1.1 client for tests that must send bytes no HTTP library would: invalid
UTF-8 in headers, NUL bytes, bad methods, half-open connections."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    closed: bool  # the server closed the connection after this response

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    close: bool = True,
) -> bytes:
    """A request with Host and Content-Length; header values are raw bytes, sent as given."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: test"]
    for name, value in headers or []:
        lines.append(name.encode() + b": " + value)
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def read_response(sock: socket.socket, deadline: float) -> RawResponse:
    """One response from ``sock`` (Content-Length framing), then whether the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise ConnectionError(f"closed before a complete response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = _recv(sock, deadline)
        if not chunk:
            break
        rest += chunk
    connection = headers.get("connection", "").lower()
    # HTTP/1.0 answers (aiohttp's to unparsable requests) close unless they say keep-alive.
    closing = connection == "close" or (status_line.startswith("HTTP/1.0") and not connection)
    closed = closing and closed_by_peer(sock, deadline)
    return RawResponse(int(status_line.split()[1]), headers, rest[:length], closed)


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send ``data`` on a new connection and read one response."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock, deadline)


def closed_by_peer(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) before ``deadline``, reading and
    dropping anything it sends first."""
    try:
        while True:
            chunk = _recv(sock, deadline)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no answer before the deadline")
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except TimeoutError as error:
        raise TimeoutError("no answer before the deadline") from error


def error_of(response: RawResponse, code: int) -> dict[str, Any]:
    """The error of a JSON error answer (§1.6) with ``code``; fails on anything else."""
    assert response.status == code // 100, (response.status, response.body)
    assert response.headers.get("content-type", "").startswith("application/json"), response
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert error["details"], body
    return error  # type: ignore[no-any-return]
