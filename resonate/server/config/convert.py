"""Turning what a source holds into an option's typed value, and back for display.

A YAML file holds typed values (``true``, ``5432``, lists, mappings) or strings; flags and
environment variables hold text. Both end up as the typed value of config.md §2, or as a
``ValueError`` whose message the caller prefixes with the source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from resonate.server.config.options import EnumCase, Option, OptionType
from resonate.server.config.values import (
    Address,
    format_address,
    format_duration,
    format_query,
    format_size,
    parse_address,
    parse_bool,
    parse_duration,
    parse_int,
    parse_query,
    parse_retention,
    parse_size,
    parse_string_list,
    parse_string_map,
    retention_state,
)

MASK = "***"

# Options that hold either a file path (not secret, shown) or inline PEM text (masked).
_PATH_OR_PEM_KEYS = frozenset({"api.auth.publicKey"})

_ROUTER_SOURCES = "aio.router.sources"


def from_file(option: Option, value: object) -> Any:
    """The typed value of ``value`` read from YAML; raises ``ValueError``."""
    kind = option.type
    if isinstance(value, str) and kind not in (OptionType.STRING, OptionType.OBJECT_LIST):
        return from_text(option, [value])
    if kind is OptionType.BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {_describe(value)}")
    if kind is OptionType.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_range(option, value)
        raise ValueError(f"expected an integer, got {_describe(value)}")
    if kind is OptionType.STRING:
        return _scalar_text(value, what="a string")
    if kind is OptionType.DURATION:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_range(option, parse_duration(str(value)))
        raise ValueError(f"expected a duration such as 10s, got {_describe(value)}")
    if kind is OptionType.SIZE:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_range(option, value)
        raise ValueError(f"expected a size such as 10MiB, got {_describe(value)}")
    if kind is OptionType.ADDRESS:
        raise ValueError(f"expected host:port (quote it in YAML), got {_describe(value)}")
    if kind is OptionType.ENUM:
        raise ValueError(f"expected one of {', '.join(option.choices)}, got {_describe(value)}")
    if kind is OptionType.STRING_LIST:
        if isinstance(value, list):
            return tuple(_scalar_text(item, what="a string item") for item in value)
        raise ValueError(f"expected a list of strings, got {_describe(value)}")
    if kind in (OptionType.STRING_MAP, OptionType.QUERY):
        if isinstance(value, Mapping):
            return {
                _scalar_text(key, what="a string key"): _scalar_text(item, what="a string value")
                for key, item in value.items()
            }
        raise ValueError(f"expected a mapping of strings, got {_describe(value)}")
    if kind is OptionType.OBJECT_LIST:
        if isinstance(value, list):
            return _check_objects(option, value)
        raise ValueError(f"expected a list of objects, got {_describe(value)}")
    if kind is OptionType.RETENTION:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_range(option, parse_duration(str(value)))
        if isinstance(value, Mapping):
            return _retention_map(option, value)
        raise ValueError(
            "expected a duration such as 720h or a mapping of states to durations, "
            f"got {_describe(value)}"
        )
    raise AssertionError(f"unhandled option type {kind}")  # pragma: no cover


def from_text(option: Option, texts: Sequence[str]) -> Any:
    """The typed value of one or more texts (a repeated flag gives several).

    List, map and object-list texts are combined in order; for other types the last one wins.
    """
    kind = option.type
    if kind is OptionType.STRING_LIST:
        return tuple(item for text in texts for item in parse_string_list(text))
    if kind is OptionType.STRING_MAP:
        merged: dict[str, str] = {}
        for text in texts:
            merged.update(parse_string_map(text))
        return merged
    if kind is OptionType.RETENTION:
        # A duration replaces what came before it; state=duration pairs add to a map.
        retention: int | dict[str, int] = 0
        for text in texts:
            parsed = parse_retention(text)
            if isinstance(parsed, int):
                retention = _check_range(option, parsed)
            else:
                per_state = dict(retention) if isinstance(retention, dict) else {}
                per_state.update(parsed)
                retention = {state: _check_range(option, ms) for state, ms in per_state.items()}
        return retention
    if kind is OptionType.OBJECT_LIST:
        objects: list[object] = []
        for text in texts:
            if text.strip():  # an empty text is an empty list, as for other lists
                objects.extend(_json_objects(text))
        return _check_objects(option, objects)
    text = texts[-1]
    if kind is OptionType.BOOL:
        return parse_bool(text)
    if kind is OptionType.INT:
        return _check_range(option, parse_int(text))
    if kind is OptionType.STRING:
        return text
    if kind is OptionType.ENUM:
        return _enum(option, text)
    if kind is OptionType.DURATION:
        return _check_range(option, parse_duration(text))
    if kind is OptionType.SIZE:
        return _check_range(option, parse_size(text))
    if kind is OptionType.ADDRESS:
        return parse_address(text)
    if kind is OptionType.QUERY:
        return parse_query(text)
    raise AssertionError(f"unhandled option type {kind}")  # pragma: no cover


def copy_value(value: Any) -> Any:
    """A fresh copy of a typed value, so no two configs share a mutable dict or list."""
    if isinstance(value, dict):
        return {key: copy_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_value(item) for item in value]
    return value


def to_display(option: Option, value: Any, *, mask: bool = True) -> Any:
    """The value in configuration-file syntax (YAML/JSON-able), secrets masked when ``mask``."""
    kind = option.type
    if kind is OptionType.DURATION:
        return 0 if value == 0 else format_duration(value)
    if kind is OptionType.SIZE:
        return format_size(value)
    if kind is OptionType.ADDRESS:
        assert isinstance(value, Address)
        return format_address(value)
    if kind is OptionType.STRING_LIST:
        return list(value)
    if kind is OptionType.STRING_MAP:
        if mask and option.secret:
            return {key: MASK for key in value}
        return dict(value)
    if kind is OptionType.QUERY:
        return format_query(value)
    if kind is OptionType.OBJECT_LIST:
        return copy_value(value)
    if kind is OptionType.RETENTION:
        if isinstance(value, dict):
            return {state: 0 if ms == 0 else format_duration(ms) for state, ms in value.items()}
        return 0 if value == 0 else format_duration(value)
    if kind is OptionType.STRING and mask and option.secret and value:
        if option.key in _PATH_OR_PEM_KEYS and "-----BEGIN" not in value:
            return value
        return MASK
    return value


def default_text(option: Option) -> str:
    """The default as a user would type it, for help text: ``10s``, ``0.0.0.0:8001``, ``empty``."""
    shown = to_display(option, option.default, mask=False)
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if shown in ("", [], {}):
        return "empty"
    return str(shown)


def _enum(option: Option, text: str) -> str:
    word = text.strip().lower()
    word = option.aliases.get(word, word)
    for choice in option.choices:
        if choice.lower() == word:
            return choice.upper() if option.enum_case is EnumCase.UPPER else choice.lower()
    raise ValueError(f"invalid value {text!r} (one of {', '.join(option.choices)})")


def _check_range(option: Option, number: int) -> int:
    if option.minimum is not None and number < option.minimum:
        raise ValueError(
            f"{_show(option, number)} is below the minimum {_show(option, option.minimum)}"
        )
    if option.maximum is not None and number > option.maximum:
        raise ValueError(
            f"{_show(option, number)} is above the maximum {_show(option, option.maximum)}"
        )
    if number < 0:
        raise ValueError(f"{_show(option, number)} is negative")
    return number


def _show(option: Option, number: int) -> str:
    if option.type is OptionType.DURATION:
        return format_duration(number) if number >= 0 else str(number)
    return str(number)


def _retention_map(option: Option, value: Mapping[Any, Any]) -> dict[str, int]:
    """A per-state retention from YAML: ``{resolved: 168h, rejected: 720h}``."""
    result: dict[str, int] = {}
    for key, item in value.items():
        state = retention_state(_scalar_text(key, what="a state name"))
        if state in result:
            raise ValueError(f"state {state!r} is given twice in a retention map")
        if isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool)):
            try:
                result[state] = _check_range(option, parse_duration(str(item)))
            except ValueError as error:
                raise ValueError(f"{state}: {error}") from None
        else:
            raise ValueError(f"{state}: expected a duration such as 720h, got {_describe(item)}")
    return result


def _scalar_text(value: object, *, what: str) -> str:
    """Scalars become text (``5432`` -> ``"5432"``, ``true`` -> ``"true"``); others are wrong."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"expected {what}, got {_describe(value)}")


def _json_objects(text: str) -> list[object]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at column {error.colno})") from error
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        return list(parsed)
    raise ValueError("expected a JSON array of objects")


def _check_objects(option: Option, items: Sequence[object]) -> list[dict[str, Any]]:
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"item {index}: expected an object, got {_describe(item)}")
        entry = {str(key): copy_value(_plain(value)) for key, value in item.items()}
        extra = sorted(set(entry) - {"name", "type", "data"})
        if extra:
            raise ValueError(f"item {index}: unknown field {extra[0]!r} (fields: name, type, data)")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"item {index}: 'name' must be a non-empty string")
        item_type = entry.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise ValueError(f"item {index} ({name}): 'type' must be a non-empty string")
        data = entry.get("data")
        if not isinstance(data, dict):
            raise ValueError(f"item {index} ({name}): 'data' must be an object")
        if option.key == _ROUTER_SOURCES:
            if item_type != "tag":
                raise ValueError(f"item {index} ({name}): type {item_type!r} (only 'tag' exists)")
            tag = data.get("key")
            if not isinstance(tag, str) or not tag or set(data) != {"key"}:
                raise ValueError(f"item {index} ({name}): 'data' must be {{\"key\": <tag name>}}")
        checked.append(entry)
    return checked


def _plain(value: object) -> object:
    """YAML mappings and sequences as plain dicts and lists with string keys."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the bool {'true' if value else 'false'}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return f"{type(value).__name__} {value!r}"


__all__ = [
    "MASK",
    "copy_value",
    "default_text",
    "from_file",
    "from_text",
    "to_display",
]
