"""The poll transport: workers hold Server-Sent-Events streams open and receive task messages
on them (http-api.md §5, sdk-compat.md §7).

A connection is keyed by (group, id). Delivering a message only places it in the chosen
connection's bounded buffer; the stream's own handler writes it out. Nothing acknowledges a
message: the worker claims the task, or the task is re-issued after ``ttc``.

Every stream ends with the terminating zero-length chunk, whatever the reason (replacement,
``disconnectAfter``, the connection limit, shutdown): some workers crash on a cut stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from resonate.core.errors import Code, ResonateError, bad_request
from resonate.server.http.auth import PRINCIPAL, Authenticator, JwtVerifier
from resonate.server.http.cors import Cors
from resonate.server.http.protocol import (
    dumps,
    echo_request_id,
    error_response,
    log_access,
    request_id,
)
from resonate.server.metrics import Metrics

log = logging.getLogger("resonate.poll")

# aiohttp (handler_cancellation off) does not cancel a stream's handler when its peer goes
# away; one sweep over all transports finds dead peers within this interval (§5.3).
SWEEP_INTERVAL_SECONDS = 0.25
# How long close() waits for handlers to write their terminating chunk before aborting.
CLOSE_GRACE_SECONDS = 5.0

STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
}
KEEP_ALIVE_EVENT = b": keep-alive\n\n"
# The last line of every stream the server ends because it shuts down (an SSE comment, which
# clients ignore), just before the terminating chunk: a worker's log can tell why it ended.
SHUTDOWN_EVENT = b": shutting down\n\n"


def parse_stream_path(path: str) -> tuple[str, str]:
    """``<group>/<id…>`` (still percent-encoded) → (group, id), both decoded (§5.1).

    The first segment is the group; everything after the first ``/`` is the id, which may
    contain ``/`` and may be empty. An encoded ``%2F`` in the group stays part of the group.
    """
    raw_group, slash, raw_id = path.partition("/")
    if not slash:
        raise bad_request("The poll path must be /<group>/<id>.")
    group = unquote(raw_group)
    if not group:
        raise bad_request("The poll group must not be empty.")
    return group, unquote(raw_id)


def stream_path(request: web.Request, prefix: str = "/") -> str:
    """The still-encoded request path after ``prefix``: what ``PollHub.handle`` expects.

    The poll listener uses prefix ``/``; the API listener's ``/poll/{path}`` route uses
    ``/poll/``. A path that does not start with the prefix gives ``""`` (a 400).
    """
    raw = request.rel_url.raw_path
    return raw[len(prefix) :] if raw.startswith(prefix) else ""


def encode_event(message: Mapping[str, Any], head: Mapping[str, str] | None) -> bytes:
    """One SSE event: ``data: `` + one-line compact JSON + blank line (§5.2)."""
    payload = {**message, "head": dict(head)} if head else message
    return b"data: " + dumps(payload) + b"\n\n"


@dataclass(eq=False, slots=True)
class _Connection:
    group: str
    id: str
    request: web.Request
    key: str = ""  # its key in the group: the id, or a unique key where ids may repeat
    buffer: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    idle: bool = False  # the handler waits with nothing to write
    ending: bool = False  # out of its group; the handler ends the stream
    peer_gone: bool = False  # the socket is dead: no terminating chunk can be written

    def push(self, event: bytes) -> None:
        self.buffer.append(event)
        self.idle = False
        self.wake.set()

    def end(self, *, peer_gone: bool = False) -> None:
        self.ending = True
        self.peer_gone = self.peer_gone or peer_gone
        self.wake.set()

    def peer_closed(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()


class PollHub:
    """The ``poll`` plugin: routes messages to open SSE streams and serves those streams."""

    name = "poll"

    def __init__(
        self,
        *,
        buffer_size: int = 100,
        max_connections: int = 1000,
        keep_alive_ms: int = 15000,
        disconnect_after_ms: int = 0,
        ttr_ms: int = 15000,
        ttc_ms: int = 60000,
        metrics: Metrics | None = None,
        name: str = "poll",
        shared_ids: bool = False,
    ) -> None:
        self.name = name  # the metrics label; the 2026 protocol's hub is "poll_2026"
        # REST: a new stream with the id of an open one replaces it (§5.3). The 2026 protocol:
        # several streams may share an id; a message for the id goes to the first one open.
        self.shared_ids = shared_ids
        self._keys = itertools.count()
        self.buffer_size = buffer_size
        self.max_connections = max_connections
        self.keep_alive_ms = keep_alive_ms
        self.disconnect_after_ms = disconnect_after_ms
        self.ttr_ms = ttr_ms
        self.ttc_ms = ttc_ms
        self.metrics = metrics
        self._groups: dict[str, dict[str, _Connection]] = {}
        self._count = 0
        self._streams: set[_Connection] = set()  # every handler still running, ending or not
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- introspection -------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    def connections(self, group: str) -> list[str]:
        """Ids of the open connections of ``group``."""
        return [connection.id for connection in self._groups.get(group, {}).values()]

    def groups(self) -> dict[str, list[str]]:
        return {group: list(members) for group, members in self._groups.items()}

    def buffered(self, group: str, connection_id: str) -> int:
        """Messages waiting in the buffer of connection (group, id); 0 when not open."""
        connection = self._by_id(self._groups.get(group, {}), connection_id)
        return len(connection.buffer) if connection is not None else 0

    def _by_id(self, members: dict[str, _Connection], wanted_id: str) -> _Connection | None:
        """The connection of that id; where ids may repeat, the first opened that has room."""
        if not self.shared_ids:
            return members.get(wanted_id)
        same = [c for c in members.values() if c.id == wanted_id]
        return next((c for c in same if self._has_room(c)), same[0] if same else None)

    # -- delivery ------------------------------------------------------------------------

    async def deliver(
        self, data: dict[str, Any], message: dict[str, Any], head: dict[str, str] | None
    ) -> bool:
        """Route per §5.4: the exact (group, id) if open, else (cast ``any``) a random member
        with room. True once the message sits in a connection's buffer."""
        if self._closed:
            return False
        members = self._groups.get(data.get("group", ""))
        if not members:
            return False
        target = self._choose(members, data.get("id"), data.get("cast", "any"))
        if target is None:
            return False
        target.push(encode_event(message, head))
        return True

    def _choose(
        self, members: dict[str, _Connection], wanted_id: str | None, cast: str
    ) -> _Connection | None:
        if wanted_id is not None:
            exact = self._by_id(members, wanted_id)
            if exact is not None and self._has_room(exact):
                return exact
        if cast == "uni":
            return None
        candidates = [member for member in members.values() if self._has_room(member)]
        return random.choice(candidates) if candidates else None

    def _has_room(self, connection: _Connection) -> bool:
        # A peer already gone but not yet swept would lose the message: skip it.
        if connection.ending or connection.peer_closed():
            return False
        # An idle handler takes a message at once, so bufferSize 0 still hands off to it.
        return len(connection.buffer) < self.buffer_size or (
            connection.idle and not connection.buffer
        )

    # -- streams -------------------------------------------------------------------------

    async def handle(
        self, request: web.Request, path: str, extra_headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        """Serve the SSE stream of ``path`` = ``<group>/<id…>``, still percent-encoded, without
        the leading ``/`` (see ``stream_path``). Raises a 400 ResonateError for a bad path.

        The headers go out before this returns, so a caller's own response headers (e.g.
        ``Resonate-Version`` on the API listener) must come in ``extra_headers``."""
        group, connection_id = parse_stream_path(path)
        response = web.StreamResponse(
            status=200, headers={**(extra_headers or {}), **STREAM_HEADERS}
        )
        if request.version >= (1, 1):
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)  # headers go out at once, before any event
        except ConnectionError:
            return response
        replacing = not self.shared_ids and connection_id in self._groups.get(group, ())
        if self._closed or (self._count >= self.max_connections and not replacing):
            # The worker reconnects after its back-off; a non-2xx would stop it for good.
            await self._finish(response, shutting_down=self._closed)
            return response
        connection = self._open(group, connection_id, request)
        try:
            await self._stream(connection, response)
        finally:
            self._detach(connection)
            self._streams.discard(connection)
            connection.finished.set()
        return response

    def _open(self, group: str, connection_id: str, request: web.Request) -> _Connection:
        key = f"{connection_id}#{next(self._keys)}" if self.shared_ids else connection_id
        connection = _Connection(group, connection_id, request, key)
        members = self._groups.setdefault(group, {})
        previous = members.get(key)
        if previous is not None:
            # Replacement (§5.3): the old stream ends cleanly, its undelivered messages move.
            connection.buffer.extend(previous.buffer)
            previous.buffer.clear()
            previous.end()
            del members[key]
            self._count -= 1
        members[key] = connection
        self._count += 1
        self._streams.add(connection)
        self._publish(group)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return connection

    def _detach(self, connection: _Connection, *, peer_gone: bool = False) -> None:
        """Take ``connection`` out of its group (no more deliveries) and tell its handler."""
        connection.end(peer_gone=peer_gone)
        members = self._groups.get(connection.group)
        if members is None or members.get(connection.key) is not connection:
            return
        del members[connection.key]
        if not members:
            del self._groups[connection.group]
        self._count -= 1
        self._publish(connection.group)

    def _publish(self, group: str) -> None:
        if self.metrics is None:
            return
        self.metrics.plugin_connections.labels(self.name).set(self._count)
        gauge = (
            self.metrics.poll_connections
            if self.name == "poll"
            else self.metrics.poll_2026_connections
        )
        gauge.labels(group).set(len(self._groups.get(group, ())))

    async def _stream(self, connection: _Connection, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        keep_alive = max(self.keep_alive_ms, 0) / 1000  # 0 = off
        end_after = self.disconnect_after_ms / 1000
        end_at = loop.time() + end_after if end_after > 0 else None
        last_write = loop.time()
        try:
            while not connection.peer_gone:
                if connection.buffer:
                    await response.write(connection.buffer.popleft())
                    last_write = loop.time()
                    continue
                if connection.ending:
                    break
                now = loop.time()
                if end_at is not None and now >= end_at:
                    self._detach(connection)  # buffered messages still go out first
                    continue
                if keep_alive and now - last_write >= keep_alive:
                    await response.write(KEEP_ALIVE_EVENT)
                    last_write = loop.time()
                    continue
                wake_at = [last_write + keep_alive] if keep_alive else []
                if end_at is not None:
                    wake_at.append(end_at)
                await self._wait(connection, min(wake_at) - now if wake_at else None)
            if not connection.peer_gone:
                await self._finish(response, shutting_down=self._closed)
        except ConnectionError as error:
            log.debug("poll stream %s/%s lost: %s", connection.group, connection.id, error)

    @staticmethod
    async def _wait(connection: _Connection, seconds: float | None) -> None:
        connection.wake.clear()
        connection.idle = True
        try:
            async with asyncio.timeout(seconds):
                await connection.wake.wait()
        except TimeoutError:
            pass
        finally:
            connection.idle = False

    @staticmethod
    async def _finish(response: web.StreamResponse, *, shutting_down: bool = False) -> None:
        """The terminating zero-length chunk, after the final ``: shutting down`` comment when
        the server shuts down; a dead peer cannot get them and is left alone."""
        with contextlib.suppress(ConnectionError):
            if shutting_down:
                await response.write(SHUTDOWN_EVENT)
            await response.write_eof()

    async def _sweep(self) -> None:
        """Find peers that closed their sockets, even on idle streams (§5.3)."""
        while self._count:
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
            for members in list(self._groups.values()):
                for connection in list(members.values()):
                    if connection.peer_closed():
                        log.debug("poll peer %s/%s gone", connection.group, connection.id)
                        self._detach(connection, peer_gone=True)

    # -- lifecycle -----------------------------------------------------------------------

    async def close(self) -> None:
        """End every stream cleanly; later deliveries fail and new streams end at once."""
        self._closed = True
        streams = list(self._streams)
        for connection in streams:
            self._detach(connection)
        waiting = [asyncio.ensure_future(connection.finished.wait()) for connection in streams]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=CLOSE_GRACE_SECONDS)
            for waiter in late:
                waiter.cancel()
            for connection in streams:
                transport = connection.request.transport
                if not connection.finished.is_set() and transport is not None:
                    transport.abort()  # a peer that stopped reading holds its handler in write
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


def create_poll_app(
    hub: PollHub,
    auth: Mapping[str, str],
    error_docs_url: str = "",
    cors_allow_origins: tuple[str, ...] = (),
    jwt: JwtVerifier | None = None,
) -> web.Application:
    """The dedicated poll listener (§1.1, §5.1): ``GET /<group>/<id…>``, JSON errors.

    Credentials: Basic users of ``aio.poll.auth`` and, when JWT bearer auth is configured, a
    valid token (authentication only: a stream names no resource a prefix could limit). With
    either configured, a connection without credentials is refused (401)."""
    cors = Cors(cors_allow_origins)
    authenticator = Authenticator(auth, jwt)

    @web.middleware
    async def middleware(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await answer(request, handler)
        # One access line per request at debug, as on the API listener (a stream's when it
        # ends).
        log_access(request, request_id(request), response.status, time.perf_counter() - started)
        return response

    async def answer(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        if cors.enabled and cors.is_preflight(request):
            return cors.preflight()  # before auth: a preflight carries no credentials
        try:
            request[PRINCIPAL] = authenticator.authenticate(request.headers.get("Authorization"))
            return await handler(request)
        except ResonateError as error:
            challenge = authenticator.challenge if error.code is Code.UNAUTHORIZED else None
            return error_response(error, challenge, docs_url=error_docs_url)
        except web.HTTPMethodNotAllowed:
            not_allowed = ResonateError(Code.METHOD_NOT_ALLOWED, "only GET opens a poll stream")
            return error_response(not_allowed, {"Allow": "GET"}, docs_url=error_docs_url)
        except web.HTTPException as exc:
            code = Code.INTERNAL_ERROR if exc.status >= 500 else Code.INVALID_REQUEST
            return error_response(ResonateError(code, exc.reason), docs_url=error_docs_url)

    async def stream(request: web.Request) -> web.StreamResponse:
        return await hub.handle(request, stream_path(request))

    app = web.Application(middlewares=[middleware])
    app.on_response_prepare.append(echo_request_id)
    cors.install(app)
    app.router.add_route("GET", "/{path:.*}", stream, name="poll")
    return app


__all__ = ["PollHub", "create_poll_app", "encode_event", "parse_stream_path", "stream_path"]
