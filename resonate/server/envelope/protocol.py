"""The envelope of the 2026-04-01 protocol (protocol-2026.md §2): parsing a request and
writing a reply.

A request is ``{kind, head: {corrId, version, …}, data}``; every reply is ``{kind, head:
{corrId, status, version}, data}`` with the HTTP status equal to ``head.status``. Success data
is an object, error data a bare string. Errors are values: an ``EnvelopeError`` carries its
status, and the REST-era ``ResonateError`` codes the shared operations raise are mapped to a
status in one table here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from resonate.core.errors import Code, ResonateError
from resonate.core.json_depth import MAX_JSON_DEPTH, fits_nesting_limit

VERSION = "2026-04-01"
JSON_CONTENT_TYPE = "application/json"
UNKNOWN_KIND = "unknown"  # the echo of a request whose kind cannot be read (§2)
UNKNOWN_CORR_ID = "0"
NOT_AN_OBJECT = "Invalid 'data' field — must be an object"


class EnvelopeError(ResonateError):
    """A failure answered as an envelope: ``status`` in the head, ``message`` as ``data``.

    It is a ResonateError so that an operation raising it inside a store transaction is an
    answer, not a failure: the writes made before it (a lazy timeout) are kept."""

    status: int
    message: str

    def __init__(self, status: int, message: str) -> None:
        super().__init__(Code.INTERNAL_ERROR if status >= 500 else Code.INVALID_REQUEST, message)
        self.status = status
        self.message = message


def bad_request(message: str) -> EnvelopeError:
    return EnvelopeError(400, message)


def not_implemented(what: str) -> EnvelopeError:
    return EnvelopeError(501, f"Not implemented: {what}")


# The shared operations raise REST-era codes; the 2026 protocol names fewer statuses (§2).
# A code not listed keeps its REST status (e.g. 413, 503 while draining).
_STATUS_OF_CODE: dict[Code, int] = {
    Code.INVALID_REQUEST: 400,
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN: 403,
    Code.PROMISE_NOT_FOUND: 404,
    Code.INTERNAL_ERROR: 500,
    Code.STORE_ERROR: 500,
}


def from_resonate_error(error: ResonateError) -> EnvelopeError:
    status = _STATUS_OF_CODE.get(error.code, error.code.http_status)
    if status == 401:
        return EnvelopeError(401, "Unauthorized")
    if status == 404 and error.code is Code.PROMISE_NOT_FOUND:
        return EnvelopeError(404, "Promise not found")
    if status == 500:
        return EnvelopeError(500, f"Internal error: {error}")
    return EnvelopeError(status, str(error))


@dataclass(frozen=True, slots=True)
class Request:
    kind: str
    corr_id: str
    version: Any  # checked after authentication, so that an echo is always possible
    data: Any
    debug_time: Any = None  # head["resonate:debug_time"]: "now" in debug mode, else ignored
    auth: Any = None  # head["auth"]: the bearer token (protocol-2026.md §9), never logged

    def __repr__(self) -> str:  # never the token
        return f"Request(kind={self.kind!r}, corr_id={self.corr_id!r})"


@dataclass(frozen=True, slots=True)
class Echo:
    """What a reply echoes: the request's kind and corrId, or their best-effort stand-ins."""

    kind: str = UNKNOWN_KIND
    corr_id: str = UNKNOWN_CORR_ID


class Unparsable(EnvelopeError):
    """A request that does not parse as an envelope, with the best echo it allows."""

    def __init__(self, message: str, echo: Echo) -> None:
        super().__init__(400, message)
        self.echo = echo


def _load(raw: bytes) -> Any:
    data = raw.removeprefix(b"\xef\xbb\xbf")
    if not fits_nesting_limit(data):
        raise Unparsable(
            f"Invalid request: JSON nested more than {MAX_JSON_DEPTH} levels deep", Echo()
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:  # orjson refuses lone surrogate escapes; the standard parser reads them
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise Unparsable("Invalid request: the body is not JSON", Echo()) from None


def _text(value: Any) -> str | None:
    """A string the reply can echo: valid Unicode (no lone surrogates)."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def parse(raw: bytes) -> Request:
    """The request envelope; ``Unparsable`` (400) when the body is not one.

    ``kind`` must be a non-empty string and ``head.corrId`` a string; ``version`` and ``data``
    are checked by ``check_version`` and ``check_data`` once the caller knows the kind.
    """
    body = _load(raw)
    if not isinstance(body, dict):
        raise Unparsable("Invalid request: the body must be a JSON object", Echo())
    kind = _text(body.get("kind"))
    head = body.get("head")
    corr_id = _text(head.get("corrId")) if isinstance(head, dict) else None
    echo = Echo(kind or UNKNOWN_KIND, corr_id if corr_id is not None else UNKNOWN_CORR_ID)
    if not kind:
        raise Unparsable("Invalid request: 'kind' must be a non-empty string", echo)
    if not isinstance(head, dict):
        raise Unparsable("Invalid request: 'head' must be an object", echo)
    if corr_id is None:
        raise Unparsable("Invalid request: 'head.corrId' must be a string", echo)
    return Request(
        kind,
        corr_id,
        head.get("version"),
        body.get("data"),
        head.get("resonate:debug_time"),
        head.get("auth"),
    )


def check_version(version: Any) -> None:
    if version != VERSION:
        shown = json.dumps(version, ensure_ascii=False) if version is not None else "none"
        raise bad_request(f"Unsupported protocol version {shown}: this server speaks {VERSION}")


def check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad_request(NOT_AN_OBJECT)
    return data


def reply(kind: str, corr_id: str, status: int, data: dict[str, Any] | str) -> web.Response:
    """The reply envelope; its HTTP status is ``head.status`` (§2)."""
    body = {
        "kind": kind,
        "head": {"corrId": corr_id, "status": status, "version": VERSION},
        "data": data,
    }
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON_CONTENT_TYPE)
