"""The connections of every listener: how long a client may take to send a request, how long
an idle connection stays open, how many connections a listener holds, and JSON answers for
requests the HTTP parser refuses.

aiohttp's ``RequestHandler`` is the asyncio protocol of one connection; ``ConnectionHandler``
extends it, and ``LimitedAppRunner`` makes the listener use it. The rules (docs/server.md,
"Limits"):

- **Header timeout** (``api.http.headerTimeout``): a connection must deliver a complete request
  line and headers within this time of opening, or of the first byte of a request that follows
  an idle period; otherwise it is closed. Slow or half-open clients cannot pile up.
- **Idle timeout** (``api.http.idleTimeout``): a keep-alive connection waiting for its next
  request is closed after this long (aiohttp's keep-alive timer). Streams are never idle: a
  poll stream is a request in progress.
- **Connection cap** (``api.http.maxConnections``, per listener): at the cap a new connection
  closes the oldest connection that is not serving a request (one waiting for headers or idle
  between requests); when every connection is serving one, the new connection is refused: 503
  with the JSON error body on the API listener, a plain close on the poll listener (an SDK
  poller stops for good on a non-2xx answer, but reconnects after a refused connection).
- **Parser refusals** (a NUL in a header, a header over 8190 bytes, a bad method, a raw space
  in the path, no ``Host`` in HTTP/1.1…) get the JSON error body, 400 or 431, and one log line
  at INFO without a traceback: a client's mistake is not the server's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_urldispatcher import AbstractRoute

from resonate.core.errors import Code, ResonateError, code_for_status
from resonate.server.http.lane import (
    BODY_GRACE,
    ELSEWHERE,
    MAX_BUFFERED,
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    NEED_MORE,
    SERVE,
    Lane,
)
from resonate.server.http.protocol import (
    LaneRequest,
    ServerClosing,
    dumps,
    error_body,
    error_response,
    request_id,
)

try:
    import resource
except ImportError:  # not on Windows: no limit to raise there
    resource = None  # type: ignore[assignment]

log = logging.getLogger("resonate.http")

# Pending connections the kernel queues for the listener while the server is busy.
LISTEN_BACKLOG = 1024
# Descriptors kept free for everything that is not a client connection (store, log files…).
RESERVED_DESCRIPTORS = 256


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # seconds, api.http.headerTimeout
    idle_timeout: float = 75.0  # seconds, api.http.idleTimeout
    max_connections: int = 4096  # api.http.maxConnections, per listener
    answer_when_full: bool = True  # 503 at the cap (API); False: just close (poll)
    extra_headers: Mapping[str, str] = field(default_factory=dict)  # on our own answers
    error_docs_url: str = ""  # api.errorDocsUrl: the base of the error bodies' links


class LimitedServer(web.Server):
    """aiohttp's low-level server, making ``ConnectionHandler`` protocols and keeping the
    books the cap needs: how many connections are open, which are idle (oldest first)."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        lane: Lane | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, loop=loop, **kwargs)
        self.limits = limits
        self.lane = lane  # None: every request goes through aiohttp (the poll listener)
        self.lane_tasks: set[asyncio.Task[None]] = set()  # requests the lane is serving
        self.open_connections = 0  # accepted and not yet closed by anyone
        self.idle: dict[ConnectionHandler, None] = {}  # not serving a request, oldest first
        self._event_loop = loop or asyncio.get_running_loop()
        self._handler_options = kwargs
        self._make_base_request = self.request_factory
        self.request_factory = self._make_request_and_count

    def __call__(self) -> RequestHandler:
        options = {
            key: value
            for key, value in self._handler_options.items()
            if key not in ("request_factory", "handler_cancellation")
        }
        return ConnectionHandler(
            self, loop=self._event_loop, limits=self.limits, lane=self.lane, **options
        )

    def _make_request_and_count(
        self,
        message: Any,
        payload: Any,
        protocol: RequestHandler,
        writer: Any,
        task: asyncio.Task[None],
    ) -> BaseRequest:
        # Called once per request the connection starts to serve, parse errors included.
        request = self._make_base_request(message, payload, protocol, writer, task)
        if isinstance(protocol, ConnectionHandler):
            protocol.request_started(request)
        return request

    async def shutdown(self, timeout: float | None = None) -> None:
        await super().shutdown(timeout)
        # Past the drain limit, what the lane still serves is cancelled, as aiohttp's are.
        for task in list(self.lane_tasks):
            task.cancel()

    def make_room(self) -> bool:
        """At the cap: close the oldest connection that serves no request. False if none."""
        for victim in self.idle:
            victim.close_now("evicted at the connection limit")
            return True
        return False


class ConnectionHandler(RequestHandler):
    """One connection: aiohttp's protocol plus the header timeout, the idle bookkeeping of
    the connection cap, and JSON error answers."""

    def __init__(
        self,
        manager: LimitedServer,
        *,
        loop: asyncio.AbstractEventLoop,
        limits: ConnectionLimits,
        lane: Lane | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            manager,
            loop=loop,
            keepalive_timeout=limits.idle_timeout,
            max_line_size=MAX_REQUEST_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
            **kwargs,
        )
        self._server = manager  # aiohttp forgets its manager when the connection is lost
        self._limits = limits
        self._event_loop = loop
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_timer_at = 0.0  # the loop time the pending timer was scheduled for
        self._header_deadline: float | None = None  # headers due by then; None: not waiting
        self._serving = 0  # requests started and not finished
        self._request: BaseRequest | None = None  # the one being served
        self._open = False  # counted in the server's open connections
        # The lane (lane.py): None once the connection is aiohttp's for good.
        self._lane = lane
        self._lane_buffer = bytearray()  # bytes not yet framed, or waiting their turn
        self._lane_busy = False  # the lane is serving a request of this connection
        self._body_timer: asyncio.TimerHandle | None = None  # a body the lane waits for

    # -- lifecycle ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self._server
        server.open_connections += 1
        self._open = True
        if server.open_connections > self._limits.max_connections and not server.make_room():
            self._refuse(transport)
            return
        server.idle[self] = None
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._release()
        super().connection_lost(exc)

    def _release(self) -> None:
        """Leave the books of the cap: at once when we close, else when the peer does."""
        self._cancel_header_timer()
        self._cancel_body_timer()
        self._server.idle.pop(self, None)
        if self._open:
            self._open = False
            self._server.open_connections -= 1

    def close(self) -> None:
        """Graceful close (shutdown): aiohttp reads nothing more from this connection, so a
        body still arriving never will; its reader is told at once instead of timing out."""
        super().close()
        request = self._request
        if self._serving and request is not None and not request.content.is_eof():
            request.content.set_exception(ServerClosing("the server is shutting down"))

    def close_now(self, reason: str) -> None:
        log.debug("closing a connection: %s", reason)
        self._release()
        self.force_close()

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports do not derive from asyncio's transport classes.
        write = getattr(transport, "write", None)
        if self._limits.answer_when_full and write is not None:
            error = ResonateError(
                Code.TOO_MANY_CONNECTIONS, "the listener is at its connection limit; retry later"
            )
            body = dumps(error_body(error, docs_url=self._limits.error_docs_url))
            head = [
                "HTTP/1.1 503 Service Unavailable",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                "Retry-After: 1",
                "Connection: close",
                *(f"{name}: {value}" for name, value in self._limits.extra_headers.items()),
            ]
            write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.close_now("refused at the connection limit")

    # -- the header timeout ------------------------------------------------------------------

    # The timer is lazy: a request's headers arriving only clear the deadline, and the next
    # request's first bytes set a new one; the pending timer, when it fires, moves itself to
    # that deadline instead. A keep-alive connection thus schedules about one timer per header
    # timeout rather than one per request (each of which cost a timer handle and its cancel).

    def _arm_header_timer(self) -> None:
        if self._header_deadline is not None:
            return  # the clock runs from the first bytes: more bytes do not extend it
        loop = self._event_loop
        self._header_deadline = deadline = loop.time() + self._limits.header_timeout
        if self._header_timer is None:
            self._header_timer_at = deadline
            self._header_timer = loop.call_at(deadline, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        self._header_deadline = None

    def _cancel_header_timer(self) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None or self._serving:
            return
        if deadline != self._header_timer_at:  # re-armed after this timer was scheduled
            self._header_timer_at = deadline
            self._header_timer = self._event_loop.call_at(deadline, self._header_timeout)
            return
        self.close_now("no complete request line and headers within the header timeout")

    def data_received(self, data: bytes) -> None:
        if self._lane is not None:
            if self._force_close or self._close:
                return
            self._lane_buffer += data
            if not self._serving and not self._messages:
                self._pump_lane()
            elif len(self._lane_buffer) > MAX_BUFFERED:
                self._pause_reading_for_buffer()  # pipelined faster than answered
            return
        if data and self._open and not self._serving:
            # The first bytes of a request after an idle period start its header clock.
            self._arm_header_timer()
        super().data_received(data)

    # -- the lane ----------------------------------------------------------------------------

    def _pump_lane(self) -> None:
        """Frame the buffered bytes while nobody serves a request of this connection: serve
        the next request, hand it to aiohttp, or wait for more bytes."""
        lane = self._lane
        buffer = self._lane_buffer
        while lane is not None and buffer and not (self._serving or self._messages):
            if self._force_close or self._close:
                return
            verdict, size, request, route = lane.parse(buffer)
            if verdict == NEED_MORE:
                if not size:
                    if self._open:
                        self._arm_header_timer()  # from the first bytes of the request
                elif self._body_timer is None:
                    # The head is here, the body is not complete: it has BODY_GRACE to come,
                    # then aiohttp takes the connection over with its own body timeout.
                    self._disarm_header_timer()
                    self._body_timer = self._event_loop.call_later(BODY_GRACE, self._body_late)
                return
            self._cancel_body_timer()
            if verdict == SERVE:
                del buffer[:size]
                assert request is not None and route is not None
                self._serve_in_lane(lane, request, route)
            elif verdict == ELSEWHERE:
                # One request for aiohttp, exactly its bytes; the lane waits until it is done.
                chunk = bytes(buffer[:size])
                del buffer[:size]
                if self._open:
                    self._arm_header_timer()
                RequestHandler.data_received(self, chunk)
                if not (self._messages or self._serving):
                    # aiohttp framed it otherwise (it wants more bytes): the rest of the
                    # connection is its, so that the two parsers never disagree on a boundary.
                    self._leave_lane()
                    return
            else:
                self._leave_lane()
                return
        if self._buffer_paused and len(buffer) <= MAX_BUFFERED:
            self._resume_reading_for_buffer()

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        if self._lane is not None and not (self._serving or self._messages):
            self._leave_lane()

    def _leave_lane(self) -> None:
        """The connection is aiohttp's from now on, starting with the bytes not yet framed."""
        self._cancel_body_timer()
        data = bytes(self._lane_buffer)
        self._lane = None
        self._lane_buffer = bytearray()
        if self._buffer_paused:
            self._resume_reading_for_buffer()
        if data:
            if self._open and not self._serving:
                self._arm_header_timer()
            RequestHandler.data_received(self, data)

    def _serve_in_lane(self, lane: Lane, request: LaneRequest, route: AbstractRoute) -> None:
        self._serving += 1
        self._lane_busy = True
        self._disarm_header_timer()
        self._server.idle.pop(self, None)
        task = self._event_loop.create_task(self._answer_in_lane(lane, request, route))
        tasks = self._server.lane_tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _answer_in_lane(self, lane: Lane, request: LaneRequest, route: AbstractRoute) -> None:
        try:
            response = await lane.serve(request, route)
            close = response.keep_alive is False or self._close  # draining, or closed
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(lane.render(response, close))
                if close:
                    self.close_now("the answer closes the connection")
                elif self._paused:
                    await self._drain_helper()  # the client reads slower than it asks
        except ConnectionError:
            pass  # the client went away: nobody reads an answer
        except Exception:
            # serve() answers every error itself; this is a fault of the lane's own (an answer
            # it cannot write): the client gets a closed connection, the log the cause.
            log.exception("the lane could not answer %s %s", request.method, request.path)
            self.close_now("the lane could not answer")
        finally:
            self._serving = max(self._serving - 1, 0)
            self._lane_busy = False
            if self._open and not self._force_close:
                self._next_keepalive_close_time = (
                    self._event_loop.time() + self._limits.idle_timeout
                )
                if not self._serving:
                    self._server.idle[self] = None  # now the most recently idle
                self._pump_lane()

    def _process_keepalive(self) -> None:
        if self._lane_busy or self._body_timer is not None:
            # aiohttp sees no request: the lane is serving one, or has its head
            self._keepalive_handle = self._event_loop.call_at(
                self._event_loop.time() + self._limits.idle_timeout, self._process_keepalive
            )
            return
        super()._process_keepalive()

    def request_started(self, request: BaseRequest) -> None:
        """A request line and headers arrived (or a parse error): the connection serves."""
        self._serving += 1
        self._request = request
        self._disarm_header_timer()
        self._server.idle.pop(self, None)

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            # aiohttp's own plain-text refusals that no middleware saw (e.g. 417 for an
            # unknown Expect): the JSON error body instead (§1.6).
            resp = self._json_error(request, resp)
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._serving = max(self._serving - 1, 0)
            self._request = None
            if request.content.exception() is not None:
                # The body stream broke (undecodable, stalled): nothing more can be read from
                # this connection, so close it rather than linger reading what follows.
                self.close_now("the request body could not be read")
            elif not self._serving and self._open:
                self._server.idle[self] = None  # now the most recently idle
                if self._lane is not None and self._lane_buffer:
                    # The lane goes on with what arrived meanwhile, once aiohttp is done.
                    self._event_loop.call_soon(self._pump_lane)

    def _json_error(self, request: BaseRequest, exc: web.HTTPException) -> web.Response:
        code = code_for_status(exc.status)
        headers = {**self._limits.extra_headers}
        if "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
        error = ResonateError(code, exc.text or exc.reason)
        rid = request_id(request)
        headers["Request-Id"] = rid  # every answer after the parser read the request echoes it
        body_rid = rid if code.http_status >= 500 else None
        return error_response(error, headers, body_rid, self._limits.error_docs_url)

    # -- requests the parser refused ---------------------------------------------------------

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (status 400) or whose handler
        raised past every middleware (500): the JSON error body. A refusal is logged on one
        line at INFO (DEBUG for a bad method: TLS or other protocols on an HTTP port); only a
        5xx is an ERROR with its traceback."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response had started; no error answer can follow it")
        rid: str | None = None
        if status >= 500:
            rid = request_id(request)
            log.error("unhandled error (request id %s)", rid, exc_info=exc)
            error = ResonateError(code_for_status(status), "internal error")
        else:
            reason = _refusal_reason(exc, message)
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
            log.log(
                level,
                "refused a request from %s that could not be parsed: %s",
                request.remote,
                reason,
            )
            code = Code.HEADERS_TOO_LARGE if _headers_too_large(exc) else code_for_status(status)
            error = ResonateError(code, f"The request could not be parsed: {reason}")
        headers = dict(self._limits.extra_headers)
        if rid is not None:  # a refusal by the parser has no request id to echo, a 500 has
            headers["Request-Id"] = rid
        response = error_response(error, headers, rid, self._limits.error_docs_url)
        response.force_close()
        return response


def _refusal_reason(exc: BaseException | None, message: str | None) -> str:
    """The parser's reason on one line, short and ASCII: it may quote the client's bytes."""
    if isinstance(exc, ContentEncodingError):  # aiohttp's text tells the operator what to install
        return "the request's Content-Encoding is not supported"
    # aiohttp's parse errors carry their reason in .message (str() prefixes the status).
    text = message or str(getattr(exc, "message", "") or "") or str(exc or "")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "bad request")
    first = first.rstrip(":").encode("ascii", "backslashreplace").decode("ascii")
    return first if len(first) <= 160 else first[:157] + "..."


def _headers_too_large(exc: BaseException | None) -> bool:
    if isinstance(exc, LineTooLong):
        return len(exc.args) > 1 and exc.args[1] == MAX_HEADER_LINE
    return exc is not None and "too many headers" in str(exc).lower()


class LimitedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server makes ``ConnectionHandler`` protocols."""

    def __init__(
        self,
        app: web.Application,
        *,
        limits: ConnectionLimits,
        lane: Lane | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits
        self.lane = lane
        self.limited_server: LimitedServer | None = None

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # runs the app's startup and freezes it
        self.limited_server = LimitedServer(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            limits=self.limits,
            lane=self.lane,
            **self._kwargs,
        )
        return self.limited_server


# -- file descriptors ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenFilesLimit:
    before: int
    now: int


def raise_open_files_limit() -> OpenFilesLimit | None:
    """Raise the soft limit on open files to the hard limit (every connection is one); None
    where the platform has no such limit."""
    if resource is None:
        return None
    unlimited = resource.RLIM_INFINITY
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    if soft == unlimited or (hard != unlimited and soft >= hard):
        return OpenFilesLimit(soft, soft)
    # An unlimited hard limit (macOS) still refuses an unlimited soft one: try finite sizes.
    for target in [hard] if hard != unlimited else [1_048_576, 65_536, 10_240]:
        if target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            continue
        return OpenFilesLimit(soft, target)
    return OpenFilesLimit(soft, soft)


def connections_per_listener(configured: int, listeners: int, open_files: int | None) -> int:
    """``configured``, lowered when the listeners together could exhaust ``open_files``."""
    if open_files is None or open_files < 0 or listeners < 1:  # RLIM_INFINITY is -1
        return configured
    budget = max((open_files - RESERVED_DESCRIPTORS) // listeners, 1)
    return min(configured, budget)


__all__ = [
    "ConnectionLimits",
    "LimitedAppRunner",
    "LimitedServer",
    "OpenFilesLimit",
    "connections_per_listener",
    "raise_open_files_limit",
]
