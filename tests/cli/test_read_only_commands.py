"""Commands that only read never create a file: `migrate status`, `migrate dry-run` and
`config show` pointed at a SQLite database that does not exist leave the disk as it was
(cli.md §4); `migrate up` is what creates it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_runner import RunCli


def files_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESONATE_CONFIG", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [["migrate", "status"], ["migrate", "dry-run"], ["config", "show"]],
    ids=["migrate status", "migrate dry-run", "config show"],
)
@pytest.mark.parametrize("path", ["new.db", "missing/dir/new.db"], ids=["file", "directory"])
def test_read_only_commands_create_no_database(
    run_cli: RunCli, workdir: Path, command: list[str], path: str
) -> None:
    result = run_cli(*command, "--aio-store-sqlite-path", path)
    assert result.exit_code == 0, result
    assert files_under(workdir) == []


def test_migrate_status_of_a_missing_database_is_version_0_with_everything_pending(
    run_cli: RunCli, workdir: Path
) -> None:
    status = run_cli("migrate", "status", "--aio-store-sqlite-path", "new.db")
    lines = status.stdout.splitlines()
    assert lines[:2] == ["store: sqlite path=new.db", "current version: 0"]
    latest = int(lines[2].removeprefix("latest version: "))
    assert lines[3:] == [line for line in lines[3:] if line.startswith("pending: ")]
    assert len(lines[3:]) == latest > 0
    assert "new.db does not exist; nothing was created" in status.stderr
    dry_run = run_cli("migrate", "dry-run", "--aio-store-sqlite-path", "new.db")
    assert dry_run.stdout.startswith("-- 001_")
    assert dry_run.stdout.count("\n-- 0") == latest - 1


def test_migrate_up_creates_it_and_status_then_leaves_it_alone(
    run_cli: RunCli, workdir: Path
) -> None:
    assert run_cli("migrate", "up", "--aio-store-sqlite-path", "new.db").exit_code == 0
    created = files_under(workdir)
    assert created == ["new.db"]
    status = run_cli("migrate", "status", "--aio-store-sqlite-path", "new.db")
    assert "no pending migrations" in status.stdout
    assert run_cli("migrate", "dry-run", "--aio-store-sqlite-path", "new.db").exit_code == 0
    assert files_under(workdir) == created  # no journal, WAL or shared-memory file left
