"""``resonate config show``: print the configuration ``serve`` would run with (config.md §6)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_USAGE = "usage: resonate config show [--sources] [-o yaml|json] [--config PATH] [serve flags]"


def run_config_show(args: list[str]) -> int:
    """Resolve, print to stdout, warnings to stderr. Exit 0, or 2 on a configuration error."""
    # Imported here so that `resonate --help` does not pay for the config machinery.
    from resonate.server.config import ConfigError, render_config, resolve_config

    try:
        with_sources, output, rest = _split_show_options(args)
        resolved = resolve_config(rest, os.environ, Path.cwd())
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in resolved.warnings:
        print(warning, file=sys.stderr)
    sys.stdout.write(render_config(resolved, output=output, with_sources=with_sources))
    return 0


def _split_show_options(args: list[str]) -> tuple[bool, str, list[str]]:
    """Take ``--sources`` and ``-o/--output`` out; everything else is for ``resolve_config``."""
    from resonate.server.config import ConfigError

    with_sources = False
    output = "yaml"
    rest: list[str] = []
    index = 0
    while index < len(args):
        argument = args[index]
        index += 1
        name, equals, inline = argument.partition("=")
        if argument == "--sources":
            with_sources = True
            continue
        if name in ("-o", "--output"):
            if equals:
                output = inline
            elif index < len(args):
                output = args[index]
                index += 1
            else:
                raise ConfigError(f"{name}: missing value (yaml or json); {_USAGE}")
        elif argument.startswith("-o") and not argument.startswith("--"):
            output = argument[2:]
        else:
            rest.append(argument)
            continue
        if output not in ("yaml", "json"):
            raise ConfigError(f"{name}: unknown output format {output!r} (yaml or json)")
    return with_sources, output, rest
