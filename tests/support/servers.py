"""Real servers for tests: a `resonate serve` child process, or an in-process Server with a
manual clock. Ports are free random ports; databases live in temp dirs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

STARTUP_DEADLINE = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, deadline: float, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``deadline`` (monotonic) passes."""
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


async def eventually(condition, within: float = 2.0, what: str = "condition") -> None:
    """``wait_until`` for async tests: poll without blocking the event loop, for ``within``
    seconds at most."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class ServerProcess:
    """`python -m resonate serve` on a SQLite file, with free ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_path: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.db_path = db_path or workdir / "resonate.db"
        self.extra_args = extra_args or []
        self.env = env or {}
        self.port = free_port()
        self.metrics_port = free_port()
        self.poll_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def poll_url(self) -> str:
        """The poll (SSE) listener, `aio.poll.addr` (what the SDK calls RESONATE_POLLER)."""
        return f"http://127.0.0.1:{self.poll_port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "resonate",
            "serve",
            "--api-http-addr",
            f"127.0.0.1:{self.port}",
            "--metrics-addr",
            f"127.0.0.1:{self.metrics_port}",
            "--aio-store-sqlite-path",
            str(self.db_path),
            # A free port for the poll listener too, so parallel servers never fight over the
            # default :8002 (unless the caller chose one).
            *(
                []
                if any(a.startswith("--aio-poll-addr") for a in self.extra_args)
                else ["--aio-poll-addr", f"127.0.0.1:{self.poll_port}"]
            ),
            # No gRPC listener (its default :50051 would be shared by parallel servers) unless
            # the caller configures one.
            *(
                []
                if any(a.startswith(("--api-grpc", "--no-api-grpc")) for a in self.extra_args)
                else ["--no-api-grpc-enable"]
            ),
            *self.extra_args,
        ]

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.env}
        env.pop("RESONATE_CONFIG", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + STARTUP_DEADLINE

        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, deadline, what="the server to answer /healthz")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no drain, no checkpoint."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def store_server(
    workdir: Path, store_kind: str, database_name: str, extra_args: list[str] | None = None
) -> Iterator[ServerProcess]:
    """A server of its own on `store_kind`: a SQLite file in `workdir`, or a fresh PostgreSQL
    database (named after `database_name`) dropped afterwards."""
    from tests.support import pg

    dsn = pg.create_database_sync(database_name) if store_kind == "postgres" else None
    args = [*(pg.store_args(dsn) if dsn else []), *(extra_args or [])]
    process = ServerProcess(workdir, extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()
        if dsn:
            pg.drop_database_sync(dsn)
