"""Basic auth on the API listener (http-api.md §9.1), against a real server process."""

from __future__ import annotations

import base64

import httpx
import pytest


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    from tests.support.servers import ServerProcess

    process = ServerProcess(
        tmp_path_factory.mktemp("auth"),
        extra_args=["--api-http-auth", "alice=s3cret,bob=pw:with:colons"],
    )
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("rule", "headers", "status"),
    [
        ("no header", {}, 401),
        ("right credentials", basic("alice", "s3cret"), 201),
        ("password containing colons", basic("bob", "pw:with:colons"), 201),
        ("wrong password", basic("alice", "nope"), 401),
        ("unknown user", basic("mallory", "s3cret"), 401),
        ("bearer instead of basic", {"Authorization": "Bearer abc"}, 401),
        ("not base64", {"Authorization": "Basic %%%"}, 401),
        ("no colon", {"Authorization": "Basic " + base64.b64encode(b"alice").decode()}, 401),
    ],
)
def test_basic_auth(secured, uid, rule, headers, status):
    response = httpx.post(
        secured.url + "/promises", json={"id": f"{uid}", "timeout": 2**62}, headers=headers
    )
    assert response.status_code == status, rule
    if status == 401:
        assert response.json()["error"]["code"] == 40100
        assert response.headers["WWW-Authenticate"] == 'Basic realm="resonate"'
        assert (
            httpx.get(
                secured.url + f"/promises/{uid}", headers=basic("alice", "s3cret")
            ).status_code
            == 404
        )


@pytest.mark.parametrize("path", ["/healthz", "/ping", "/readyz", "/openapi.json"])
def test_probes_and_openapi_need_no_credentials(secured, path):
    assert httpx.get(secured.url + path).status_code == 200


def test_openapi_declares_the_auth_schemes_and_the_open_routes(secured):
    document = httpx.get(secured.url + "/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
    assert {} in document["security"]  # credentials only when the server is configured so
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in document["paths"]["/promises/{id}"]["get"]


def test_unknown_routes_are_authenticated_too(secured):
    assert httpx.get(secured.url + "/nope").status_code == 401
    assert httpx.get(secured.url + "/nope", headers=basic("alice", "s3cret")).status_code == 404
