"""Exit codes of the CLI (cli.md §3) and the one table that maps failures to them.

130 and 141 are what a shell reports for a process ended by SIGINT or SIGPIPE (128 + signal):
the CLI exits with them on Ctrl-C and when the reader of its output went away (`| head -1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIRMATION_REQUIRED = 3
    NOT_FOUND = 4
    UNREACHABLE = 5
    UNAUTHORIZED = 6
    CONFLICT = 7
    SERVER_ERROR = 8
    NOT_RESOLVED = 9  # --wait: the promise completed REJECTED, REJECTED_CANCELED or _TIMEDOUT
    STILL_PENDING = 10  # --wait: its own timeout passed first; the promise goes on
    INTERRUPTED = 130
    BROKEN_PIPE = 141


class CliError(Exception):
    """A failure detected by the CLI itself, with the exit code it ends the process with."""

    exit_code = ExitCode.ERROR


class ConfirmationRequired(CliError):
    exit_code = ExitCode.CONFIRMATION_REQUIRED


class Aborted(CliError):
    """The user answered no to a confirmation prompt."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True, slots=True)
class ApiErrorRule:
    """Matches an API error by HTTP status range and, optionally, by error code range."""

    statuses: range
    codes: range | None = None

    def matches(self, status: int, code: int) -> bool:
        return status in self.statuses and (self.codes is None or code in self.codes)


def _status(status: int) -> range:
    return range(status, status + 1)


# First matching rule wins; an API error that matches none exits with ExitCode.ERROR.
API_ERROR_EXIT_CODES: tuple[tuple[ApiErrorRule, ExitCode], ...] = (
    (ApiErrorRule(_status(400)), ExitCode.USAGE),
    (ApiErrorRule(_status(413)), ExitCode.USAGE),
    (ApiErrorRule(_status(404)), ExitCode.NOT_FOUND),
    (ApiErrorRule(_status(401)), ExitCode.UNAUTHORIZED),
    (ApiErrorRule(_status(403), codes=range(40300, 40301)), ExitCode.UNAUTHORIZED),
    (ApiErrorRule(_status(403), codes=range(40301, 40310)), ExitCode.CONFLICT),
    (ApiErrorRule(_status(409)), ExitCode.CONFLICT),
    (ApiErrorRule(_status(412)), ExitCode.CONFLICT),
    (ApiErrorRule(range(500, 600)), ExitCode.SERVER_ERROR),
)


def exit_code_for_api_error(status: int, code: int) -> ExitCode:
    for rule, exit_code in API_ERROR_EXIT_CODES:
        if rule.matches(status, code):
            return exit_code
    return ExitCode.ERROR


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for any failure a command can end with."""
    # Imported here: resonate.client pulls in httpx, which `resonate --help` must not pay for.
    from resonate.client import ApiError, ServerUnreachable

    if isinstance(error, ApiError):
        return exit_code_for_api_error(error.status, error.code)
    if isinstance(error, ServerUnreachable):
        return ExitCode.UNREACHABLE
    if isinstance(error, CliError):
        return error.exit_code
    return ExitCode.ERROR
