"""The lane: plain requests of the API listener served without aiohttp's request pipeline.

aiohttp's web server costs about 30 µs of CPU per request on the test machine before any of
our code runs (a hello-world route: 39 µs per request, against 8 µs for a bare asyncio
protocol; docs/performance.md, "The lane"). Most of the API's traffic is small, plain
requests: a worker's creates, completions, reads and task calls, each a request line, a few
headers and a small JSON body arriving in one piece. The connection's protocol
(``ConnectionHandler``) reads those itself: it frames them, finds their route in the same route
table, runs them through the same ``serve`` as aiohttp's middleware (auth, header checks, the
handler, error bodies, metrics, access line) and writes the answer. Everything else goes to
aiohttp, byte for byte as it arrived:

- **one request** (``ELSEWHERE``): a request the lane frames with certainty but does not serve
  (a query string, ``%`` escapes, an unknown route, ``Connection`` other than ``keep-alive``,
  ``Content-Encoding``, a
  CORS ``Origin``, no ``Host``…). aiohttp parses exactly its bytes and answers it; the lane
  goes on with the next request once aiohttp is done.
- **the rest of the connection** (``STICKY``): anything whose framing the lane does not take
  on itself (``Transfer-Encoding``, ``Expect``, ``Upgrade``, HTTP/1.0, bytes outside ASCII in
  the head, a malformed line, repeated headers, a large body, a body still arriving after the
  header timeout). From then on the connection is aiohttp's, as if the lane did not exist.

A request is thus answered by the lane only when its meaning cannot differ between the two
paths; tests/server/test_lane.py compares the answers of both on every route.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute
from multidict import CIMultiDict, CIMultiDictProxy

from resonate.server.http.protocol import LaneRequest

# What parse() found at the head of the buffer.
NEED_MORE = 0  # not a whole request yet
SERVE = 1  # a request the lane answers
ELSEWHERE = 2  # one well-framed request for aiohttp
STICKY = 3  # the connection goes to aiohttp for good

# Fixed sizes of the HTTP parser (docs/server.md, "Limits"), aiohttp's and the lane's. The
# request line may be longer than a header line (ids in paths, tag filters in queries); the two
# limits differ so that aiohttp's LineTooLong tells which one was passed.
MAX_REQUEST_LINE = 16384
MAX_HEADER_LINE = 8190
MAX_HEADERS = 128
# Larger heads and bodies, and more headers, go to aiohttp, whose limits (and 413, 431) apply.
MAX_HEAD = MAX_HEADER_LINE
MAX_BODY = 256 * 1024
# How long the lane waits for the rest of a body whose head came (seconds); then aiohttp takes
# the connection over, and with it the body's timeout (api.http.headerTimeout, then 408).
BODY_GRACE = 0.1
# More pipelined bytes than this waiting in the lane: stop reading until it catches up.
MAX_BUFFERED = 1024 * 1024

# The head: a request line of HTTP/1.1 and header lines of a token, a colon and a value of
# visible ASCII, spaces and tabs. Anything else is left to aiohttp's parser.
_HEAD = re.compile(
    r"[A-Z]+ [!-~]+ HTTP/1\.1"
    r"(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*(?:[!-~](?:[ -~\t]*[!-~])?)?[ \t]*)*"
)
# A path whose meaning is its bytes: no escapes, query, fragment, dot segment or empty segment
# (which aiohttp's URL handling would decode or normalise).
_SEGMENT = r"[A-Za-z0-9\-_~!$&'()*+,;=:@]+(?:\.+[A-Za-z0-9\-_~!$&'()*+,;=:@]+)*"
_PLAIN_PATH = re.compile(f"/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?")


# How the lane serves a request: the API's ``serve`` for a matched route (http/app.py).
Serve = Callable[[LaneRequest, AbstractRoute], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class _Resource:
    path: str | None  # a plain path, or None: the pattern
    pattern: re.Pattern[str] | None
    routes: dict[str, AbstractRoute | None]  # method -> route; None: not served by the lane


class Lane:
    """The routes the lane serves, and how it frames, serves and writes a request."""

    def __init__(
        self,
        resources: Iterable[AbstractResource],
        served: Callable[[AbstractRoute], bool],
        serve: Serve,
        *,
        cors: bool,
        served_count: list[float] | None = None,
    ) -> None:
        """``resources`` in the router's order; ``served(route)``: whether the lane may serve
        the route (not a stream, say)."""
        self.serve = serve
        self.cors = cors
        self.served_count = served_count if served_count is not None else [0.0]
        # Per (method, first path segment): the resources that could match. aiohttp takes the
        # first resource whose pattern matches and has the method; the lane serves a path only
        # when exactly one such resource exists, so the two cannot pick differently.
        self._by_segment: dict[tuple[str, str], list[_Resource]] = {}
        for resource in resources:
            info = resource.get_info()
            entry = _Resource(
                info.get("path"),
                info.get("pattern"),
                {route.method: route if served(route) else None for route in resource},
            )
            first = (entry.path or info.get("formatter") or "/").split("/")[1]
            if "{" in first:  # a pattern from the first segment: not in the table today
                raise ValueError(f"the lane cannot index the route {first!r}")
            for method in entry.routes:
                self._by_segment.setdefault((method, first), []).append(entry)

    def match(self, method: str, path: str) -> tuple[AbstractRoute, dict[str, str]] | None:
        """The route and path parameters of a plain path, when the lane serves it."""
        end = path.find("/", 1)
        candidates = self._by_segment.get((method, path[1:end] if end > 0 else path[1:]))
        if not candidates:
            return None
        found: tuple[AbstractRoute | None, dict[str, str]] | None = None
        for resource in candidates:
            if resource.path is not None:
                if resource.path != path:
                    continue
                params: dict[str, str] = {}
            else:
                assert resource.pattern is not None
                match = resource.pattern.fullmatch(path)
                if match is None:
                    continue
                params = match.groupdict()
            if found is not None:
                return None  # two resources match: leave the choice to aiohttp's router
            found = resource.routes[method], params
        if found is None or found[0] is None:
            return None
        return found[0], found[1]

    def parse(self, buffer: bytearray) -> tuple[int, int, LaneRequest | None, AbstractRoute | None]:
        """(verdict, size of the request in bytes, request, route) for the head of ``buffer``."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return (NEED_MORE if len(buffer) <= MAX_HEAD else STICKY), 0, None, None
        if end > MAX_HEAD:
            return STICKY, 0, None, None
        try:
            head = buffer[:end].decode("ascii")
        except UnicodeDecodeError:
            return STICKY, 0, None, None
        if _HEAD.fullmatch(head) is None:
            return STICKY, 0, None, None
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ")
        del lines[0]
        # Names in lower case: handlers look headers up case-insensitively, never list them.
        fields = [line.split(":", 1) for line in lines]  # the head's pattern holds the colons
        names = {name.lower(): value.strip(" \t") for name, value in fields}
        if len(names) != len(lines) or names.keys() & _STICKY_HEADERS or len(lines) > MAX_HEADERS:
            return STICKY, 0, None, None
        headers = CIMultiDictProxy(CIMultiDict(names))
        length = 0
        raw_length = headers.get("Content-Length")
        if raw_length is not None:
            if not raw_length.isdigit() or len(raw_length) > 9:
                return STICKY, 0, None, None
            length = int(raw_length)
            if length > MAX_BODY:
                return STICKY, 0, None, None
        size = end + 4 + length
        if len(buffer) < size:
            return NEED_MORE, size, None, None
        if (
            names.keys() & _ELSEWHERE_HEADERS
            or names.get("connection", "keep-alive").lower() != "keep-alive"
            or "host" not in names
            or (self.cors and "origin" in names)
            or _PLAIN_PATH.fullmatch(target) is None
        ):
            return ELSEWHERE, size, None, None
        found = self.match(method, target)
        if found is None:
            return ELSEWHERE, size, None, None
        route, params = found
        body = bytes(buffer[end + 4 : size]) if length else b""
        self.served_count[0] += 1
        return SERVE, size, LaneRequest(method, target, headers, params, body), route

    @staticmethod
    def render(response: web.StreamResponse, close: bool) -> bytes:
        """The bytes of an answer, as aiohttp would write it (Content-Length, Date, Server)."""
        body = getattr(response, "body", None)
        if body is None:
            body = b""
        elif not isinstance(body, bytes):
            raise TypeError(f"the lane writes bytes bodies, not {type(body).__name__}")
        status = response.status
        fields = "".join([f"{name}: {value}\r\n" for name, value in response.headers.items()])
        if status >= 200 and status not in (204, 304):  # RFC 9110 §8.6: none on those
            fields += f"Content-Length: {len(body)}\r\n"
        ending = _CLOSE if close else "\r\n"
        head = f"HTTP/1.1 {status} {response.reason}\r\n{fields}{date_and_server()}{ending}"
        return head.encode() + body


_CLOSE = "Connection: close\r\n\r\n"


# Headers whose presence hands the connection to aiohttp for good: framing or protocol
# changes the lane does not take on (aiohttp answers Expect: 100-continue, decodes chunked
# bodies, switches protocols).
_STICKY_HEADERS = frozenset({"transfer-encoding", "expect", "upgrade", "te", "trailer"})
# Headers whose presence sends one request to aiohttp: meanings the lane does not handle
# (decoding a compressed body). So does a `Connection` header other than `keep-alive`, which
# HTTP/1.1 clients (httpx, requests, fetch) send on every request and which changes nothing.
_ELSEWHERE_HEADERS = frozenset({"content-encoding"})


_date_second = -1
_date_fields = ""


def date_and_server() -> str:
    """The Date (RFC 9110 IMF-fixdate) and Server fields of an answer, made once a second."""
    global _date_second, _date_fields
    now = int(time.time())
    if now != _date_second:
        date = formatdate(now, usegmt=True)
        _date_second, _date_fields = now, f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n"
    return _date_fields


__all__ = [
    "BODY_GRACE",
    "ELSEWHERE",
    "MAX_BUFFERED",
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MAX_REQUEST_LINE",
    "NEED_MORE",
    "SERVE",
    "STICKY",
    "Lane",
]
