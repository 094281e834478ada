"""How the dashboard decodes a value's base64 `data`: JSON, text, binary, invalid base64."""

from __future__ import annotations

import base64

import pytest

from resonate.tui.values import (
    DecodedValue,
    ValueKind,
    decode_base64,
    encode_editor_text,
    hex_dump,
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("data", "kind", "text"),
    [
        (None, ValueKind.EMPTY, ""),
        ("", ValueKind.EMPTY, ""),
        (
            b64(b'{"a":1,"b":[true,null]}'),
            ValueKind.JSON,
            '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ]\n}',
        ),
        (b64(b"42"), ValueKind.JSON, "42"),
        (b64('"héllo"'.encode()), ValueKind.JSON, '"héllo"'),
        (
            b64("plain text, ünïcode\nsecond line".encode()),
            ValueKind.TEXT,
            "plain text, ünïcode\nsecond line",
        ),
        (b64(b"{not json"), ValueKind.TEXT, "{not json"),
    ],
    ids=[
        "absent",
        "empty",
        "json object",
        "json number",
        "json string",
        "text",
        "broken json is text",
    ],
)
def test_decoding(data: str | None, kind: ValueKind, text: str) -> None:
    decoded = decode_base64(data)
    assert decoded.kind is kind
    assert decoded.text == text


def test_binary_is_a_hex_dump() -> None:
    decoded = decode_base64(b64(b"\x00\xffAB\x10" * 4))
    assert decoded.kind is ValueKind.BINARY
    assert decoded.size == 20
    first = decoded.text.splitlines()[0]
    assert first.startswith("00000000  00 ff 41 42 10 00 ff 41")
    assert first.endswith("|..AB...AB...AB..|")


def test_utf8_with_control_characters_is_binary() -> None:
    assert decode_base64(b64(b"abc\x07def")).kind is ValueKind.BINARY


@pytest.mark.parametrize("data", ["not base64!", "YW!j", "abc", 12])
def test_invalid_base64_is_shown_as_it_came_with_the_reason(data: object) -> None:
    decoded = decode_base64(data)
    assert decoded.kind is ValueKind.INVALID
    assert decoded.text == (data if isinstance(data, str) else repr(data))
    assert decoded.note
    assert decoded.summary == "invalid base64"


def test_hex_dump_is_cut_after_the_limit() -> None:
    dump = hex_dump(bytes(100), limit=32)
    lines = dump.splitlines()
    assert len(lines) == 3
    assert lines[-1] == "… 68 more bytes"


def test_summary() -> None:
    assert decode_base64(b64(b'{"a": 1}')).summary == "json, 8 B"
    assert DecodedValue(ValueKind.BINARY, "", 4096).summary == "binary, 4.0 KiB"
    assert decode_base64(None).summary == "empty"


@pytest.mark.parametrize(
    ("text", "as_json", "sent"),
    [
        ('{ "a" : 1 }', True, '{"a":1}'),
        ("", True, ""),
        ("   ", True, ""),
        ("free text", False, "free text"),
        ("{not json", False, "{not json"),
    ],
)
def test_editor_text(text: str, as_json: bool, sent: str) -> None:
    assert encode_editor_text(text, as_json) == sent


def test_editor_refuses_invalid_json() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        encode_editor_text("{not json", as_json=True)
