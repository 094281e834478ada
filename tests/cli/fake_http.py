"""Servers that misbehave, for the CLI's failure tests: a plain HTTP server answering whatever
it is told (HTML, JSON of any shape, any status), and a socket that accepts connections and
never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, document: Any) -> Answer:
        return cls(status, json.dumps(document).encode())

    @classmethod
    def api_error(cls, status: int, code: int, message: str) -> Answer:
        return cls.json(status, {"error": {"code": code, "message": message, "details": []}})

    @classmethod
    def html(cls, status: int, text: str = "<html><body>Hello</body></html>") -> Answer:
        return cls(status, text.encode(), "text/html; charset=utf-8")


class CannedServer:
    """Answers every request with `answer` (or `routes[path]`, the path without its query)."""

    def __init__(self, answer: Answer, routes: dict[str, Answer] | None = None) -> None:
        self.answer = answer
        self.routes = routes or {}
        self.requests: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                canned.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                answer = canned.respond(self.path)
                self.send_response(answer.status)
                self.send_header("content-type", answer.content_type)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def respond(self, path: str) -> Answer:
        """The answer to a request for `path` (with its query)."""
        return self.routes.get(path.split("?")[0], self.answer)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class TwoPageSearch(CannedServer):
    """A search answered in two pages; the second only once `release` is set, so that a test
    can act (close a pipe, say) between the two. `second_page_asked` is set when it is asked."""

    def __init__(self, items_key: str, first: list[Any], second: list[Any]) -> None:
        super().__init__(Answer.json(200, {"cursor": "page-2", items_key: first}))
        self.second_page = Answer.json(200, {"cursor": None, items_key: second})
        self.release = threading.Event()
        self.second_page_asked = threading.Event()

    def respond(self, path: str) -> Answer:
        if "cursor=" not in path:
            return self.answer
        self.second_page_asked.set()
        self.release.wait(60)
        return self.second_page

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        super().__exit__(*exc_info)


class SilentServer:
    """Accepts connections, reads nothing, answers nothing: every request times out."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(connection)
            self.connected.set()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for connection in self._held:
            connection.close()


@contextmanager
def canned(answer: Answer, routes: dict[str, Answer] | None = None) -> Iterator[CannedServer]:
    with CannedServer(answer, routes) as server:
        yield server


def promise_document(promise_id: str, **extra: Any) -> dict[str, Any]:
    """A promise as the API shows it."""
    return {
        "id": promise_id,
        "state": "PENDING",
        "param": {"headers": {"k": "v"}, "data": "aGVsbG8="},
        "value": {},
        "timeout": 1_900_000_000_000,
        "tags": {"env": "test"},
        "createdOn": 1_800_000_000_000,
        **extra,
    }
