"""Translating HTTP requests to operation inputs and errors to HTTP responses.

The error table lives here once: a ResonateError's code decides the status and body
(http-api.md §1.6, §1.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

from resonate.core.callback import trace_head
from resonate.core.clock import INT64_MAX, INT64_MIN
from resonate.core.errors import Code, ResonateError, bad_request, invalid
from resonate.core.json_depth import MAX_JSON_DEPTH, fits_nesting_limit
from resonate.core.schema import MAX_ID_BYTES
from resonate.server.promises import Fence

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How much of a request body the server reads, and how long it waits for each part."""

    max_size: int = 10 * 1024 * 1024  # api.http.maxBodySize
    stall_seconds: float = 10.0  # api.http.headerTimeout: longest pause inside a body


BODY_LIMITS = web.AppKey("body_limits", BodyLimits)


class ServerClosing(Exception):
    """Set on a request's body stream when the server shuts down before the body arrived:
    aiohttp reads nothing more from a closing connection, so it never will (§12: 503)."""


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, no HTML escaping (§1.3)."""
    return orjson.dumps(payload)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=dumps(payload), content_type=JSON_CONTENT_TYPE, headers=headers
    )


def error_docs_link(docs_url: str, code: Code) -> dict[str, str]:
    """The ``url`` metadata of a 4xx detail: the code's entry in the error documentation
    (``api.errorDocsUrl``, a hosted copy of docs/errors.md, whose headings are the codes).
    Without a configured base there is no link: better none than one to a page that is not
    there."""
    return {"url": f"{docs_url}#{int(code)}"} if docs_url else {}


def error_body(
    error: ResonateError, request_id: str | None = None, docs_url: str = ""
) -> dict[str, Any]:
    """The JSON error body (§1.6). A 5xx names the request id, under which the server logged
    the cause; its message is the error's ``detail``, never internal exception text. A 4xx
    detail links the code's entry under ``docs_url`` when one is configured."""
    code = error.code
    link = error_docs_link(docs_url, code)
    if error.fields:
        details = [
            {
                "@type": "FieldValidationError",
                "message": problem.message,
                "domain": "request",
                "metadata": {"field": problem.field, **link},
            }
            for problem in error.fields
        ]
    elif code.http_status >= 500:
        if request_id is None:
            details = [{"@type": "ServerError", "message": str(error), "domain": "server"}]
        else:
            details = [
                {
                    "@type": "ServerError",
                    "message": f"{error} (request id {request_id})",
                    "domain": "server",
                    "metadata": {"requestId": request_id},
                }
            ]
    else:
        request_error: dict[str, Any] = {
            "@type": "RequestError",
            "message": str(error),
            "domain": "request",
        }
        if link:
            request_error["metadata"] = link
        details = [request_error]
    return {"error": {"code": int(code), "message": code.message, "details": details}}


def error_response(
    error: ResonateError,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    docs_url: str = "",
) -> web.Response:
    return json_response(error.code.http_status, error_body(error, request_id, docs_url), headers)


def route_not_found() -> ResonateError:
    return ResonateError(Code.ROUTE_NOT_FOUND, "no route matches this path")


_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class LaneRequest(dict[Any, Any]):
    """A request the lane (lane.py) read whole: what handlers and ``serve`` use of aiohttp's
    ``web.Request`` (method, path, headers, path parameters, the body, request keys), nothing
    more. The lane gives it only plain paths: no query string, no escapes to decode."""

    __slots__ = ("body", "headers", "match_info", "method", "path")
    query = _NO_QUERY

    def __init__(
        self,
        method: str,
        path: str,
        headers: CIMultiDictProxy[str],
        match_info: dict[str, str],
        body: bytes,
    ) -> None:
        super().__init__()
        self.method = method
        self.path = path
        self.headers = headers
        self.match_info = match_info
        self.body = body

    @property
    def content_length(self) -> int:
        return len(self.body)


async def read_body(request: web.Request) -> bytes:
    """The whole body: 413 past ``api.http.maxBodySize``; 400 for a body that cannot be decoded
    (e.g. ``Content-Encoding: gzip`` on bytes that are not gzip); 408 when the client pauses
    longer than ``api.http.headerTimeout`` while sending it (a half-open connection must not
    hold its handler forever). After a 400 or a 408 the connection is closed."""
    if isinstance(request, LaneRequest):
        return request.body  # framed whole by the lane, within its limit (lane.MAX_BODY)
    limits = request.config_dict.get(BODY_LIMITS) or BodyLimits()
    content = request.content
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            # What has arrived already is taken without a timer: a small body usually comes
            # with its headers, and a timer per request is a measurable share of its CPU.
            chunk = content.read_nowait()
            if not chunk and not content.is_eof():
                async with asyncio.timeout(limits.stall_seconds):
                    chunk = await content.readany()
        except ServerClosing:
            raise ResonateError(Code.SHUTTING_DOWN, "the server is shutting down") from None
        except TimeoutError:
            detail = f"no part of the request body arrived for {limits.stall_seconds:g} s"
            # The connection closes after the answer: an error on its body stream says so.
            content.set_exception(ConnectionAbortedError(detail))
            raise ResonateError(Code.REQUEST_TIMEOUT, detail) from None
        except (ConnectionError, RuntimeError) as error:
            # The client went away (aiohttp raises RuntimeError when the connection closed
            # while the handler waited): nobody will read an answer, and nothing to log.
            transport = request.transport
            if isinstance(error, RuntimeError) and transport and not transport.is_closing():
                raise
            raise bad_request("The connection closed before the whole body arrived.") from None
        except web.RequestPayloadError:  # the parser already broke the stream: it closes
            encoding = request.headers.get("Content-Encoding")
            how = f" as Content-Encoding {encoding}" if encoding else ""
            raise invalid("body", f"The request body could not be decoded{how}.") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limits.max_size:
            raise ResonateError(Code.PAYLOAD_TOO_LARGE, "the request body is too large")
        chunks.append(chunk)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (§1.3); 413 past the size limit; 400
    past ``MAX_JSON_DEPTH`` levels of nesting, checked before any parser recurses."""
    raw = await read_body(request)
    if not raw:
        raise invalid("body", "The request body is required.")
    data = raw.removeprefix(b"\xef\xbb\xbf")  # RFC 8259 lets parsers ignore a UTF-8 BOM
    if not fits_nesting_limit(data):
        raise invalid(
            "body", f"The request body must be JSON nested at most {MAX_JSON_DEPTH} levels deep."
        )
    try:
        body = orjson.loads(data)  # strict RFC 8259, and fast: the hot path
    except orjson.JSONDecodeError:
        body = _parse_refused_by_orjson(data)
    if not isinstance(body, dict):
        raise invalid("body", "The request body must be a JSON object.")
    return body


def _parse_refused_by_orjson(data: bytes) -> Any:
    """Second opinion on a body orjson refused, so the error can name the field at fault.

    orjson also refuses lone surrogate escapes (``"\\ud800"``); the standard parser reads them,
    and validation then names the field (§1.3). Anything else it refuses is not JSON: strict
    UTF-8 only (no UTF-16/32 sniffing), no NaN or Infinity.
    """
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise invalid("body", "The request body is not valid JSON.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Header values the server stores, compares or logs are held to the id limit (§1.3).
MAX_HEADER_BYTES = MAX_ID_BYTES

_TRUE = {"true", "t", "1"}
_FALSE = {"false", "f", "0", ""}


def check_header(name: str, value: str, max_bytes: int = MAX_HEADER_BYTES) -> str:
    """A header value held to the rules of ids (§1.3): valid UTF-8, no U+0000, at most
    ``max_bytes`` bytes; else a 400 naming the header.

    The HTTP parser decodes header bytes that are not UTF-8 to lone surrogates
    (``surrogateescape``): those are what the encode below refuses, before any store sees them.
    """
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid(name, f"The header {name} must be valid UTF-8.") from None
    if "\x00" in value:
        raise invalid(name, f"The header {name} must not contain U+0000.")
    if size > max_bytes:
        raise invalid(name, f"The header {name} must be at most {max_bytes} bytes.")
    return value


def header(request: web.BaseRequest, name: str) -> str | None:
    """The value of header ``name``, checked by ``check_header``; None when absent."""
    value = request.headers.get(name)
    return None if value is None else check_header(name, value)


# Where request_id() keeps the id it chose, so that every later call returns the same one.
REQUEST_ID_KEY = web.RequestKey("request_id", str)


def request_id(request: web.BaseRequest) -> str:
    """The caller's ``request-id`` when it is a valid header value, else a fresh UUID: the id
    logs and 5xx bodies name the request by. (Routes that read the header refuse an invalid
    one with a 400 first; this is for answers given before or without a route.)"""
    rid: str | None = request.get(REQUEST_ID_KEY)
    return rid if rid is not None else assign_request_id(request)


def assign_request_id(request: web.BaseRequest) -> str:
    """``request_id`` for a request that has none yet (the API middleware, which sees every
    request first): chosen and remembered without looking for one first."""
    rid: str | None = None
    value = request.headers.get("request-id")
    if value:
        with contextlib.suppress(ResonateError):
            rid = check_header("request-id", value)
    rid = rid or random_uuid()
    # One id per request: the access line, the 5xx body and the echoed header agree.
    request[REQUEST_ID_KEY] = rid
    return rid


# The bits uuid.UUID(version=4) clears and sets: the version (4) and the RFC 4122 variant.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
# os.urandom 4 KiB at a time, 16 bytes per id: one system call per 256 ids. A C iterator, so
# that next() is atomic under the GIL (threads never share a block).
_RANDOM_BLOCKS: Iterator[tuple[bytes]] = iter(())


def random_uuid() -> str:
    """``str(uuid.uuid4())``: 122 random bits from ``os.urandom``, version 4, RFC 4122 variant,
    at about half the cost (no UUID object, one system call per 256 ids)."""
    global _RANDOM_BLOCKS
    block = next(_RANDOM_BLOCKS, None)
    if block is None:
        _RANDOM_BLOCKS = blocks = struct.iter_unpack("16s", os.urandom(4096))
        block = next(blocks)
    h = "%032x" % (int.from_bytes(block[0], "big") & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _forget_random_blocks() -> None:
    """A forked child must not hand out the ids its parent has yet to."""
    global _RANDOM_BLOCKS
    _RANDOM_BLOCKS = iter(())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_random_blocks)


def strict_header(request: web.Request) -> bool:
    raw = (header(request, "strict") or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise invalid("strict", "The header strict must be a boolean (true, false, 1, 0, t, f).")


def idempotency_key(request: web.Request) -> str | None:
    return header(request, "idempotency-key") or None


def trace_headers(request: web.Request) -> dict[str, str] | None:
    """The trace context to carry to workers (§1.4): `traceparent`, and `tracestate` with it."""
    return trace_head(header(request, "traceparent"), header(request, "tracestate"))


def fence(request: web.Request) -> Fence | None:
    task_id = header(request, "task-id")
    raw_counter = header(request, "task-counter")
    counter = 0
    if raw_counter is not None:
        counter = parse_int64("task-counter", raw_counter)
    if not task_id:
        return None
    return Fence(task_id, counter)


def parse_int64(name: str, raw: str) -> int:
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise invalid(name, f"The header {name} must be a decimal integer.")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise invalid(name, f"The header {name} must be a 64-bit integer.")
    return value


def path_id(request: web.Request, name: str = "id", *, max_bytes: int | None = MAX_ID_BYTES) -> str:
    """A catch-all id from the path (§1.3: no U+0000, at most 1024 UTF-8 bytes). Task ids
    are not subject to the length limit: pass ``max_bytes=None`` for them."""
    value = request.match_info.get(name, "")
    if "\x00" in value:
        raise bad_request(f"The {name} must not contain U+0000.")
    if max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise bad_request(f"The {name} must be at most {max_bytes} bytes.")
    return value


# The API and poll listeners' request lines (the logger of the API listener's middleware).
access_log = logging.getLogger("resonate.http")


def log_access(
    request: web.BaseRequest,
    rid: str,
    status: int,
    seconds: float,
    *,
    level: int = logging.DEBUG,
    detail: str | None = None,
    exc_info: Any = None,
) -> None:
    """The one line of a request: at DEBUG, except a 5xx, which is always logged (WARNING or
    ERROR, INFO for a drain's 503) with the cause the client was not told (and, for an ERROR,
    its traceback).
    The query string is left out: only the path, which names ids, never credentials."""
    if not access_log.isEnabledFor(level):
        return
    duration_ms = round(seconds * 1000, 3)
    message = f"{request.method} {request.path} {status} {duration_ms:.1f}ms (request id {rid})"
    if detail:
        message += f": {detail}"
    access_log.log(
        level,
        "%s",
        message,
        exc_info=exc_info,
        extra={
            "request_id": rid,
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": duration_ms,
        },
    )


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer of the API and poll listeners names its request id (streams too: this
    runs as the headers go out)."""
    response.headers["Request-Id"] = request_id(request)
