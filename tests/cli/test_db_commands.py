"""`resonate db backup` and `resonate db vacuum` (docs/cli.md, "resonate db"; docs/operations.md,
"Backups"): an online backup of a running server's SQLite file holds every write acknowledged
before it started; vacuum shrinks a file with deleted rows and refuses a database in use."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from resonate.store.migrations import load_migrations
from tests.cli.cli_runner import RunCli
from tests.support.servers import ServerProcess

FAR = 2**62
ACKNOWLEDGED_BEFORE = 300


def resonate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resonate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("RESONATE_")},
    )


def write(client: httpx.Client, pid: str, number: int) -> str | None:
    """Create `pid` and complete it; the state the server acknowledged, or None."""
    created = client.post("/promises", json={"id": pid, "timeout": FAR, "tags": {"n": pid}})
    if created.status_code != 201:
        return None
    if number % 3 == 0:
        return "PENDING"
    state = ("RESOLVED", "REJECTED")[number % 2]
    data = base64.b64encode(pid.encode()).decode()
    done = client.patch(f"/promises/{pid}", json={"state": state, "value": {"data": data}})
    return state if done.status_code == 201 else "PENDING"


def latest_schema_version() -> int:
    return len(load_migrations("resonate.store.sqlite"))


def test_backup_of_a_running_server_holds_every_write_acknowledged_before_it(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(tmp_path).start()
    acknowledged: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for number in range(ACKNOWLEDGED_BEFORE):
            state = write(client, f"before-{number}", number)
            assert state is not None
            acknowledged[f"before-{number}"] = state

    # Writes go on during the backup: they may or may not be in it, but must not break it.
    stop = threading.Event()
    during: list[str] = []

    def keep_writing() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            number = 0
            while not stop.is_set():
                if write(client, f"during-{number}", number) is not None:
                    during.append(f"during-{number}")
                number += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(during) < 20:  # the writer is busy before the backup starts
            threading.Event().wait(0.01)
        target = tmp_path / "backups" / "resonate.db"
        target.parent.mkdir()
        result = resonate(
            "db", "backup", str(target), "--aio-store-sqlite-path", str(server.db_path),
            cwd=tmp_path,
        )  # fmt: skip
        writes_during_backup = len(during)
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backed up {server.db_path} to {target}: ")
    assert " pages, " in result.stdout and result.stdout.rstrip().endswith(" s")
    assert writes_during_backup > 20
    assert sorted(p.name for p in target.parent.iterdir()) == ["resonate.db"]  # no temp left

    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        version = conn.execute("SELECT max(id) FROM migrations").fetchone()[0]
        assert version == latest_schema_version()
        ids = {row[0] for row in conn.execute("SELECT id FROM promises")}
    assert set(acknowledged) <= ids
    conn.close()

    # And a server started on (a copy of) the backup serves every one with its state.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(target, restored / "resonate.db")
    server.stop()
    copy = server_factory(restored).start()
    with httpx.Client(base_url=copy.url, timeout=30) as client:
        for pid, state in acknowledged.items():
            answer = client.get(f"/promises/{pid}")
            assert answer.status_code == 200, pid
            assert answer.json()["state"] == state, pid


def migrated_database(path: Path, run_cli: RunCli) -> Path:
    assert run_cli("migrate", "up", "--aio-store-sqlite-path", str(path)).exit_code == 0
    return path


def test_backup_refuses_an_existing_path_without_force(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = migrated_database(tmp_path / "resonate.db", run_cli)
    target = tmp_path / "backup.db"
    target.write_bytes(b"precious")

    refused = run_cli("db", "backup", str(target), "--aio-store-sqlite-path", str(source))
    assert refused.exit_code == 1
    assert refused.stderr.strip() == f"error: {target} exists; pass --force to overwrite it"
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "resonate.db"]

    forced = run_cli("db", "backup", "--aio-store-sqlite-path", str(source), str(target), "--force")
    assert forced.exit_code == 0, forced.stderr
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_backup_takes_the_store_from_the_config_file(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = migrated_database(tmp_path / "data.db", run_cli)
    (tmp_path / "r.yml").write_text(f"aio:\n  store:\n    sqlite:\n      path: {source}\n")
    result = run_cli("db", "backup", "-c", "r.yml", "copy.db")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "copy.db").is_file()


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--aio-store-postgres-enable"], 2, "SQLite stores only; back up PostgreSQL with pg_dump"),
        (["--aio-store-sqlite-path", "missing.db"], 1, "error: no SQLite database at missing.db"),
        (["--no-such-flag"], 2, "error: unknown flag --no-such-flag"),
    ],
    ids=["postgres", "missing database", "bad flag"],
)  # fmt: skip
def test_backup_errors_are_one_line_with_their_exit_code(
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    exit_code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("db", "backup", "out.db", *args)
    assert result.exit_code == exit_code
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out.db").exists()
    assert not (tmp_path / "missing.db").exists()  # nothing is created


def test_backup_requires_one_path(run_cli: RunCli, tmp_path: Path) -> None:
    source = migrated_database(tmp_path / "resonate.db", run_cli)
    missing = run_cli("db", "backup", "--aio-store-sqlite-path", str(source))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: missing PATH; usage: resonate db backup PATH")
    extra = run_cli("db", "backup", "a.db", "b.db", "--aio-store-sqlite-path", str(source))
    assert extra.exit_code == 2
    assert "unexpected argument 'b.db'" in extra.stderr


def test_postgres_vacuum_points_elsewhere_too(run_cli: RunCli) -> None:
    result = run_cli("db", "vacuum", "--aio-store-postgres-enable")
    assert result.exit_code == 2
    assert "resonate db vacuum works on SQLite stores only" in result.stderr


# --- vacuum -------------------------------------------------------------------------------------


def test_vacuum_shrinks_a_file_with_deleted_rows(run_cli: RunCli, tmp_path: Path) -> None:
    path = migrated_database(tmp_path / "resonate.db", run_cli)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO promises (id, state, param_data, timeout) VALUES (?, 1, ?, ?)",
            ((f"p{n}", b"x" * 4000, FAR) for n in range(2000)),
        )
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM promises")
    conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = path.stat().st_size

    result = run_cli("db", "vacuum", "--aio-store-sqlite-path", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"vacuumed {path}: ")
    after = path.stat().st_size
    assert after < before / 10
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT max(id) FROM migrations").fetchone()[0] == (
            latest_schema_version()
        )
    conn.close()


def test_vacuum_refuses_while_a_server_has_the_database_open(
    server_factory: type[ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(tmp_path).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert write(client, "kept", 1) == "REJECTED"
    size = server.db_path.stat().st_size

    result = resonate("db", "vacuum", "--aio-store-sqlite-path", str(server.db_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {server.db_path} is in use (a running server?); stop it and run vacuum again"
    )
    assert result.stdout == ""
    assert server.db_path.stat().st_size == size

    # The server did not notice: it writes and reads as before.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert write(client, "after", 2) == "RESOLVED"
        assert client.get("/promises/kept").json()["state"] == "REJECTED"

    # Stopped, the same database vacuums.
    assert server.terminate() == 0
    done = resonate("db", "vacuum", "--aio-store-sqlite-path", str(server.db_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_backup_copies_the_snapshot_of_its_start_in_steps_despite_writes_between_them(
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Writes made by another connection between two steps neither restart the copy (it
    would never end under a busy server) nor end up in it; progress goes to stderr."""
    from resonate.cli import db_cmds

    path = migrated_database(tmp_path / "resonate.db", run_cli)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.executemany(
        "INSERT INTO promises (id, state, param_data, timeout) VALUES (?, 1, ?, ?)",
        ((f"old{n}", b"x" * 2000, FAR) for n in range(200)),
    )
    monkeypatch.setattr(db_cmds, "BACKUP_STEP_PAGES", 5)
    monkeypatch.setattr(db_cmds, "PROGRESS_MIN_PAGES", 0)
    monkeypatch.setattr(db_cmds, "PROGRESS_INTERVAL", 0.0)
    steps = [0]
    original = db_cmds._Progress.__call__

    def progress(self: object, status: int, remaining: int, total: int) -> None:
        steps[0] += 1
        writer.execute(
            "INSERT INTO promises (id, state, timeout) VALUES (?, 1, ?)", (f"new{steps[0]}", FAR)
        )
        original(self, status, remaining, total)  # type: ignore[arg-type]

    monkeypatch.setattr(db_cmds._Progress, "__call__", progress)
    target = tmp_path / "copy.db"
    pages, _ = db_cmds.backup(path, target)
    writer.close()

    assert steps[0] > 10  # copied in many steps, and not restarted for ever
    assert "backup: " in capsys.readouterr().err
    with sqlite3.connect(target) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM promises")}
        assert conn.execute("PRAGMA page_count").fetchone()[0] == pages
    conn.close()
    assert ids == {f"old{n}" for n in range(200)}
