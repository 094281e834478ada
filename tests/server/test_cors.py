"""CORS on the API and poll listeners (``api.http.cors.allowOrigins``,
``aio.poll.cors.allowOrigins``; docs/server.md, "CORS"), against real server processes."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess

APP = "https://app.example"
OTHER = "https://other.example"
EVIL = "https://evil.example"
METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
HEADERS = (
    "Origin, Content-Length, Content-Type, Authorization, Idempotency-Key, Strict, "
    "Request-Id, Task-Id, Task-Counter, Traceparent, Tracestate"
)
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
)
AUTH = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization",
    }


def start(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("cors"), extra_args=list(args))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    yield from start(tmp_path_factory)


@pytest.fixture(scope="module")
def open_cors(tmp_path_factory):
    yield from start(tmp_path_factory, "--api-http-cors-allow-origins", "*")


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    yield from start(
        tmp_path_factory,
        "--api-http-cors-allow-origins",
        f"{APP},{OTHER}",
        "--api-http-auth",
        "user=pass",
        "--aio-poll-cors-allow-origins",
        APP,
    )


def assert_no_cors(response: httpx.Response) -> None:
    for name in CORS_HEADERS:
        assert name not in response.headers, (name, response.headers)


def assert_405(response: httpx.Response) -> None:
    assert response.status_code == 405, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == 40500


def assert_preflight(response: httpx.Response, allow_origin: str) -> None:
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == allow_origin
    assert response.headers["access-control-allow-methods"] == METHODS
    assert response.headers["access-control-allow-headers"] == HEADERS
    assert response.headers["access-control-max-age"] == "43200"
    assert response.content == b""


def assert_actual(response: httpx.Response, allow_origin: str) -> None:
    assert response.headers["access-control-allow-origin"] == allow_origin
    assert response.headers["access-control-expose-headers"] == "Resonate-Version, Request-Id"
    assert "resonate-version" in response.headers
    if allow_origin != "*":
        assert "Origin" in {v.strip() for v in response.headers["vary"].split(",")}


# ---- off by default ------------------------------------------------------------------------


def test_disabled_by_default_sends_no_cors_headers(plain):
    response = httpx.get(f"{plain.url}/healthz", headers={"Origin": APP})
    assert response.status_code == 200
    assert_no_cors(response)


def test_disabled_by_default_preflight_is_405(plain):
    response = httpx.options(f"{plain.url}/promises", headers=preflight(APP))
    assert_405(response)
    assert_no_cors(response)
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}


def test_disabled_by_default_on_the_poll_listener(plain):
    response = httpx.options(f"{plain.poll_url}/g/w", headers=preflight(APP, "GET"))
    assert_405(response)
    assert_no_cors(response)


# ---- any origin ------------------------------------------------------------------------------


def test_any_origin_preflight_answers_star(open_cors):
    response = httpx.options(f"{open_cors.url}/promises", headers=preflight(EVIL))
    assert_preflight(response, "*")
    assert "vary" not in response.headers


def test_any_origin_actual_responses_answer_star(open_cors):
    response = httpx.get(f"{open_cors.url}/healthz", headers={"Origin": EVIL})
    assert response.status_code == 200
    assert_actual(response, "*")
    missing = httpx.get(f"{open_cors.url}/promises/no-such-promise", headers={"Origin": EVIL})
    assert missing.status_code == 404
    assert_actual(missing, "*")


def test_options_that_is_not_a_preflight_is_405(open_cors):
    response = httpx.options(f"{open_cors.url}/promises", headers={"Origin": APP})
    assert_405(response)


def test_poll_listener_stays_off_when_only_the_api_has_cors(open_cors):
    response = httpx.options(f"{open_cors.poll_url}/g/w", headers=preflight(APP, "GET"))
    assert_405(response)
    assert_no_cors(response)


# ---- listed origins --------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [APP, OTHER])
def test_listed_origin_preflight_needs_no_credentials(listed, origin):
    response = httpx.options(f"{listed.url}/promises", headers=preflight(origin))
    assert_preflight(response, origin)
    assert "Origin" in response.headers["vary"]


def test_disallowed_origin_preflight_is_405_without_cors_headers(listed):
    response = httpx.options(f"{listed.url}/promises", headers={**preflight(EVIL), **AUTH})
    assert_405(response)
    assert_no_cors(response)


def test_disallowed_origin_actual_request_gets_no_cors_headers(listed):
    response = httpx.get(f"{listed.url}/promises?id=*", headers={"Origin": EVIL, **AUTH})
    assert response.status_code == 200
    assert_no_cors(response)


def test_listed_origin_actual_success_404_and_401_carry_the_headers(listed):
    ok = httpx.get(f"{listed.url}/promises?id=*", headers={"Origin": APP, **AUTH})
    assert ok.status_code == 200, ok.text
    assert_actual(ok, APP)
    missing = httpx.get(f"{listed.url}/promises/no-such-promise", headers={"Origin": APP, **AUTH})
    assert missing.status_code == 404, missing.text
    assert_actual(missing, APP)
    denied = httpx.get(f"{listed.url}/promises", headers={"Origin": OTHER})
    assert denied.status_code == 401, denied.text
    assert_actual(denied, OTHER)


# ---- the poll listener -----------------------------------------------------------------------


def test_poll_listener_preflight(listed):
    response = httpx.options(f"{listed.poll_url}/g/w", headers=preflight(APP, "GET"))
    assert_preflight(response, APP)
    refused = httpx.options(f"{listed.poll_url}/g/w", headers=preflight(EVIL, "GET"))
    assert_405(refused)
    assert_no_cors(refused)


def test_poll_listener_stream_carries_the_headers(listed):
    with httpx.stream(
        "GET", f"{listed.poll_url}/cors-group/w1", headers={"Origin": APP}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert_actual_origin_only(response, APP)
    with httpx.stream(
        "GET", f"{listed.poll_url}/cors-group/w2", headers={"Origin": EVIL}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert_no_cors(response)


def assert_actual_origin_only(response: httpx.Response, origin: str) -> None:
    """The poll listener sends no Resonate-Version, but exposes it all the same."""
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-expose-headers"] == "Resonate-Version, Request-Id"
    assert "Origin" in response.headers["vary"]
