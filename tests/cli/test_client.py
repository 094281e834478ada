"""The typed HTTP client: request building, response parsing, transport failures.

These tests use httpx's MockTransport; the CLI tests in test_promises_cli.py run the client
against a real server.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

import httpx
import pytest

from resonate.client import (
    ApiError,
    AsyncResonateClient,
    Credentials,
    ResonateClient,
    ServerUnreachable,
    UnexpectedResponse,
    complete_promise_request,
    create_promise_request,
    decode_value_data,
    decode_value_text,
    encode_value,
    parse_response,
    path_segment,
    search_promises_request,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client_with(handler: Handler, **settings: object) -> ResonateClient:
    return ResonateClient(
        "http://resonate.test", transport=httpx.MockTransport(handler), **settings
    )


@pytest.mark.parametrize(
    ("identifier", "segment"),
    [
        ("plain", "plain"),
        ("a/b", "a%2Fb"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("100%", "100%25"),
        ("ü", "%C3%BC"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a.b:c", "a.b%3Ac"),
    ],
)
def test_ids_are_one_percent_encoded_path_segment(identifier: str, segment: str) -> None:
    assert path_segment(identifier) == segment


def test_get_sends_the_encoded_id_on_the_wire() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json={"id": "a/b ?#"})

    with client_with(handler) as client:
        assert client.get_promise("a/b ?#").body == {"id": "a/b ?#"}
    assert seen == [b"/promises/a%2Fb%20%3F%23"]


def test_create_request_carries_body_and_headers() -> None:
    request = create_promise_request(
        "p", 123, param=encode_value("x"), tags={"k": "v"}, idempotency_key="key", strict=True
    )
    assert (request.method, request.path) == ("POST", "/promises")
    assert request.json == {
        "id": "p",
        "timeout": 123,
        "param": {"data": "eA=="},
        "tags": {"k": "v"},
    }
    assert request.headers == {"idempotency-key": "key", "strict": "true"}


def test_create_request_leaves_out_empty_optional_parts() -> None:
    request = create_promise_request("p", 0)
    assert request.json == {"id": "p", "timeout": 0}
    assert request.headers == {}


def test_complete_request() -> None:
    request = complete_promise_request("a/b", "REJECTED_CANCELED", encode_value("why"))
    assert (request.method, request.path) == ("PATCH", "/promises/a%2Fb")
    assert request.json == {"state": "REJECTED_CANCELED", "value": {"data": "d2h5"}}


def test_search_request_parameters() -> None:
    request = search_promises_request("orders/*", "pending", {"env": "prod"}, 10)
    assert request.params == (
        ("id", "orders/*"),
        ("state", "pending"),
        ("tags[env]", "prod"),
        ("limit", "10"),
    )


def test_search_with_a_cursor_sends_only_the_cursor() -> None:
    request = search_promises_request("x*", "resolved", {"a": "b"}, 5, cursor="abc")
    assert request.params == (("cursor", "abc"),)


def test_value_helpers_round_trip() -> None:
    assert encode_value() == {}
    assert encode_value(b"", {}) == {}
    value = encode_value("héllo", {"h": "v"})
    assert value == {"headers": {"h": "v"}, "data": base64.b64encode("héllo".encode()).decode()}
    assert decode_value_data(value) == "héllo".encode()
    assert decode_value_text(value) == "héllo"
    assert decode_value_text(encode_value(b"\xff\xfe")) is None
    assert decode_value_text(encode_value(b"\x00")) is None
    assert decode_value_data({}) == b""
    assert decode_value_data({"data": "not base64!"}) == b""


def test_success_keeps_status_and_json() -> None:
    created = parse_response(201, b'{"id":"p"}')
    assert (created.status, created.body, created.created) == (201, {"id": "p"}, True)
    deduplicated = parse_response(200, b'{"id":"p"}')
    assert deduplicated.created is False
    assert parse_response(204, b"").body is None


def test_error_body_becomes_api_error() -> None:
    body = {"error": {"code": 40900, "message": "The specified promise already exists"}}
    with pytest.raises(ApiError) as raised:
        parse_response(409, json.dumps(body).encode(), "Conflict")
    assert (raised.value.status, raised.value.code) == (409, 40900)
    assert raised.value.message == "The specified promise already exists"
    assert raised.value.body == body


def test_non_json_error_has_code_zero_and_the_reason() -> None:
    with pytest.raises(ApiError) as raised:
        parse_response(502, b"<html>bad gateway</html>", "Bad Gateway")
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        502,
        0,
        "Bad Gateway",
    )
    assert raised.value.body == {}


def test_non_json_success_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponse):
        parse_response(200, b"ok")


@pytest.mark.parametrize(
    ("credentials", "authorization"),
    [
        (Credentials(token="jwt"), "Bearer jwt"),
        (Credentials(username="u", password="p"), "Basic " + base64.b64encode(b"u:p").decode()),
        (Credentials(username="u"), "Basic " + base64.b64encode(b"u:").decode()),
        (Credentials(), None),
    ],
)
def test_credentials_are_sent(credentials: Credentials, authorization: str | None) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "ok"})

    with client_with(handler, credentials=credentials) as client:
        client.healthz()
    assert seen == [authorization]


def test_token_and_username_are_exclusive() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        Credentials(token="t", username="u")


def test_requests_time_out_after_30_seconds() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    with client_with(handler) as client:
        client.readyz()
    assert seen == [{"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
    ],
)
def test_transport_failures_are_server_unreachable(failure: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with client_with(handler) as client, pytest.raises(ServerUnreachable) as raised:
        client.get_promise("p")
    assert raised.value.url == "http://resonate.test"


def test_a_closed_port_is_server_unreachable(closed_port_url: str) -> None:
    with ResonateClient(closed_port_url) as client, pytest.raises(ServerUnreachable):
        client.healthz()


def paged_handler(total: int) -> Handler:
    """A fake search endpoint returning `total` promises, two per page."""

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor") or 0)
        items = [{"id": f"p{index}"} for index in range(start, min(start + 2, total))]
        cursor = str(start + 2) if len(items) == 2 else None
        return httpx.Response(200, json={"cursor": cursor, "promises": items})

    return handler


def test_iter_promises_follows_cursors() -> None:
    with client_with(paged_handler(5)) as client:
        assert [item["id"] for item in client.iter_promises(limit=2)] == [
            "p0",
            "p1",
            "p2",
            "p3",
            "p4",
        ]


def test_iter_promises_stops_after_an_empty_last_page() -> None:
    with client_with(paged_handler(4)) as client:
        assert len(list(client.iter_promises(limit=2))) == 4


def test_async_client_shares_requests_and_parsing() -> None:
    async def scenario() -> tuple[list[str], int]:
        transport = httpx.MockTransport(paged_handler(3))
        async with AsyncResonateClient("http://resonate.test", transport=transport) as client:
            ids = [item["id"] async for item in client.iter_promises()]
            page = await client.search_promises()
        return ids, page.status

    assert asyncio.run(scenario()) == (["p0", "p1", "p2"], 200)


def test_async_client_raises_api_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": 40400, "message": "not found"}})

    async def scenario() -> None:
        transport = httpx.MockTransport(handler)
        async with AsyncResonateClient("http://resonate.test", transport=transport) as client:
            await client.get_promise("missing")

    with pytest.raises(ApiError) as raised:
        asyncio.run(scenario())
    assert raised.value.code == 40400
