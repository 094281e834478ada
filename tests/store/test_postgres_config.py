"""The PostgreSQL configuration exactly as the users' documents show it (issue 5): the seed's
flags start a server, and the example YAML is read verbatim, `query` included."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from resonate.server.config import resolve_config
from resonate.store.postgres.connection import postgres_dsn_and_options
from tests.support import pg
from tests.support.servers import ServerProcess

# A verbatim copy of shared/spec/config-examples/postgres.yml (CI has only this repository).
EXAMPLE = Path(__file__).parent / "config_examples" / "postgres.yml"
SEED_FLAGS = [
    "--aio-store-postgres-enable",
    "--aio-store-postgres-host",
    "localhost",
    "--aio-store-postgres-database",
    "resonate",
    "--aio-store-postgres-username",
    "resonate",
    "--aio-store-postgres-password",
    "secret",
]

needs_postgres = pytest.mark.skipif(not pg.DSN, reason=pg.SKIP_REASON)


async def ensure_role_and_database() -> None:
    """The `resonate` user (password `secret`) and database the documents name, at the latest
    schema version: the database outlives test runs, so it is upgraded as an operator would
    (`resonate migrate up`, safe to run concurrently) when a run brings a new migration."""
    admin = await asyncpg.connect(pg.DSN)
    try:
        await admin.execute(
            "DO $$ BEGIN"
            " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'resonate') THEN"
            " CREATE ROLE resonate LOGIN PASSWORD 'secret'; END IF; END $$"
        )
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'resonate'")
        if not exists:
            # Another test process may make it first.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute("CREATE DATABASE resonate OWNER resonate")
    finally:
        await admin.close()
    migrate = [sys.executable, "-m", "resonate", "migrate", "up", *SEED_FLAGS]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")}
    done = subprocess.run(migrate, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_postgres
async def test_seed_flags_start_a_server_on_postgres(tmp_path):
    await ensure_role_and_database()
    server = ServerProcess(tmp_path, extra_args=SEED_FLAGS)
    server.start()
    try:
        ready = httpx.get(server.url + "/readyz").json()
        assert ready["status"] == "ok" and ready["store"] == "postgres"
        promise_id = f"seed-{os.getpid()}-{tmp_path.name}"
        created = httpx.post(server.url + "/promises", json={"id": promise_id, "timeout": 2**62})
        assert created.status_code == 201
        assert httpx.get(f"{server.url}/promises/{promise_id}").json()["state"] == "PENDING"
        assert "secret" not in server.log()
    finally:
        server.stop()


def test_example_yaml_is_read_verbatim(tmp_path):
    config_file = tmp_path / "resonate.yml"
    shutil.copy(EXAMPLE, config_file)
    resolved = resolve_config(["--config", str(config_file)], {}, tmp_path)
    config = resolved.config
    assert config.store_kind == "postgres"
    assert config["aio.store.postgres.host"] == "postgres.example.com"
    assert config["aio.store.postgres.query"] == {"sslmode": "require"}
    options, description = postgres_dsn_and_options(config)
    assert description == "host=postgres.example.com port=5432 database=resonate user=resonate"
    assert "secret" not in description
    assert options.get("ssl") == "require" or "sslmode=require" in str(options.get("dsn", ""))


@needs_postgres
def test_sslmode_require_reaches_the_connection(tmp_path):
    """The example's `query: "sslmode=require"` is passed to the connection: the local server
    has SSL off, so the start fails at once, with one line naming everything but the
    password."""
    shutil.copy(EXAMPLE, tmp_path / "resonate.yml")
    env = {**os.environ, "RESONATE_AIO_STORE_POSTGRES_HOST": "127.0.0.1"}
    env.pop("RESONATE_CONFIG", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "resonate",
            "serve",
            "--config",
            "resonate.yml",
            "--api-http-addr",
            "127.0.0.1:0",
            "--aio-poll-addr",
            "127.0.0.1:0",
            "--api-grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert "host=127.0.0.1 port=5432 database=resonate user=resonate" in line
    assert "SSL" in line
    assert "secret" not in result.stderr
