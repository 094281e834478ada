"""Translating HTTP requests to operation inputs and errors to HTTP responses.

The error table lives here once: a ResonateError's code decides the status and body
(http-api.md §1.6, §1.7).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from resonate.core.clock import INT64_MAX, INT64_MIN
from resonate.core.errors import Code, ResonateError, bad_request, invalid
from resonate.core.schema import MAX_ID_BYTES
from resonate.server.promises import Fence

DOCS_URL = "https://github.com/resonate/resonate/blob/main/docs/api-errors.md"
JSON_CONTENT_TYPE = "application/json"


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, no HTML escaping (§1.3)."""
    return orjson.dumps(payload)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=dumps(payload), content_type=JSON_CONTENT_TYPE, headers=headers
    )


def error_body(error: ResonateError) -> dict[str, Any]:
    code = error.code
    if error.fields:
        details = [
            {
                "@type": "FieldValidationError",
                "message": problem.message,
                "domain": "request",
                "metadata": {"field": problem.field, "url": DOCS_URL},
            }
            for problem in error.fields
        ]
    elif code.http_status >= 500:
        details = [{"@type": "ServerError", "message": str(error), "domain": "server"}]
    else:
        details = [
            {
                "@type": "RequestError",
                "message": str(error),
                "domain": "request",
                "metadata": {"url": DOCS_URL},
            }
        ]
    return {"error": {"code": int(code), "message": code.message, "details": details}}


def error_response(error: ResonateError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.code.http_status, error_body(error), headers)


def route_not_found() -> ResonateError:
    return ResonateError(Code.ROUTE_NOT_FOUND, "no route matches this path")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (§1.3); 413 past the size limit."""
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    if not raw:
        raise invalid("body", "The request body is required.")
    data = raw.removeprefix(b"\xef\xbb\xbf")  # RFC 8259 lets parsers ignore a UTF-8 BOM
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


_TRUE = {"true", "t", "1"}
_FALSE = {"false", "f", "0", ""}


def strict_header(request: web.Request) -> bool:
    raw = request.headers.get("strict", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise invalid("strict", "The header strict must be a boolean (true, false, 1, 0, t, f).")


def idempotency_key(request: web.Request) -> str | None:
    return request.headers.get("idempotency-key") or None


def fence(request: web.Request) -> Fence | None:
    task_id = request.headers.get("task-id")
    raw_counter = request.headers.get("task-counter")
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
