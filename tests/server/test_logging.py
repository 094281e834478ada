"""Logs of a real `resonate serve` (issue 15 item 4): `logFormat json` is one object per line
with the request fields, an access line per request at debug, one line per 5xx with its request
id at any level, the echoed `Request-Id`, and the start-up banner (version, store without its
password, listeners, auth modes)."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from resonate import __version__
from tests.support import pg
from tests.support.servers import ServerProcess, wait_until

needs_postgres = pytest.mark.skipif(not pg.DSN, reason=pg.SKIP_REASON)
PASSWORD = "s3cret-not-for-logs"


def with_password(dsn: str) -> str:
    """``dsn`` with PASSWORD in it (trust authentication ignores it)."""
    parts = urllib.parse.urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}{port}"))


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the log, each parsed on its own: a line that is not one JSON object
    fails the test."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        for name in ("time", "level", "logger", "message"):
            assert name in entry, line
        entries.append(entry)
    return entries


def logged(server: ServerProcess, predicate: Any, what: str) -> list[dict[str, Any]]:
    """The JSON entries matching ``predicate``, once there is at least one (the log is written
    by another process: poll it, with a deadline)."""

    def matching() -> list[dict[str, Any]]:
        return [entry for entry in json_lines(server.log()) if predicate(entry)]

    return list(wait_until(matching, time.monotonic() + 10, what=what))


@pytest.fixture
def json_server(server_factory: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    args = ["--log-format", "json", "--log-level", "debug"]
    return server_factory(tmp_path, extra_args=args).start()


def test_json_lines_carry_the_request_fields_and_the_request_id_is_echoed(
    json_server: ServerProcess,
) -> None:
    rid = f"rid-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=json_server.url, timeout=10) as client:
        created = client.post(
            "/promises", json={"id": rid, "timeout": 2**62}, headers={"Request-Id": rid}
        )
        assert created.status_code == 201
        assert created.headers["Request-Id"] == rid
        missing = client.get("/promises/absent")  # no Request-Id: one is generated
        generated = missing.headers["Request-Id"]
        uuid.UUID(generated)

    (access,) = logged(json_server, lambda e: e.get("request_id") == rid, "the access line")
    assert access["level"] == "debug" and access["logger"] == "resonate.http"
    assert access["method"] == "POST" and access["path"] == "/promises"
    assert access["status"] == 201
    assert isinstance(access["duration_ms"], (int, float)) and access["duration_ms"] >= 0
    assert rid in access["message"]
    (other,) = logged(json_server, lambda e: e.get("request_id") == generated, "404 line")
    assert other["status"] == 404 and other["path"] == "/promises/absent"
    # time is UTC with milliseconds
    assert access["time"].endswith("Z") and "T" in access["time"]


def test_the_poll_listener_logs_and_echoes_the_request_id_too(json_server: ServerProcess) -> None:
    rid = f"rid-{uuid.uuid4().hex[:8]}"
    response = httpx.get(json_server.poll_url + "/no-slash", headers={"Request-Id": rid})
    assert response.status_code == 400
    assert response.headers["Request-Id"] == rid
    (access,) = logged(json_server, lambda e: e.get("request_id") == rid, "the access line")
    assert access["method"] == "GET" and access["path"] == "/no-slash"
    assert access["status"] == 400 and access["level"] == "debug"


def test_text_format_logs_no_access_line_at_info(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(tmp_path).start()  # logFormat text, logLevel info
    rid = f"rid-{uuid.uuid4().hex[:8]}"
    response = httpx.get(server.url + "/promises/absent", headers={"Request-Id": rid})
    assert response.status_code == 404 and response.headers["Request-Id"] == rid
    assert server.terminate() == 0
    text = server.log()
    assert "stopped" in text  # the log is complete
    assert rid not in text
    assert "resonate: api listening on" in text


def test_the_banner_names_version_store_listeners_and_auth(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(
        tmp_path, extra_args=["--log-format", "json", "--api-http-auth", "alice=pw-not-logged"]
    ).start()
    messages = [e["message"] for e in json_lines(server.log()) if e["logger"] == "resonate"]
    assert messages[0].startswith(f"resonate {__version__} (python ")
    assert f"store: sqlite path={server.db_path}" in messages
    assert f"api listening on 127.0.0.1:{server.port}" in messages
    assert f"poll listening on 127.0.0.1:{server.poll_port}" in messages
    assert f"metrics listening on 127.0.0.1:{server.metrics_port}" in messages
    assert "api auth: basic (1 user)" in messages
    assert "poll auth: off (every stream is allowed)" in messages
    assert "pw-not-logged" not in server.log()


@needs_postgres
def test_the_banner_names_the_postgres_store_without_its_password(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    dsn = pg.create_database_sync("resonate_banner")
    database = urllib.parse.urlsplit(dsn).path.lstrip("/")
    try:
        args = [*pg.store_args(with_password(dsn)), "--log-format", "json"]
        server = server_factory(tmp_path, extra_args=args).start()
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert server.terminate() == 0
        text = server.log()
        assert PASSWORD not in text
        messages = [entry["message"] for entry in json_lines(text)]
        (store,) = [m for m in messages if m.startswith("store: ")]
        assert store.startswith("store: postgres host=") and f"database={database}" in store
        assert "user=postgres" in store
    finally:
        pg.drop_database_sync(dsn)


@needs_postgres
def test_every_5xx_is_logged_once_with_its_request_id_at_the_default_level(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    """The store goes away under a running server (its database is dropped): each request is
    answered 503 and logged on one line naming its request id, even at logLevel info."""
    dsn = pg.create_database_sync("resonate_5xx")
    dropped = False
    try:
        args = [*pg.store_args(with_password(dsn)), "--log-format", "json"]
        server = server_factory(tmp_path, extra_args=args).start()
        assert httpx.get(server.url + "/promises/x").status_code == 404
        pg.drop_database_sync(dsn)
        dropped = True
        rid = f"rid-5xx-{uuid.uuid4().hex[:8]}"
        response = httpx.get(server.url + "/promises/x", headers={"Request-Id": rid}, timeout=30)
        assert response.status_code >= 500
        assert response.headers["Request-Id"] == rid
        assert rid in response.text  # the body names it too
        (line,) = logged(server, lambda e: e.get("request_id") == rid, "the 5xx line")
        assert line["level"] in ("warning", "error")
        assert line["status"] == response.status_code
        assert line["method"] == "GET" and line["path"] == "/promises/x"
        assert "store unavailable" in line["message"]
        assert PASSWORD not in server.log() and PASSWORD not in response.text
    finally:
        if not dropped:
            pg.drop_database_sync(dsn)
