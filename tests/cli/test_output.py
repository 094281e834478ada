"""Output formats and messages of cli.md §2."""

from __future__ import annotations

import json

import pytest
import yaml

from resonate.cli.output import (
    INT64_MAX,
    PROMISE_VIEW,
    OutputFormat,
    Printer,
    describe_api_error,
    format_relative,
    format_timestamp,
)
from resonate.client import ApiError, encode_value

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z

PROMISE = {
    "id": "orders/42",
    "state": "RESOLVED",
    "param": encode_value("hello", {"content-type": "text/plain"}),
    "value": encode_value(b"\x00\xff"),
    "timeout": NOW + 300_000,
    "idempotencyKeyForCreate": "k1",
    "tags": {"env": "prod", "team": "core"},
    "createdOn": NOW - 180_000,
    "completedOn": NOW - 1_000,
}
PAGE = {"cursor": "next-page", "promises": [PROMISE, {**PROMISE, "id": "orders/43", "tags": {}}]}


@pytest.mark.parametrize(
    ("delta_ms", "text"),
    [
        (300_000, "in 5m"),
        (-180_000, "3m ago"),
        (299_600, "in 5m"),  # rounded to the second first
        (45_000, "in 45s"),
        (5_400_000, "in 1h30m"),
        (-3_600_000, "1h ago"),
        (2 * 86_400_000 + 4 * 3_600_000, "in 2d4h"),
        (400, "now"),
    ],
)
def test_relative_hints(delta_ms: int, text: str) -> None:
    assert format_relative(delta_ms) == text


def test_timestamps_are_utc_iso_with_a_relative_hint() -> None:
    assert format_timestamp(NOW + 300_000, NOW) == "2023-11-14T22:18:20.000Z (in 5m)"
    assert format_timestamp(NOW - 180_123, NOW) == "2023-11-14T22:10:19.877Z (3m ago)"


def test_int64_max_is_never() -> None:
    assert format_timestamp(INT64_MAX, NOW) == "never"


def test_times_beyond_the_calendar_show_the_raw_number() -> None:
    assert format_timestamp(INT64_MAX - 1, NOW) == str(INT64_MAX - 1)


def printer(output: OutputFormat) -> Printer:
    return Printer(output, no_color=True, clock=lambda: NOW)


def test_json_is_the_api_shape_indented(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.json).show_object(PROMISE, PROMISE_VIEW)
    out = capsys.readouterr().out
    assert json.loads(out) == PROMISE
    assert out.startswith('{\n  "id"')


def test_json_search_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.json).show_page(PAGE, PROMISE_VIEW)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == PAGE
    assert captured.err == ""  # the cursor is in the page itself


def test_jsonl_prints_one_compact_object_per_item(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.jsonl).show_page(PAGE, PROMISE_VIEW)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [json.loads(line) for line in lines] == PAGE["promises"]
    assert all(": " not in line for line in lines)
    assert "--cursor next-page" in captured.err


def test_yaml_is_the_json_content(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.yaml).show_page(PAGE, PROMISE_VIEW)
    assert yaml.safe_load(capsys.readouterr().out) == PAGE


def test_id_prints_one_id_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.id).show_page(PAGE, PROMISE_VIEW)
    assert capsys.readouterr().out == "orders/42\norders/43\n"
    printer(OutputFormat.id).show_object(PROMISE, PROMISE_VIEW)
    assert capsys.readouterr().out == "orders/42\n"


def test_table_for_one_object_is_field_and_value(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.table).show_object(PROMISE, PROMISE_VIEW)
    out = capsys.readouterr().out
    assert "orders/42" in out
    assert "2023-11-14T22:18:20.000Z (in 5m)" in out  # timeout
    assert "2023-11-14T22:10:20.000Z (3m ago)" in out  # createdOn
    assert "headers: content-type=text/plain" in out and "data: hello" in out
    assert "data: <2 bytes, base64> AP8=" in out  # binary value
    assert "env=prod" in out and "team=core" in out
    assert "\x1b[" not in out


def test_table_for_a_list_has_the_promise_columns(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.table).show_page(PAGE, PROMISE_VIEW)
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0].split()
    assert header == ["ID", "STATE", "TIMEOUT", "TAGS"]
    assert "orders/43" in captured.out and "env=prod, team=core" in captured.out
    assert "more results: --cursor next-page" in captured.err


def test_table_shows_never_for_int64_max(capsys: pytest.CaptureFixture[str]) -> None:
    printer(OutputFormat.table).show_page(
        {"cursor": None, "promises": [{**PROMISE, "timeout": INT64_MAX}]}, PROMISE_VIEW
    )
    assert "never" in capsys.readouterr().out


def test_notes_and_errors_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output = printer(OutputFormat.table)
    output.note("created")
    output.error("something failed")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "created\nerror: something failed\n"


def test_api_errors_are_one_line_with_status_and_code() -> None:
    body = {
        "error": {
            "code": 40400,
            "message": "The specified promise was not found",
            "details": [
                {"@type": "RequestError", "message": "The specified promise was not found"}
            ],
        }
    }
    error = ApiError(404, 40400, "The specified promise was not found", body)
    assert describe_api_error(error) == (
        "The specified promise was not found (HTTP 404, code 40400)"
    )


def test_api_error_details_that_add_information_are_kept() -> None:
    body = {
        "error": {
            "code": 40000,
            "message": "The request is invalid",
            "details": [{"@type": "FieldValidationError", "message": "The field id is required."}],
        }
    }
    error = ApiError(400, 40000, "The request is invalid", body)
    assert describe_api_error(error) == (
        "The request is invalid: The field id is required. (HTTP 400, code 40000)"
    )


def test_errors_without_a_code_show_only_the_status() -> None:
    assert describe_api_error(ApiError(502, 0, "Bad Gateway", {})) == "Bad Gateway (HTTP 502)"
