"""JWT bearer auth and prefix authorisation (http-api.md §9.2, §9.3; protocol-2026.md §9),
against real server processes: RSA on both stores, EC and Ed25519 keys, Basic and JWT together,
the poll listener, the 2026 envelope, and no secret in any log line or error body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.support.servers import ServerProcess, store_server

VERSION = "2026-04-01"
ISSUER = "https://issuer.test"
AUDIENCE = "resonate-test"
PASSWORD = "basic-Pa55word-not-for-logs"
FUTURE = 4_102_444_800_000  # 2100-01-01, ms
HOUR = 3600


def _pem(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Keys:
    """A key pair, the algorithm it signs with, and the public key's PEM."""

    private: Any
    algorithm: str

    @property
    def pem(self) -> bytes:
        return _pem(self.private.public_key())

    def token(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + HOUR, **(claims or {})}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=header or None)


RSA = Keys(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
OTHER_RSA = Keys(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
EC_P256 = Keys(ec.generate_private_key(ec.SECP256R1()), "ES256")
ED25519 = Keys(ed25519.Ed25519PrivateKey.generate(), "EdDSA")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """`alg: none`: a header and a payload, no signature."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def hmac_token_keyed_by(secret: bytes, claims: dict[str, Any]) -> str:
    """HS256 signed with the server's *public* key as the HMAC secret (algorithm confusion)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(mac)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def enc(resource_id: str) -> str:
    return quote(resource_id, safe="")


def valid_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "exp": now + HOUR, "prefix": ""}


def bad_tokens() -> dict[str, str]:
    """Every token the RSA server must answer 401."""
    now = int(time.time())
    return {
        "expired": RSA.token({"exp": now - 120, "prefix": ""}),
        "not yet valid": RSA.token({"nbf": now + 600, "prefix": ""}),
        "issued in the future": RSA.token({"iat": now + 600, "prefix": ""}),
        "wrongly signed": OTHER_RSA.token({"prefix": ""}),
        "wrong audience": RSA.token({"aud": "someone-else", "prefix": ""}),
        "no audience": RSA.token({"aud": None, "prefix": ""}),
        "wrong issuer": RSA.token({"iss": "https://evil.test", "prefix": ""}),
        "no exp": RSA.token({"exp": None, "prefix": ""}),
        "alg none": unsigned_token(valid_claims()),
        "HS256 keyed by the public key": hmac_token_keyed_by(RSA.pem, valid_claims()),
        "EC key, RSA server": EC_P256.token({"prefix": ""}),
        "Ed25519 key, RSA server": ED25519.token({"prefix": ""}),
        "garbage": "not.a.token",
    }


def key_file(directory: Path, keys: Keys) -> Path:
    path = directory / f"{keys.algorithm}.pem"
    path.write_bytes(keys.pem)
    return path


@pytest.fixture(scope="module")
def secured(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """RSA JWT auth with issuer and audience, and Basic too (§9.3), per store. Debug logging,
    so that the log-grep sees everything the server might say."""
    workdir = tmp_path_factory.mktemp(f"jwt-{store_kind}")
    args = [
        "--log-level",
        "debug",
        "--api-auth-public-key",
        str(key_file(workdir, RSA)),
        "--api-auth-issuer",
        ISSUER,
        "--api-auth-audience",
        AUDIENCE,
        "--api-http-auth",
        f"alice={PASSWORD}",
    ]
    with store_server(workdir, store_kind, "resonate_jwt", args) as process:
        yield process


@pytest.fixture
def api(secured: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        yield client


def error_code(response: httpx.Response) -> int:
    return int(response.json()["error"]["code"])


def assert_forbidden(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 403, (rule, response.status_code, response.text)
    assert error_code(response) == 40300, rule


def assert_unauthorized(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 401, (rule, response.status_code, response.text)
    assert error_code(response) == 40100, rule
    assert "Bearer" in response.headers["WWW-Authenticate"], rule


# ---- the prefix rule on the REST routes ---------------------------------------------------------


def test_a_prefix_token_creates_reads_and_completes_its_own_promises(api, uid):
    headers = bearer(RSA.token({"prefix": f"{uid}/a/"}))
    own = f"{uid}/a/x"
    created = api.post("/promises", json={"id": own, "timeout": FUTURE}, headers=headers)
    assert created.status_code == 201, created.text
    assert api.get(f"/promises/{enc(own)}", headers=headers).status_code == 200
    completed = api.patch(
        f"/promises/{enc(own)}", json={"state": "RESOLVED", "value": {}}, headers=headers
    )
    assert completed.status_code == 201, completed.text
    assert completed.json()["state"] == "RESOLVED"
    found = api.get("/promises", params={"id": f"{uid}/a/*"}, headers=headers)
    assert found.status_code == 200
    assert [p["id"] for p in found.json()["promises"]] == [own]
    both = api.post(
        "/promises/task",
        json={
            "promise": {"id": f"{uid}/a/t", "timeout": FUTURE},
            "task": {"processId": "p", "ttl": 60_000},
        },
        headers=headers,
    )
    assert both.status_code == 201, both.text


def test_a_prefix_token_is_forbidden_outside_its_prefix(api, uid):
    headers = bearer(RSA.token({"prefix": f"{uid}/a/"}))
    admin = bearer(RSA.token({"role": "admin"}))
    outside = f"{uid}/b/x"
    assert api.post("/promises", json={"id": outside, "timeout": FUTURE}, headers=admin).is_success
    assert api.post(
        "/promises", json={"id": f"{uid}/a/y", "timeout": FUTURE}, headers=headers
    ).is_success
    recv = "poll://any@workers"
    cases = [
        ("create b/x", "POST", "/promises", {"id": f"{uid}/b/new", "timeout": FUTURE}),
        ("read b/x", "GET", f"/promises/{enc(outside)}", None),
        ("complete b/x", "PATCH", f"/promises/{enc(outside)}", {"state": "RESOLVED"}),
        (
            "create-with-task b/x",
            "POST",
            "/promises/task",
            {"promise": {"id": f"{uid}/b/t", "timeout": FUTURE}, "task": {"processId": "p"}},
        ),
        (
            "callback on b/x",
            "POST",
            f"/promises/callback/{enc(outside)}",
            {"rootPromiseId": f"{uid}/a/y", "recv": recv, "timeout": FUTURE},
        ),
        (
            "callback whose root is outside",
            "POST",
            f"/promises/callback/{enc(f'{uid}/a/y')}",
            {"rootPromiseId": outside, "recv": recv, "timeout": FUTURE},
        ),
        (
            "callback by body on b/x",
            "POST",
            "/callbacks",
            {
                "promiseId": outside,
                "rootPromiseId": f"{uid}/a/y",
                "recv": recv,
                "timeout": FUTURE,
            },
        ),
        (
            "subscription on b/x",
            "POST",
            f"/promises/subscribe/{enc(outside)}",
            {"id": "s1", "recv": recv, "timeout": FUTURE},
        ),
        (
            "subscription by body on b/x",
            "POST",
            "/subscriptions",
            {"promiseId": outside, "id": "s1", "recv": recv, "timeout": FUTURE},
        ),
        ("callbacks of b/x", "GET", f"/callbacks?promiseId={enc(outside)}", None),
        (
            "schedule whose template is outside",
            "POST",
            "/schedules",
            {"id": f"{uid}/a/s", "cron": "* * * * *", "promiseId": f"{uid}/b/{{{{.timestamp}}}}"},
        ),
        (
            "schedule whose template starts with its timestamp",
            "POST",
            "/schedules",
            {"id": f"{uid}/a/s", "cron": "* * * * *", "promiseId": "{{.timestamp}}"},
        ),
        (
            "schedule outside",
            "POST",
            "/schedules",
            {"id": f"{uid}/b/s", "cron": "* * * * *", "promiseId": f"{uid}/a/{{{{.timestamp}}}}"},
        ),
        ("read schedule outside", "GET", f"/schedules/{enc(f'{uid}/b/s')}", None),
        ("delete schedule outside", "DELETE", f"/schedules/{enc(f'{uid}/b/s')}", None),
        ("wildcard promise search", "GET", "/promises?id=*", None),
        ("search reaching other prefixes", "GET", f"/promises?id={enc(uid)}/*", None),
        ("leading wildcard", "GET", f"/promises?id=*{enc(f'{uid}/a/')}*", None),
        ("wildcard schedule search", "GET", "/schedules?id=*", None),
        (
            "claim a task outside",
            "POST",
            "/tasks/claim",
            {"id": f"__invoke:{outside}", "counter": 1, "processId": "p", "ttl": 1000},
        ),
        (
            "complete a task outside",
            "POST",
            "/tasks/complete",
            {"id": f"__resume:{outside}:{uid}/a/y", "counter": 1},
        ),
        (
            "drop a task outside",
            "POST",
            "/tasks/drop",
            {"id": f"__notify:{outside}:s", "counter": 1},
        ),
        ("task link outside", "GET", f"/tasks/claim/{enc(f'__invoke:{outside}')}/1", None),
        ("read a task outside", "GET", f"/tasks/{enc(f'__invoke:{outside}')}", None),
        ("a task id without a kind", "GET", f"/tasks/{enc(f'{uid}/a/y')}", None),
        ("task search without a filter", "GET", "/tasks", None),
        ("task search by a root outside", "GET", f"/tasks?rootPromiseId={enc(outside)}", None),
        (
            "acquire a lock outside",
            "POST",
            "/locks/acquire",
            {"resourceId": f"{uid}/b/r", "executionId": "e", "processId": "p", "ttl": 1000},
        ),
        (
            "release a lock outside",
            "POST",
            "/locks/release",
            {"resourceId": f"{uid}/b/r", "executionId": "e"},
        ),
        ("read a lock outside", "GET", f"/locks/{enc(f'{uid}/b/r')}", None),
        ("lock search without a pattern", "GET", "/locks", None),
        ("counts of every prefix", "GET", "/stats", None),
        ("stuck items of every prefix", "GET", "/stuck", None),
        ("doctor of every prefix", "GET", "/doctor", None),
    ]
    for rule, method, path, body in cases:
        assert_forbidden(api.request(method, path, json=body, headers=headers), rule)
    fenced = api.post(
        "/promises",
        json={"id": f"{uid}/a/fenced", "timeout": FUTURE},
        headers={**headers, "Task-Id": f"__invoke:{outside}", "Task-Counter": "1"},
    )
    assert_forbidden(fenced, "fenced by a task outside")
    untouched = api.get(f"/promises/{enc(outside)}", headers=admin).json()
    assert untouched["state"] == "PENDING"
    assert api.get(f"/promises/{enc(f'{uid}/b/new')}", headers=admin).status_code == 404


def test_a_prefix_token_may_use_everything_inside_its_prefix(api, uid):
    headers = bearer(RSA.token({"prefix": f"{uid}/a/"}))
    own = f"{uid}/a/x"
    assert api.post("/promises", json={"id": own, "timeout": FUTURE}, headers=headers).is_success
    recv = "poll://any@workers"
    allowed = [
        (
            "callback",
            "POST",
            f"/promises/callback/{enc(own)}",
            {"rootPromiseId": f"{uid}/a/root", "recv": recv, "timeout": FUTURE},
        ),
        (
            "subscription",
            "POST",
            f"/promises/subscribe/{enc(own)}",
            {"id": "s1", "recv": recv, "timeout": FUTURE},
        ),
        ("callbacks", "GET", f"/callbacks?promiseId={enc(own)}", None),
        (
            "schedule",
            "POST",
            "/schedules",
            {"id": f"{uid}/a/s", "cron": "* * * * *", "promiseId": f"{uid}/a/{{{{.timestamp}}}}"},
        ),
        (
            "schedule whose template starts with its id",
            "POST",
            "/schedules",
            {"id": f"{uid}/a/s2", "cron": "* * * * *", "promiseId": "{{.id}}.{{.timestamp}}"},
        ),
        ("read schedule", "GET", f"/schedules/{enc(f'{uid}/a/s')}", None),
        ("schedule search", "GET", f"/schedules?id={enc(f'{uid}/a/')}*", None),
        ("task search by id", "GET", f"/tasks?id={enc(f'__invoke:{uid}/a/')}*", None),
        ("task search by root", "GET", f"/tasks?rootPromiseId={enc(own)}", None),
        (
            "lock",
            "POST",
            "/locks/acquire",
            {"resourceId": f"{uid}/a/r", "executionId": "e", "processId": "p", "ttl": 60_000},
        ),
        ("read lock", "GET", f"/locks/{enc(f'{uid}/a/r')}", None),
        ("lock search", "GET", f"/locks?resourceId={enc(f'{uid}/a/')}*", None),
        (
            "release lock",
            "POST",
            "/locks/release",
            {"resourceId": f"{uid}/a/r", "executionId": "e"},
        ),
        ("delete schedule", "DELETE", f"/schedules/{enc(f'{uid}/a/s')}", None),
        # Heartbeats name a process, not a resource: authentication only (§9.2).
        ("task heartbeat", "POST", "/tasks/heartbeat", {"processId": "p"}),
        ("lock heartbeat", "POST", "/locks/heartbeat", {"processId": "p"}),
    ]
    for rule, method, path, body in allowed:
        response = api.request(method, path, json=body, headers=headers)
        assert response.is_success, (rule, response.status_code, response.text)
    missing_task = api.get(f"/tasks/{enc(f'__invoke:{uid}/a/none')}", headers=headers)
    assert missing_task.status_code == 404  # allowed, and not there


def test_a_cursor_is_held_to_the_prefix_of_its_stored_pattern(api, uid):
    admin = bearer(RSA.token({"role": "ADMIN"}))
    for n in range(3):
        api.post("/promises", json={"id": f"{uid}/b/{n}", "timeout": FUTURE}, headers=admin)
    page = api.get("/promises", params={"id": f"{uid}/b/*", "limit": 1}, headers=admin).json()
    assert page["cursor"]
    limited = bearer(RSA.token({"prefix": f"{uid}/a/"}))
    next_page = api.get("/promises", params={"cursor": page["cursor"]}, headers=limited)
    assert_forbidden(next_page, "a cursor of another prefix")


def test_roles_and_prefix_claims(api, uid):
    body = {"id": f"{uid}/z", "timeout": FUTURE}
    admin = api.post("/promises", json=body, headers=bearer(RSA.token({"role": "Admin"})))
    assert admin.status_code == 201
    search = api.get("/promises?id=*&limit=1", headers=bearer(RSA.token({"role": "admin"})))
    assert search.status_code == 200
    everything = bearer(RSA.token({"prefix": ""}))
    assert api.get(f"/promises/{enc(f'{uid}/z')}", headers=everything).status_code == 200
    assert api.get("/stats", headers=everything).status_code == 200
    for rule, claims in [
        ("no role, no prefix", {}),
        ("a role that is not admin", {"role": "worker"}),
        ("a prefix that is not a string", {"prefix": 7}),
        ("a role that is not a string", {"role": ["admin"]}),
    ]:
        headers = bearer(RSA.token(claims))
        assert_forbidden(api.get(f"/promises/{enc(f'{uid}/z')}", headers=headers), rule)
        # Operations that are not restricted need only a valid token.
        heartbeat = api.post("/tasks/heartbeat", json={"processId": "p"}, headers=headers)
        assert heartbeat.status_code == 200, rule


# ---- authentication failures (401) ------------------------------------------------------------


def test_every_bad_token_is_401(api, uid):
    for rule, token in bad_tokens().items():
        response = api.get(f"/promises/{enc(uid)}", headers=bearer(token))
        assert_unauthorized(response, rule)
    assert_unauthorized(api.get(f"/promises/{enc(uid)}"), "no credentials")
    assert_unauthorized(
        api.get(f"/promises/{enc(uid)}", headers={"Authorization": "Bearer"}), "no token"
    )
    assert_unauthorized(
        api.get(f"/promises/{enc(uid)}", headers={"Authorization": "Token abc"}), "unknown scheme"
    )


def test_small_clock_skew_is_tolerated(api, uid):
    now = int(time.time())
    for rule, claims in [
        ("expired 5 s ago", {"exp": now - 5}),
        ("valid from 5 s on", {"nbf": now + 5}),
    ]:
        response = api.get(
            f"/promises/{enc(uid)}", headers=bearer(RSA.token(claims | {"prefix": ""}))
        )
        assert response.status_code == 404, rule  # authenticated: the promise does not exist


def test_other_rsa_algorithms_and_scheme_case(api, uid):
    for algorithm in ("RS384", "RS512", "PS256", "PS512"):
        token = jwt.encode(valid_claims(), RSA.private, algorithm=algorithm)
        response = api.get(f"/promises/{enc(uid)}", headers=bearer(token))
        assert response.status_code == 404, algorithm
    token = RSA.token({"prefix": ""})
    for scheme in ("bearer", "BEARER"):
        response = api.get(f"/promises/{enc(uid)}", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 404, scheme


def test_basic_and_jwt_together(api, uid):
    """§9.3: the scheme selects the check; no header gets both challenges."""
    assert api.get(f"/promises/{enc(uid)}", headers=basic("alice", PASSWORD)).status_code == 404
    assert_unauthorized(
        api.get(f"/promises/{enc(uid)}", headers=basic("alice", "wrong")), "wrong password"
    )
    refused = api.get(f"/promises/{enc(uid)}")
    challenge = refused.headers["WWW-Authenticate"]
    assert "Basic" in challenge and "Bearer" in challenge
    for path in ("/healthz", "/readyz", "/ping", "/openapi.json"):
        assert api.get(path).status_code == 200, path


# ---- the poll listener and the 2026 stream ------------------------------------------------------


def _stream_status(url: str, headers: dict[str, str]) -> int:
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        return response.status_code


def test_the_poll_listener_needs_credentials(secured, uid):
    url = f"{secured.poll_url}/workers/{uid}"
    assert _stream_status(url, {}) == 401
    assert _stream_status(url, bearer(bad_tokens()["expired"])) == 401
    # Authentication only: a token of any prefix may open a stream.
    assert _stream_status(url, bearer(RSA.token({"prefix": "elsewhere/"}))) == 200
    assert _stream_status(url, bearer(RSA.token({"role": "admin"}))) == 200
    stream_2026 = f"{secured.url}/poll/workers/{uid}"
    assert _stream_status(stream_2026, {}) == 401
    assert _stream_status(stream_2026, bearer(RSA.token({"prefix": "elsewhere/"}))) == 200


# ---- the 2026 envelope ---------------------------------------------------------------------


def envelope(kind: str, data: Any, auth: str | None = None) -> dict[str, Any]:
    head: dict[str, Any] = {"corrId": "c1", "version": VERSION}
    if auth is not None:
        head["auth"] = auth
    return {"kind": kind, "head": head, "data": data}


def send(api: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None):
    reply = api.post("/", json=body, headers=headers)
    answer = reply.json()
    assert answer["head"]["status"] == reply.status_code
    return answer


def create_data(promise_id: str, **tags: str) -> dict[str, Any]:
    return {
        "id": promise_id,
        "timeoutAt": FUTURE,
        "param": {"headers": {}, "data": ""},
        "tags": tags,
    }


def test_envelope_prefix_rules(api, uid):
    token = RSA.token({"prefix": f"{uid}/a/"})
    admin = RSA.token({"role": "admin"})
    own, outside = f"{uid}/a/x", f"{uid}/b/x"
    created = send(api, envelope("promise.create", create_data(own), token))
    assert created["head"]["status"] == 200, created
    # Without head.auth the Authorization header is read (P6).
    read = send(api, envelope("promise.get", {"id": own}), bearer(token))
    assert read["head"]["status"] == 200
    assert (
        send(api, envelope("promise.create", create_data(outside), admin))["head"]["status"] == 200
    )
    forbidden = [
        ("promise.get", {"id": outside}),
        ("promise.create", create_data(f"{uid}/b/new")),
        ("promise.settle", {"id": outside, "state": "resolved", "value": {}}),
        ("promise.register_callback", {"awaited": outside, "awaiter": own}),
        ("promise.register_listener", {"awaited": outside, "address": "poll://any@g"}),
        ("promise.search", {"state": "pending"}),
        (
            "task.create",
            {
                "pid": "p",
                "ttl": 60_000,
                "action": {
                    "kind": "promise.create",
                    "data": create_data(f"{uid}/b/t", **{"resonate:target": "poll://any@g"}),
                },
            },
        ),
        ("task.acquire", {"id": outside, "version": 1, "pid": "p", "ttl": 1000}),
        ("task.get", {"id": outside}),
        ("task.search", {}),
        (
            "task.heartbeat",
            {"pid": "p", "tasks": [{"id": own, "version": 1}, {"id": outside, "version": 1}]},
        ),
        (
            "task.suspend",
            {
                "id": own,
                "version": 1,
                "actions": [
                    {
                        "kind": "promise.register_callback",
                        "data": {"awaited": outside, "awaiter": own},
                    }
                ],
            },
        ),
        (
            "schedule.create",
            {
                "id": f"{uid}/a/s",
                "cron": "* * * * *",
                "promiseId": f"{uid}/b/{{{{.timestamp}}}}",
                "promiseTimeout": 1000,
            },
        ),
        ("schedule.get", {"id": f"{uid}/b/s"}),
        ("schedule.delete", {"id": f"{uid}/b/s"}),
        ("schedule.search", {}),
        ("debug.reset", {}),
    ]
    for kind, data in forbidden:
        answer = send(api, envelope(kind, data, token))
        assert (answer["head"]["status"], answer["data"], answer["kind"]) == (
            403,
            "Forbidden",
            kind,
        )
    untouched = send(api, envelope("promise.get", {"id": outside}, admin))
    assert untouched["data"]["promise"]["state"] == "pending"
    allowed = send(
        api,
        envelope(
            "schedule.create",
            {
                "id": f"{uid}/a/s",
                "cron": "* * * * *",
                "promiseId": f"{uid}/a/{{{{.timestamp}}}}",
                "promiseTimeout": 1000,
                "promiseTags": {"resonate:target": "poll://any@g"},
            },
            token,
        ),
    )
    assert allowed["head"]["status"] == 200, allowed
    beat = send(
        api, envelope("task.heartbeat", {"pid": "p", "tasks": [{"id": own, "version": 1}]}, token)
    )
    assert beat["head"]["status"] == 200, beat


def test_envelope_authentication_failures(api, uid):
    body = {"id": uid}
    for rule, token in bad_tokens().items():
        answer = send(api, envelope("promise.get", body, token))
        assert (answer["head"]["status"], answer["data"]) == (401, "Unauthorized"), rule
        answer = send(api, envelope("promise.get", body), bearer(token))
        assert (answer["head"]["status"], answer["data"]) == (401, "Unauthorized"), rule
    assert send(api, envelope("promise.get", body))["head"]["status"] == 401
    # head.auth wins over the header; Basic is accepted in the header.
    good = RSA.token({"prefix": ""})
    answer = send(api, envelope("promise.get", body, bad_tokens()["expired"]), bearer(good))
    assert answer["head"]["status"] == 401
    answer = send(api, envelope("promise.get", body), basic("alice", PASSWORD))
    assert answer["head"]["status"] == 404


# ---- other key types --------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [EC_P256, ED25519], ids=["ec-p256", "ed25519"])
def test_ec_and_ed25519_keys(tmp_path, uid, keys):
    """The algorithm comes from the token's header and must fit the key: an RS256 token, or an
    ES384 one, never passes an ES256 or EdDSA key."""
    with (
        store_server(
            tmp_path, "sqlite", "unused", ["--api-auth-public-key", keys.pem.decode()]
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as api,
    ):
        headers = bearer(keys.token({"prefix": f"{uid}/"}, typ="JWT"))
        own = f"{uid}/x"
        created = api.post("/promises", json={"id": own, "timeout": FUTURE}, headers=headers)
        assert created.status_code == 201, created.text
        assert_forbidden(api.get("/promises?id=*", headers=headers), "wildcard search")
        # No issuer or audience configured: neither is checked.
        assert api.get(f"/promises/{enc(own)}", headers=headers).status_code == 200
        claims = {"exp": int(time.time()) + HOUR, "prefix": ""}
        wrong = [
            ("RS256 token", RSA.token(claims)),
            (
                "ES384 token",
                jwt.encode(claims, ec.generate_private_key(ec.SECP384R1()), "ES384"),
            ),
            ("alg none", unsigned_token(claims)),
            ("no exp", keys.token({"exp": None, "prefix": ""})),
        ]
        for rule, token in wrong:
            assert_unauthorized(api.get(f"/promises/{enc(own)}", headers=bearer(token)), rule)
        # Basic is not configured: a Basic header is refused.
        response = api.get(f"/promises/{enc(own)}", headers=basic("alice", PASSWORD))
        assert_unauthorized(response, "Basic on a JWT-only server")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="resonate"'


# ---- no secret in logs or error bodies -----------------------------------------------------


def test_no_secret_in_any_log_line_or_error_body(secured, api, uid):
    """Exercise every authentication and authorisation failure (REST, envelope, poll), then
    grep the server's log (debug level) and every error body for the secrets involved."""
    secrets = [PASSWORD, base64.b64encode(f"alice:{PASSWORD}".encode()).decode()]
    pem_body = "".join(RSA.pem.decode().splitlines()[1:-1])
    secrets += [pem_body[i : i + 40] for i in range(0, len(pem_body) - 40, 40)]
    bodies: list[str] = []

    def record(response: httpx.Response) -> None:
        bodies.append(response.text)

    tokens = dict(bad_tokens())
    tokens["prefix a"] = RSA.token({"prefix": f"{uid}/a/"})
    tokens["no prefix"] = RSA.token({})
    for token in tokens.values():
        if token:
            secrets += [token, token.split(".")[-1]] if token.split(".")[-1] else [token]
        record(api.get(f"/promises/{enc(f'{uid}/b/x')}", headers=bearer(token)))
        record(api.get("/promises?id=*", headers=bearer(token)))
        record(api.post("/", json=envelope("promise.get", {"id": f"{uid}/b/x"}, token)))
        record(api.post("/", json=envelope("promise.search", {}), headers=bearer(token)))
        with httpx.stream(
            "GET", f"{secured.poll_url}/g/{uid}", headers=bearer(token), timeout=10
        ) as r:
            if r.status_code != 200:
                r.read()
                record(r)
    record(api.get("/promises?id=*", headers=basic("alice", "wrong-" + PASSWORD)))
    secrets.append("wrong-" + PASSWORD)
    record(api.get("/promises?id=*", headers={"Authorization": "Basic %%%" + PASSWORD}))
    time.sleep(0.2)  # let the log reach the file
    log = secured.log()
    assert "api auth: basic (1 user), jwt bearer (iss checked, aud checked)" in log
    secrets = [s for s in secrets if len(s) >= 16]
    for secret in secrets:
        assert secret not in log, "a secret reached the log"
        for body in bodies:
            assert secret not in body, f"a secret reached an error body: {body}"
