"""The exit-code table of cli.md §3."""

from __future__ import annotations

import pytest

from resonate.cli.errors import (
    Aborted,
    ConfirmationRequired,
    ExitCode,
    exit_code_for,
    exit_code_for_api_error,
)
from resonate.client import ApiError, ServerUnreachable, UnexpectedResponse


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "rule"),
    [
        (400, 40000, 2, "a server 400 is a usage error"),
        (413, 41300, 2, "a server 413 is a usage error"),
        (401, 40100, 6, "401 is unauthorized"),
        (403, 40300, 6, "403 with code 40300 is unauthorized"),
        (403, 40301, 7, "403 already resolved is a state conflict"),
        (403, 40304, 7, "403 already timed out is a state conflict"),
        (403, 40309, 7, "403 task invalid state is a state conflict"),
        (404, 40400, 4, "404 promise not found"),
        (404, 40405, 4, "404 route not found"),
        (409, 40900, 7, "409 already exists is a conflict"),
        (412, 41200, 7, "412 precondition failed is a conflict"),
        (500, 50000, 8, "5xx is a server error"),
        (503, 50304, 8, "503 not ready is a server error"),
        (502, 0, 8, "a proxy's 502 without an error body is a server error"),
        (405, 40500, 1, "405 is any other error"),
        (403, 0, 1, "403 without a known code is any other error"),
        (418, 0, 1, "an unknown status is any other error"),
    ],
)
def test_api_errors_map_to_exit_codes(status: int, code: int, exit_code: int, rule: str) -> None:
    assert exit_code_for_api_error(status, code) == exit_code, rule
    assert exit_code_for(ApiError(status, code, "message", {})) == exit_code, rule


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (ServerUnreachable("http://localhost:8001", "refused"), ExitCode.UNREACHABLE),
        (ConfirmationRequired("pass --yes"), ExitCode.CONFIRMATION_REQUIRED),
        (Aborted("aborted"), ExitCode.ERROR),
        (UnexpectedResponse(200, "not JSON"), ExitCode.ERROR),
        (FileNotFoundError(2, "No such file", "x"), ExitCode.ERROR),
    ],
)
def test_other_failures_map_to_exit_codes(error: BaseException, exit_code: ExitCode) -> None:
    assert exit_code_for(error) == exit_code


def test_exit_code_values_are_the_documented_ones() -> None:
    assert [(code.name, code.value) for code in ExitCode] == [
        ("OK", 0),
        ("ERROR", 1),
        ("USAGE", 2),
        ("CONFIRMATION_REQUIRED", 3),
        ("NOT_FOUND", 4),
        ("UNREACHABLE", 5),
        ("UNAUTHORIZED", 6),
        ("CONFLICT", 7),
        ("SERVER_ERROR", 8),
        ("NOT_RESOLVED", 9),
        ("STILL_PENDING", 10),
        ("INTERRUPTED", 130),
        ("BROKEN_PIPE", 141),
    ]
