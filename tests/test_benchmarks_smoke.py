"""Smoke tests of the benchmarks (benchmarks/promises.py, benchmarks/scale.py,
benchmarks/retention.py): their quick modes run end to end on SQLite and print their tables.
Timings are not checked (a shared CI box makes them meaningless): the benchmarks are scripts,
never timed tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCALE = REPO_ROOT / "benchmarks" / "scale.py"
PROMISES = REPO_ROOT / "benchmarks" / "promises.py"
RETENTION = REPO_ROOT / "benchmarks" / "retention.py"


def test_promises_quick_runs_both_servers_and_prints_the_ratio() -> None:
    command = [sys.executable, str(PROMISES), "--quick", "--connections", "8"]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ours/baseline" in done.stdout, done.stdout
    assert "RUN FLAGGED" not in done.stdout


def test_scale_quick_sqlite_runs_and_prints_its_tables(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(SCALE),
        "--quick",
        "--store",
        "sqlite",
        "--sizes",
        "0,2000",
        "--duration",
        "1",
        "--warmup",
        "0.3",
        "--poll-connections",
        "50",
        "--poll-tasks",
        "20",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "### sqlite (schema v" in out
    assert "| metric | N=0 | N=2,000 |" in out
    for row in (
        "| pairs/s (create+complete) |",
        "| GET /promises/{id} p50 / p99 ms |",
        "| search root=<10 hits> p50 / p99 ms |",
        "| create p50 / p99 ms with concurrent searches |",
        "| server RSS MiB (start / after reads / end) |",
    ):
        assert row in out, out
    assert "Poll (SSE), sqlite, empty database:" in out
    assert "RUN FLAGGED" not in out
    # The seeded databases went to the cache directory given, not to the user's.
    assert list((tmp_path / "cache").glob("sqlite-n2000-v*.db"))


def test_retention_quick_sqlite_runs_and_prints_its_tables(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(RETENTION),
        "--quick",
        "--store",
        "sqlite",
        "--connections",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "### sqlite: purge of 20,000 completed promises under load",
        "| create p99 ms |",
        "| rows purged | 20,000 (seeded rows left: 0) |",
        "### sqlite: size under load with retention 2s",
        "| t s | promises | purged so far |",
        "### sqlite: bytes per promise (20,000 seeded, completed, 2 tags)",
        "| promises |",
        "| (file) |",
    ):
        assert line in out, out
    assert "RUN FLAGGED" not in out
    # The seeded databases went to the cache directory given, not to the user's.
    assert list((tmp_path / "cache").glob("sqlite-p0-n20000-v*.db"))
