"""Running the real `resonate` CLI in-process with Typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from resonate.cli.main import app


@dataclass(frozen=True, slots=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


RunCli = Callable[..., CliResult]


def invoke(
    *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
) -> CliResult:
    """`resonate ARGS…`: exit code, stdout and stderr. Unexpected exceptions propagate."""
    result = CliRunner().invoke(app, list(args), input=input, env=env, prog_name="resonate")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)
