"""Start-up, migrations and graceful shutdown of a real `resonate serve` process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import httpx

from resonate.store.migrations import load_migrations
from tests.support.servers import ServerProcess


def resonate(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resonate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_sigterm_drains_and_exits_zero(server_factory, tmp_path):
    server = server_factory(tmp_path).start()
    assert (
        httpx.post(server.url + "/promises", json={"id": "a", "timeout": 2**62}).status_code == 201
    )
    assert server.terminate() == 0
    assert "stopped" in server.log()
    # The store was closed cleanly: the WAL was checkpointed into the main file.
    with sqlite3.connect(server.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM promises WHERE id = 'a'").fetchone() == (1,)


def test_fresh_database_is_migrated_at_start(server_factory, tmp_path):
    server = server_factory(tmp_path).start()
    ready = httpx.get(server.url + "/readyz").json()

    latest = len(load_migrations("resonate.store.sqlite"))
    assert ready == {"status": "ok", "store": "sqlite", "schemaVersion": latest}


async def test_pending_migrations_refuse_to_start_and_migrate_up_applies_them(tmp_path):
    """A database at the latest version opened by a server that knows one more (§15)."""
    from resonate.store.base import MigrationError
    from resonate.store.migrations import Migration
    from resonate.store.sqlite.store import SqliteStore

    db = str(tmp_path / "behind.db")
    first = SqliteStore(db)
    await first.open()
    await first.close()

    newer = SqliteStore(db)
    current = len(newer.migrations)
    newer.migrations.append(
        Migration(current + 1, "add_note", "ALTER TABLE promises ADD COLUMN note TEXT")
    )
    try:
        await newer.open()
    except MigrationError as error:
        assert str(error) == (
            f"pending migrations (database at version {current}, latest {current + 1}); "
            'run "resonate migrate up"'
        )
    else:
        raise AssertionError("a database with pending migrations was opened")
    assert [m.version for m in await newer.migrate_up()] == [current + 1]
    assert (await newer.schema_status()).pending is False
    await newer.close()


def test_database_ahead_refuses_to_start(tmp_path):
    db = tmp_path / "ahead.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT, applied_on INTEGER)"
        )
        conn.execute("INSERT INTO migrations VALUES (1, 'initial_schema', 0), (99, 'future', 0)")
    process = ServerProcess(tmp_path, db_path=db)
    result = subprocess.run(process.command(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1

    latest = len(load_migrations("resonate.store.sqlite"))
    assert "version 99" in result.stderr and f"({latest})" in result.stderr


def test_migrate_status_dry_run_up(tmp_path):
    db = tmp_path / "m.db"
    args = ["--aio-store-sqlite-path", str(db)]
    status = resonate("migrate", "status", *args, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "current version: 0" in status.stdout
    assert "pending: 001_initial_schema.sql" in status.stdout
    dry = resonate("migrate", "dry-run", *args, cwd=tmp_path)
    assert dry.returncode == 0
    assert "CREATE TABLE IF NOT EXISTS promises" in dry.stdout
    with sqlite3.connect(db) as conn:  # dry-run changed nothing
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name='promises'").fetchone() is None
        )
    up = resonate("migrate", "up", *args, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "applied 001_initial_schema.sql" in up.stdout
    assert "applied 003_complete_promise_function.sql" in up.stdout
    again = resonate("migrate", "status", *args, cwd=tmp_path)
    latest = len(load_migrations("resonate.store.sqlite"))
    assert f"current version: {latest}" in again.stdout and "no pending migrations" in again.stdout


def test_address_in_use_exits_one(server, tmp_path):
    port = server.url.rsplit(":", 1)[1]
    process = ServerProcess(tmp_path)
    command = process.command()
    command[command.index("--api-http-addr") + 1] = f"127.0.0.1:{port}"
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_configuration_error_exits_two(tmp_path):
    result = resonate("serve", "--api-http-addr", "nonsense", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")


def test_dev_prints_banner_first(tmp_path):
    process = ServerProcess(tmp_path)
    command = process.command()
    command[command.index("serve")] = "dev"
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        first = child.stderr.readline()
    finally:
        child.terminate()
        child.wait(timeout=15)
    assert first.startswith("resonate dev: in-memory store (SQLite :memory:).")
    assert not (tmp_path / "resonate.db").exists()


def test_a_bad_jwt_key_file_is_a_one_line_configuration_error(tmp_path):
    """Never serve unauthenticated while the operator configured JWT auth: a key file that
    cannot be read, or does not hold a public key, stops `serve` with exit 2 and one line
    naming the file (never its content)."""
    missing = tmp_path / "missing.pem"
    result = resonate("serve", "--api-auth-public-key", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "api.auth.publicKey" in lines[0] and str(missing) in lines[0]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE STUFF-----\nc2VjcmV0LWtleS10ZXh0\n")
    result = resonate("serve", "--api-auth-public-key", str(garbage), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(garbage) in lines[0], result.stderr
    assert "c2VjcmV0" not in result.stderr


async def test_sigterm_under_load_acknowledges_only_committed_writes(server_factory, tmp_path):
    """§12: while draining, answers are 2xx for committed work or 503; the exit is 0."""
    import asyncio

    server = server_factory(tmp_path).start()
    answers: dict[str, int] = {}

    async def writer(client: httpx.AsyncClient, prefix: str) -> None:
        for n in range(10_000):
            pid = f"{prefix}-{n}"
            try:
                response = await client.post("/promises", json={"id": pid, "timeout": 2**62})
            except httpx.HTTPError:
                return
            answers[pid] = response.status_code
            if response.status_code == 503:
                assert response.json()["error"]["code"] == 50300
                return

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        tasks = [asyncio.create_task(writer(client, f"w{i}")) for i in range(8)]
        while len(answers) < 200:
            await asyncio.sleep(0.01)
        exit_code = await asyncio.to_thread(server.terminate)
        await asyncio.gather(*tasks)
    assert exit_code == 0
    assert set(answers.values()) <= {201, 503}
    acknowledged = {pid for pid, status in answers.items() if status == 201}
    with sqlite3.connect(server.db_path) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM promises")}
    assert acknowledged <= stored
