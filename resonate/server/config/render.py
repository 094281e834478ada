"""Text for people: ``config show`` output and the option list of ``resonate serve --help``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from resonate.server.config.convert import default_text, to_display
from resonate.server.config.options import (
    CONFIG_ENV,
    CONFIG_FLAG,
    CONFIG_SHORT_FLAG,
    OPTIONS,
    OPTIONS_BY_KEY,
    Option,
    OptionType,
)
from resonate.server.config.resolve import ResolvedConfig

OUTPUT_FORMATS: tuple[str, ...] = ("yaml", "json")

_METAVARS: dict[OptionType, str] = {
    OptionType.BOOL: "",
    OptionType.INT: "N",
    OptionType.STRING: "TEXT",
    OptionType.DURATION: "DURATION",
    OptionType.SIZE: "SIZE",
    OptionType.ADDRESS: "HOST:PORT",
    OptionType.STRING_LIST: "ITEM,...",
    OptionType.STRING_MAP: "KEY=VALUE,...",
    OptionType.QUERY: "K=V&...",
    OptionType.OBJECT_LIST: "JSON",
    OptionType.RETENTION: "DURATION|STATE=DURATION,...",
}


def render_config(
    resolved: ResolvedConfig, *, output: str = "yaml", with_sources: bool = False
) -> str:
    """The effective configuration as YAML (or JSON), secrets shown as ``"***"``.

    With ``with_sources``, YAML gets a comment per option naming its origin; JSON becomes
    ``{"config": ..., "sources": {key: origin}}``.
    """
    if output not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {output!r} (yaml or json)")
    tree = _nested(
        {option.key: to_display(option, resolved.config[option.key]) for option in OPTIONS}
    )
    if output == "json":
        document: Any = tree
        if with_sources:
            document = {"config": tree, "sources": dict(resolved.sources)}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if not with_sources:
        return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=False)
    header = f"# file: {resolved.file}" if resolved.file is not None else "# file: none"
    lines = [header, *_yaml_with_comments(tree, resolved.sources, [])]
    return "\n".join(lines) + "\n"


def format_options_help() -> str:
    """Every flag with its value syntax and default, and under it its environment variable.

    Two short lines per option keep it readable in an 80-column terminal; no square brackets,
    so Rich markup (Typer's help renderer) leaves the text alone.
    """
    rows: list[tuple[str, str, str]] = [
        (f"{CONFIG_SHORT_FLAG}, {CONFIG_FLAG} PATH", "default ./resonate.yml", CONFIG_ENV)
    ]
    rows.extend(
        (_flag_usage(option), f"default {default_text(option)}", option.env) for option in OPTIONS
    )
    width = max(len(usage) for usage, _, _ in rows)
    lines = [
        "Configuration options (flag > environment variable > config file > default).",
        "Repeat list and map flags; give lists of objects as JSON text.",
    ]
    for usage, default, env in rows:
        lines.append(f"  {usage:<{width}}  {default}")
        lines.append(f"      env {env}")
    return "\n".join(lines)


def _flag_usage(option: Option) -> str:
    if option.type is OptionType.BOOL:
        return "--(no-)" + option.flag.removeprefix("--")
    metavar = "|".join(option.choices) if option.type is OptionType.ENUM else _METAVARS[option.type]
    return f"{option.flag} {metavar}"


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *sections, name = key.split(".")
        level = tree
        for section in sections:
            level = level.setdefault(section, {})
        level[name] = value
    return tree


def _yaml_with_comments(
    tree: Mapping[str, Any], sources: Mapping[str, str], path: list[str]
) -> list[str]:
    pad = "  " * len(path)
    lines: list[str] = []
    for name, value in tree.items():
        key = ".".join([*path, name])
        if key not in OPTIONS_BY_KEY:
            lines.append(f"{pad}{name}:")
            lines.extend(_yaml_with_comments(value, sources, [*path, name]))
            continue
        comment = f"  # {sources.get(key, 'default')}"
        if isinstance(value, list | dict) and value:
            lines.append(f"{pad}{name}:{comment}")
            block = yaml.safe_dump(
                value, sort_keys=False, allow_unicode=True, default_flow_style=False
            )
            lines.extend(f"{pad}  {line}" for line in block.splitlines())
        else:
            lines.append(f"{pad}{name}: {_yaml_scalar(value)}{comment}")
    return lines


def _yaml_scalar(value: object) -> str:
    """One value in YAML flow syntax (``info``, ``'***'``, ``''``, ``[]``, ``true``)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1_000_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()
