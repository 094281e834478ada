"""Command-line flags: ``--config``/``-c`` and one flag per option (``--no-x`` for bools)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from resonate.server.config.errors import ConfigError
from resonate.server.config.options import (
    CONFIG_FLAG,
    CONFIG_SHORT_FLAG,
    OPTIONS,
    OPTIONS_BY_FLAG,
    Option,
    OptionType,
    all_flags,
    negated_flag,
)

_NEGATED: dict[str, Option] = {
    negated_flag(option): option for option in OPTIONS if option.type is OptionType.BOOL
}


@dataclass(frozen=True, slots=True)
class FlagValue:
    """The texts given for one option, in order, and the last flag spelling used."""

    flag: str
    texts: tuple[str, ...]


@dataclass(slots=True)
class ParsedFlags:
    config: str | None = None
    config_flag: str = CONFIG_FLAG
    values: dict[str, FlagValue] = field(default_factory=dict)


def parse_flags(args: Sequence[str]) -> ParsedFlags:
    """Split raw arguments into the config file and per-option texts.

    A value follows its flag as the next argument or after ``=``; a bool flag takes none
    (``--x`` is true, ``--no-x`` false; ``--x=false`` is also accepted).
    """
    parsed = ParsedFlags()
    index = 0
    while index < len(args):
        argument = args[index]
        index += 1
        name, equals, inline = argument.partition("=")
        if name in (CONFIG_FLAG, CONFIG_SHORT_FLAG):
            if equals:
                parsed.config = inline
            elif index < len(args):
                parsed.config = args[index]
                index += 1
            else:
                raise ConfigError(f"{name}: missing value (a config file path)")
            parsed.config_flag = name
            continue
        if argument.startswith(CONFIG_SHORT_FLAG) and not argument.startswith("--"):
            parsed.config, parsed.config_flag = argument[2:], CONFIG_SHORT_FLAG
            continue
        if argument == "--" or not argument.startswith("-") or argument == "-":
            raise ConfigError(f"unexpected argument {argument!r}")
        option = OPTIONS_BY_FLAG.get(name)
        if option is None:
            negated = _NEGATED.get(name)
            if negated is None:
                raise ConfigError(_unknown_flag_message(name))
            if equals:
                raise ConfigError(f"{name}: takes no value (use {negated.flag}={inline})")
            _add(parsed, negated, name, "false")
            continue
        if option.type is OptionType.BOOL:
            _add(parsed, option, name, inline if equals else "true")
        elif equals:
            _add(parsed, option, name, inline)
        elif index < len(args):
            _add(parsed, option, name, args[index])
            index += 1
        else:
            raise ConfigError(f"{name}: missing value")
    if parsed.config == "":
        raise ConfigError(f"{parsed.config_flag}: missing value (a config file path)")
    return parsed


def _add(parsed: ParsedFlags, option: Option, flag: str, text: str) -> None:
    previous = parsed.values.get(option.key)
    texts = (*previous.texts, text) if previous else (text,)
    parsed.values[option.key] = FlagValue(flag, texts)


def _unknown_flag_message(flag: str) -> str:
    close = difflib.get_close_matches(flag, all_flags(), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else " (see resonate serve --help)"
    return f"unknown flag {flag}{hint}"
