"""Server configuration (config.md): one YAML file, a flag and an environment variable per option.

``resolve_config`` reads every source (flag > environment > file > default) into a typed
``Config``; ``render_config`` prints it for ``resonate config show``; ``format_options_help``
lists the flags for ``resonate serve --help``. Importing this package is cheap: it needs only
PyYAML and the standard library.
"""

from resonate.server.config.errors import ConfigError
from resonate.server.config.options import (
    OPTIONS,
    OPTIONS_BY_KEY,
    Option,
    OptionType,
    key_to_env,
    key_to_flag,
)
from resonate.server.config.render import format_options_help, render_config
from resonate.server.config.resolve import Config, ResolvedConfig, resolve_config
from resonate.server.config.values import Address, parse_duration, parse_size

__all__ = [
    "OPTIONS",
    "OPTIONS_BY_KEY",
    "Address",
    "Config",
    "ConfigError",
    "Option",
    "OptionType",
    "ResolvedConfig",
    "format_options_help",
    "key_to_env",
    "key_to_flag",
    "parse_duration",
    "parse_size",
    "render_config",
    "resolve_config",
]
