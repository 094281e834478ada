"""Argument values of cli.md §2: durations, `k=v` pairs, `--data` vs `--data-file`."""

from __future__ import annotations

from pathlib import Path

import pytest

from resonate.cli.arguments import parse_duration, parse_key_values, read_data


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("250ms", 250),
        ("30s", 30_000),
        ("1m", 60_000),
        ("1h", 3_600_000),
        ("1h30m", 5_400_000),
        ("2d", 172_800_000),
        ("1m30s250ms", 90_250),
        ("0s", 0),
        (" 5s ", 5_000),
    ],
)
def test_durations_are_parsed_to_milliseconds(text: str, milliseconds: int) -> None:
    assert parse_duration(text) == milliseconds


@pytest.mark.parametrize("text", ["", "30", "5x", "1.5h", "-1s", "m", "1h 30m", "1hour"])
def test_malformed_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        (["a=1"], {"a": "1"}),
        (["url=http://x/?a=b"], {"url": "http://x/?a=b"}),  # split at the first '='
        (["empty="], {"empty": ""}),
        (["a=1", "a=2"], {"a": "2"}),  # the later one wins
        (["resonate:invoke=poll://any@default"], {"resonate:invoke": "poll://any@default"}),
    ],
)
def test_key_values_split_at_the_first_equals_sign(
    pairs: list[str], expected: dict[str, str]
) -> None:
    assert parse_key_values(pairs) == expected


@pytest.mark.parametrize("pair", ["novalue", "=value"])
def test_key_values_need_a_key_and_an_equals_sign(pair: str) -> None:
    with pytest.raises(ValueError, match="k=v"):
        parse_key_values([pair])


def test_data_text_is_utf8() -> None:
    assert read_data("héllo", None) == "héllo".encode()


def test_data_file_is_read_as_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "value.bin"
    path.write_bytes(b"\x00\xff binary")
    assert read_data(None, str(path)) == b"\x00\xff binary"


def test_no_data_is_none() -> None:
    assert read_data(None, None) is None


def test_data_and_data_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exclusive"):
        read_data("text", str(tmp_path / "file"))


def test_missing_data_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_data(None, str(tmp_path / "missing"))
