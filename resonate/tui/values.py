"""How the dashboard shows a promise value's `data`: the API carries it as base64.

Decoded, the bytes are shown as pretty-printed JSON when they parse as JSON, as text when they
are printable UTF-8, and as a hex dump otherwise; data that is not valid base64 is shown as it
came, with the reason. Pure functions, so the rules are unit-tested without a terminal.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# A hex dump longer than this is cut: the detail view is for looking, not for exporting.
HEX_DUMP_LIMIT = 4096
_BYTES_PER_LINE = 16


class ValueKind(StrEnum):
    EMPTY = "empty"
    JSON = "json"
    TEXT = "text"
    BINARY = "binary"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class DecodedValue:
    kind: ValueKind
    text: str  # pretty JSON, the text, a hex dump, or the undecodable input
    size: int  # bytes after decoding (for INVALID: characters of the input)
    note: str = ""  # why the input is INVALID

    @property
    def summary(self) -> str:
        """One line for tables: `json, 42 B` / `binary, 3 B` / `invalid base64`."""
        if self.kind is ValueKind.EMPTY:
            return "empty"
        if self.kind is ValueKind.INVALID:
            return "invalid base64"
        return f"{self.kind.value}, {format_size(self.size)}"


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def decode_base64(data: Any) -> DecodedValue:
    """Decode an API value's `data` member (None or "" when the value has no data)."""
    if data is None or data == "":
        return DecodedValue(ValueKind.EMPTY, "", 0)
    if not isinstance(data, str):
        return DecodedValue(ValueKind.INVALID, repr(data), 0, "data is not a string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        return DecodedValue(ValueKind.INVALID, data, len(data), f"not valid base64: {error}")
    return decode_bytes(raw)


def decode_bytes(raw: bytes) -> DecodedValue:
    if not raw:
        return DecodedValue(ValueKind.EMPTY, "", 0)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return DecodedValue(ValueKind.BINARY, hex_dump(raw), len(raw))
    try:
        document = json.loads(text)
    except ValueError:
        document = _NOT_JSON
    if document is not _NOT_JSON:
        pretty = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)
        return DecodedValue(ValueKind.JSON, pretty, len(raw))
    if _printable(text):
        return DecodedValue(ValueKind.TEXT, text, len(raw))
    return DecodedValue(ValueKind.BINARY, hex_dump(raw), len(raw))


_NOT_JSON = object()


def _printable(text: str) -> bool:
    return all(character.isprintable() or character in "\n\r\t" for character in text)


def hex_dump(raw: bytes, limit: int = HEX_DUMP_LIMIT) -> str:
    """`offset  hex bytes  |ascii|` lines, 16 bytes each; cut after `limit` bytes."""
    lines = []
    for offset in range(0, min(len(raw), limit), _BYTES_PER_LINE):
        chunk = raw[offset : offset + _BYTES_PER_LINE]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        ascii_part = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hex_part:<{_BYTES_PER_LINE * 3 - 1}}  |{ascii_part}|")
    if len(raw) > limit:
        lines.append(f"… {len(raw) - limit} more bytes")
    return "\n".join(lines)


def encode_editor_text(text: str, as_json: bool) -> str:
    """The text a user typed in the value editor, checked: JSON mode must parse.

    Returns the text to send (JSON is sent compact; nothing typed means no data); raises
    ValueError with a message.
    """
    if not as_json or not text.strip():
        return text if text.strip() else ""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"invalid JSON: {error}") from None
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
