"""Declarative request schemas: one definition validates bodies and describes them in OpenAPI.

A schema is a tuple of fields; ``validate`` turns a parsed JSON body into typed Python values
(raising a 400 that names the field), and ``to_openapi`` renders the same fields as an OpenAPI
3.1 schema, so the document the server publishes cannot drift from what it accepts.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from resonate.core.clock import INT64_MAX, INT64_MIN
from resonate.core.errors import invalid
from resonate.core.promise import Value

MAX_ID_BYTES = 1024


class Kind(enum.Enum):
    ID = "id"  # non-empty string, at most 1024 UTF-8 bytes
    STRING = "string"
    INT64 = "int64"
    VALUE = "value"  # {"headers": {str: str}, "data": base64}
    TAGS = "tags"  # {str: str}
    ENUM = "enum"  # case-insensitive string, normalised to upper case
    OBJECT = "object"
    RECV = "recv"  # a non-empty logical recv string, or {"type": non-empty string, "data": any}
    BOOL = "bool"  # true or false, nothing else
    ENUM_LIST = "enum_list"  # a list of ENUM strings, normalised to upper case


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    fields: tuple[Field, ...] = ()  # for OBJECT
    aliases: tuple[str, ...] = ()  # accepted alternative keys (D15 exception)


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    fields: tuple[Field, ...]


def check_string(name: str, value: Any) -> str:
    """A valid Unicode string without U+0000 (http-api.md §1.3)."""
    if not isinstance(value, str):
        raise invalid(name, f"The field {name} must be a string.")
    if "\x00" in value:
        raise invalid(name, f"The field {name} must not contain U+0000.")
    if not value.isascii():  # ASCII (most strings; a flag lookup) is valid Unicode
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(name, f"The field {name} must be valid Unicode.") from None
    return value


def check_id(name: str, value: Any) -> str:
    text = check_string(name, value)
    if not text:
        raise invalid(name, f"The field {name} is required.")
    if len(text) > MAX_ID_BYTES // 4 and len(text.encode("utf-8")) > MAX_ID_BYTES:
        raise invalid(name, f"The field {name} must be at most {MAX_ID_BYTES} bytes.")
    return text


def check_int64(name: str, value: Any) -> int:
    # bool is an int subclass in Python and must be refused explicitly.
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"The field {name} must be an integer.")
    if not INT64_MIN <= value <= INT64_MAX:
        raise invalid(name, f"The field {name} must be a 64-bit integer.")
    return value


def check_string_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(name, f"The field {name} must be an object of strings.")
    for key, item in value.items():
        check_string(name, key)
        if not isinstance(item, str):
            raise invalid(name, f"The field {name} must be an object of strings.")
        check_string(name, item)
    return value


def decode_base64(name: str, text: Any) -> bytes | None:
    """Standard, padded base64 only (RFC 4648 §4); URL-safe or unpadded input is refused."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise invalid(name, f"The field {name} must be a base64 string.")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise invalid(name, f"The field {name} must be standard base64 with padding.") from None
    return raw or None


def check_recv(name: str, value: Any) -> Any:
    """A logical recv (non-empty string) or a physical one ({"type": str, "data": any})."""
    if isinstance(value, str) and value:
        return check_string(name, value)
    if isinstance(value, dict) and isinstance(value.get("type"), str) and value["type"]:
        return value
    raise invalid(
        name, f'The field {name} must be a non-empty string or an object {{"type", "data"}}.'
    )


def check_value(name: str, value: Any) -> Value:
    if value is None:
        return Value()
    if not isinstance(value, dict):
        raise invalid(name, f"The field {name} must be an object.")
    names = _VALUE_PART_NAMES.get(name)
    if names is None:
        names = _VALUE_PART_NAMES[name] = (f"{name}.headers", f"{name}.data")
    headers = check_string_map(names[0], value.get("headers"))
    data = decode_base64(names[1], value.get("data"))
    return Value(headers or None, data)


# The field paths of a value's parts, per value field ("param" -> "param.headers", ...):
# worked out once instead of twice per request.
_VALUE_PART_NAMES: dict[str, tuple[str, str]] = {}


def check_enum(spec: Field, name: str, value: Any) -> str:
    """One of ``spec.choices``, any case, in upper case."""
    text = check_string(name, value)
    if text.lower() not in spec.choices:
        allowed = ", ".join(spec.choices)
        raise invalid(name, f"The field {name} must be one of {allowed}.")
    return text.upper()


def _check_int64_field(spec: Field, name: str, value: Any) -> int:
    number = check_int64(name, value)
    if spec.minimum is not None and number < spec.minimum:
        raise invalid(name, f"The field {name} must be >= {spec.minimum}.")
    if spec.maximum is not None and number > spec.maximum:
        raise invalid(name, f"The field {name} must be <= {spec.maximum}.")
    return number


def _check_enum_list(spec: Field, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise invalid(name, f"The field {name} must be a list.")
    return tuple(check_enum(spec, name, item) for item in value)


def _check_bool(spec: Field, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, f"The field {name} must be true or false.")
    return value


def _check_object(spec: Field, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name, f"The field {name} must be an object.")
    return validate_fields(spec.fields, value, prefix=f"{name}.")


# The check of each kind: ``check(spec, name, value)``, ``name`` being the field's full path
# for messages. A table rather than a match statement: one lookup per field instead of a
# comparison per kind tried.
_CHECKS: dict[Kind, Callable[[Field, str, Any], Any]] = {
    Kind.ID: lambda spec, name, value: check_id(name, value),
    Kind.STRING: lambda spec, name, value: check_string(name, value),
    Kind.INT64: _check_int64_field,
    Kind.VALUE: lambda spec, name, value: check_value(name, value),
    Kind.TAGS: lambda spec, name, value: check_string_map(name, value),
    Kind.ENUM: check_enum,
    Kind.ENUM_LIST: _check_enum_list,
    Kind.BOOL: _check_bool,
    Kind.OBJECT: _check_object,
    Kind.RECV: lambda spec, name, value: check_recv(name, value),
}


# What an absent or null optional field means (http-api.md §1.3: null = left out = empty).
_EMPTY: dict[Kind, Any] = {Kind.VALUE: Value(), Kind.TAGS: {}}


def validate_fields(
    fields: tuple[Field, ...], body: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in fields:
        raw = body.get(spec.name)
        for alias in spec.aliases:
            if raw is None:
                raw = body.get(alias)
        if raw is None:
            if spec.required:
                name = prefix + spec.name
                raise invalid(name, f"The field {name} is required.")
            out[spec.name] = _EMPTY.get(spec.kind)
            continue
        out[spec.name] = _CHECKS[spec.kind](spec, prefix + spec.name if prefix else spec.name, raw)
    return out


def validate(schema: Schema, body: Any) -> dict[str, Any]:
    """Typed values of ``body``; absent optional fields are ``None``. Raises a 400."""
    if not isinstance(body, dict):
        raise invalid("body", "The request body must be a JSON object.")
    return validate_fields(schema.fields, body)


# ---- OpenAPI rendering -------------------------------------------------------------------

VALUE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "data": {"type": ["string", "null"], "contentEncoding": "base64"},
    },
}


def field_to_openapi(spec: Field) -> dict[str, Any]:
    match spec.kind:
        case Kind.ID:
            out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_ID_BYTES}
        case Kind.STRING:
            out = {"type": "string"}
        case Kind.INT64:
            out = {"type": "integer", "format": "int64"}
            if spec.minimum is not None:
                out["minimum"] = spec.minimum
            if spec.maximum is not None:
                out["maximum"] = spec.maximum
        case Kind.VALUE:
            out = dict(VALUE_SCHEMA)
        case Kind.TAGS:
            out = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
        case Kind.ENUM:
            choices = [c.upper() for c in spec.choices]
            out = {"type": "string", "enum": choices + [c.lower() for c in spec.choices]}
        case Kind.ENUM_LIST:
            choices = [c.upper() for c in spec.choices]
            items = {"type": "string", "enum": choices + [c.lower() for c in spec.choices]}
            out = {"type": "array", "items": items}
        case Kind.BOOL:
            out = {"type": "boolean"}
        case Kind.OBJECT:
            out = fields_to_openapi(spec.fields)
        case Kind.RECV:
            out = {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string", "minLength": 1}, "data": {}},
                    },
                ]
            }
    if spec.description:
        out["description"] = spec.description
    return out


def fields_to_openapi(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {spec.name: field_to_openapi(spec) for spec in fields},
        "required": [spec.name for spec in fields if spec.required],
        "additionalProperties": True,
    }


def to_openapi(schema: Schema) -> dict[str, Any]:
    return fields_to_openapi(schema.fields)
