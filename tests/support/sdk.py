"""What the end-to-end SDK harnesses share (tests/sdk for resonate-sdk 0.4.12, tests/sdk2026 for
resonate-sdk 0.8.1 and @resonatehq/sdk 0.11.5): the environment of SDK processes, the process
handle, and the records file every SDK application appends its side effects to, one line per
event: ``<event> <key> <os pid> <sdk pid>``."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.servers import wait_until


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05):
    """``wait_until`` with a timeout in seconds instead of a deadline."""
    return wait_until(predicate, time.monotonic() + timeout, interval, what)


def sdk_env(
    *, drop_prefixes: tuple[str, ...] = ("RESONATE_",), python: bool = True
) -> dict[str, str]:
    """The environment of SDK processes: none of our RESONATE_* settings (the SDKs read
    RESONATE_URL, RESONATE_TOKEN, ...), no proxy for the loopback server and, for Python SDKs,
    nothing that could put our package on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    no_proxy = "127.0.0.1,localhost"
    env["NO_PROXY"] = env["no_proxy"] = (
        f"{env['NO_PROXY']},{no_proxy}" if env.get("NO_PROXY") else no_proxy
    )
    if python:
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(key, None)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class Record:
    event: str
    key: str
    os_pid: int
    sdk_pid: str


def read_records(path: Path, event: str | None = None, key: object | None = None) -> list[Record]:
    """The complete lines of the records file, optionally of one event and key."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[2].isdigit():
            continue  # a line being written
        record = Record(parts[0], parts[1], int(parts[2]), parts[3])
        if (event is None or record.event == event) and (key is None or record.key == str(key)):
            out.append(record)
    return out


@dataclass
class SdkProcess:
    """One SDK process a harness started; ``result_path`` is where a client writes its result."""

    name: str
    group: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    result_path: Path | None = None
    sdk_pid: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
