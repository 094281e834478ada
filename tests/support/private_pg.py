"""A private, throw-away PostgreSQL cluster for tests that must stop, restart or disturb the
database (the shared cluster at RESONATE_TEST_POSTGRES_DSN serves tests running in parallel and
must never be restarted).

`initdb` into a fresh temp dir and `pg_ctl start` on a free port, listening on 127.0.0.1 only,
with its unix socket inside the temp dir and trust authentication. initdb and postgres refuse
to run as root, so as root every binary runs as the `postgres` OS user (`runuser`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.servers import free_port

PG_BIN = Path(os.environ.get("RESONATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
START_TIMEOUT = 20  # seconds: pg_ctl -w -t


def missing_binaries() -> str | None:
    """Why a private cluster cannot be started here, or None when it can."""
    absent = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).exists()]
    if absent:
        return (
            f"needs the PostgreSQL server binaries ({', '.join(absent)} not found in {PG_BIN}; "
            "set RESONATE_TEST_PG_BIN to their directory)"
        )
    return None


class PrivatePostgres:
    """One cluster in its own temp dir; `start()`, `stop()`, `restart()`, `destroy()`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="resonate-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(OS_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._initialized = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(
        self, binary: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / binary), *args]
        if self._as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        return subprocess.run(
            command,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _checked(self, binary: str, *args: str, timeout: float = 60) -> None:
        result = self._run(binary, *args, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{binary} {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\n--- postgres log ---\n{self.log()}"
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def init(self) -> None:
        self._checked(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self._initialized = True

    def start(self) -> PrivatePostgres:
        """Start (initdb first if needed); returns once it accepts connections. A port taken
        between free_port() and the first start is retried on another port."""
        if not self._initialized:
            self.init()
            for _ in range(3):
                try:
                    self._start()
                    return self
                except RuntimeError:
                    if "could not bind" not in self.log() and "in use" not in self.log():
                        raise
                    self.port = free_port()
        self._start()
        return self

    def _start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off -c max_connections=50"
        )
        self._checked(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
            timeout=START_TIMEOUT + 10,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait: `fast` ends every session (FATAL 57P01) and checkpoints;
        `immediate` is a crash (recovery from WAL at the next start)."""
        self._checked("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", timeout=60)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self._start()

    def destroy(self) -> None:
        """Teardown: stop whatever runs (no checkpoint), remove the directory."""
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
