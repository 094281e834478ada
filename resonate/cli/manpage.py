"""Man pages rendered from the live command tree.

One page per command and group (`resonate.1`, `resonate-promises.1`, `resonate-promises-get.1`,
…), each with NAME, SYNOPSIS, DESCRIPTION, ARGUMENTS, OPTIONS, EXIT STATUS, ENVIRONMENT,
EXAMPLES and SEE ALSO. Everything comes from the click objects Typer builds: options with their
metavar, default and environment variable, the commands of each group, the help texts. The
commands whose arguments go to the server's configuration parser (`serve`, `dev`,
`config show`, `migrate …`) also list the configuration flags, from `resonate.server.config`.
Examples come from `resonate.cli.examples`, which the `--help` epilogs use too. `resonate man`
(`resonate.cli.man`) shows a page; this module is imported only then and by `scripts/gen-docs`.

`scripts/gen-docs` writes the pages into `man/` (and the completion scripts into
`completions/`); a test regenerates both and compares them byte for byte. The output depends
on nothing but the command tree and the package version: no date, pure ASCII roff.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from resonate import __version__
from resonate.cli.errors import ExitCode
from resonate.cli.examples import PROGRAM, examples_for

if TYPE_CHECKING:
    from resonate.server.config import Option as ConfigOption

MANUAL = "Resonate Manual"
SECTION = "1"
GENERATED_BY = "scripts/gen-docs"

# cli.md §3, as docs/cli.md words it; a test checks that every exit code the CLI defines is here.
EXIT_STATUS: dict[int, str] = {
    ExitCode.OK: "Success, including a deduplicated request (HTTP 200 where a 201 was possible).",
    ExitCode.ERROR: "Any other error: an unexpected response, a file that cannot be read, "
    "a declined confirmation.",
    ExitCode.USAGE: "Usage error: a bad option or value, or the server answered 400 or 413.",
    ExitCode.CONFIRMATION_REQUIRED: "Confirmation required: a destructive command without "
    "--yes and without a terminal.",
    ExitCode.NOT_FOUND: "Not found (HTTP 404).",
    ExitCode.UNREACHABLE: "Cannot reach the server: connection refused, DNS, TLS or timeout.",
    ExitCode.UNAUTHORIZED: "Unauthorized: HTTP 401, or 403 with code 40300.",
    ExitCode.CONFLICT: "Conflict or invalid state: HTTP 409, 412, or 403 with codes "
    "40301 to 40309 (for example, already resolved).",
    ExitCode.SERVER_ERROR: "Server error (HTTP 5xx).",
    9: "--wait (promises get, invoke): the promise completed but was not resolved: REJECTED, "
    "REJECTED_CANCELED or REJECTED_TIMEDOUT.",
    10: "--wait: the wait's own timeout (promises get --timeout, invoke --wait-timeout) passed "
    "while the promise was still PENDING.",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C).",
    ExitCode.BROKEN_PIPE: "The reader of the output went away (a broken pipe, as in | head -1).",
}
# The server-side commands exit with these only.
SERVER_EXIT_STATUS: dict[int, str] = {
    ExitCode.OK: "Success; a server stopped by SIGINT or SIGTERM after draining.",
    ExitCode.ERROR: "The store cannot be opened or migrated, or a listener cannot be bound.",
    ExitCode.USAGE: "Configuration error: an unknown flag, a bad value or an unreadable "
    "configuration file.",
}

# `resonate db …` (backup, vacuum) exit with these.
DB_EXIT_STATUS: dict[int, str] = {
    ExitCode.OK: "Success.",
    ExitCode.ERROR: "The command failed: PATH exists (backup, without --force), the database is "
    "missing, unreadable or in use by a server (vacuum), or writing failed.",
    ExitCode.USAGE: "Usage or configuration error: a missing or extra PATH, an unknown flag, a "
    "bad configuration, or a store that is not a SQLite file (PostgreSQL: use pg_dump).",
}
# Server commands that read only the store's options.
STORE_ONLY_GROUPS = ("migrate", "db")
# What commands that hand their raw arguments to the configuration parser take besides it.
RAW_ARGUMENTS: dict[tuple[str, ...], tuple[str, ...]] = {
    (PROGRAM, "db", "backup"): ("PATH", "[--force]"),
}

# Environment variables an option honours without declaring them to click.
IMPLIED_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "no_color": ("NO_COLOR", "Any non-empty value turns colour off, like --no-color."),
}

# `config show` takes `--sources` and `-o/--output` itself, besides the configuration flags.
CONFIG_SHOW_PATH = (PROGRAM, "config", "show")


@dataclass(frozen=True, slots=True)
class OptionDoc:
    """One option or argument as a page shows it (texts are plain, not yet roff)."""

    names: tuple[str, ...]
    metavar: str | None
    help: str
    default: str | None = None
    environment: tuple[str, ...] = ()
    required: bool = False
    repeatable: bool = False
    limits: str | None = None


@dataclass(frozen=True, slots=True)
class CommandNode:
    """A command of the tree with the context it would run in."""

    path: tuple[str, ...]
    command: Any
    context: Any

    @property
    def page_name(self) -> str:
        return "-".join(self.path)

    @property
    def file_name(self) -> str:
        return f"{self.page_name}.{SECTION}"

    @property
    def is_group(self) -> bool:
        return hasattr(self.command, "commands")

    def children(self) -> Iterator[CommandNode]:
        if not self.is_group:
            return
        for name in self.command.list_commands(self.context):
            child = self.command.get_command(self.context, name)
            if child is None or getattr(child, "hidden", False):
                continue
            settings = dict(getattr(child, "context_settings", None) or {})
            context = child.context_class(child, info_name=name, parent=self.context, **settings)
            yield CommandNode((*self.path, name), child, context)


def root_node(root_command: Any | None = None) -> CommandNode:
    """The `resonate` command (by default the live app's) as the root of the tree."""
    if root_command is None:
        from resonate.cli.main import app

        root_command = typer.main.get_command(app)
    settings = dict(getattr(root_command, "context_settings", None) or {})
    context = root_command.context_class(root_command, info_name=PROGRAM, **settings)
    return CommandNode((PROGRAM,), root_command, context)


def walk(node: CommandNode) -> Iterator[CommandNode]:
    yield node
    for child in node.children():
        yield from walk(child)


def find(root: CommandNode, words: Sequence[str]) -> CommandNode | None:
    """The node of `resonate WORDS…` (`["promises", "get"]`), or None."""
    node = root
    for word in words:
        found = next((child for child in node.children() if child.path[-1] == word), None)
        if found is None:
            return None
        node = found
    return node


def man_pages(root: CommandNode | None = None) -> dict[str, str]:
    """Every page of the tree, by file name, in tree order."""
    root = root or root_node()
    return {node.file_name: render_page(node, root) for node in walk(root)}


# --- what a page says about options ---------------------------------------------------------


def _choices(param: Any) -> list[str]:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        values = descriptor.choices if getattr(descriptor, "is_choice", False) else None
    else:
        values = getattr(getattr(param, "type", None), "choices", None)
    return [str(value.value if isinstance(value, Enum) else value) for value in values or ()]


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


# Click's names for the value of an option without a metavar, as `--help` shows them.
_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _type_name(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:  # Click proper
        return str(getattr(getattr(param, "type", None), "name", "text")).upper()
    if getattr(descriptor, "is_path", False) or getattr(descriptor, "is_file", False):
        return "PATH"
    annotation = descriptor.annotation
    if getattr(descriptor, "is_list", False):
        annotation = getattr(annotation, "__args__", (str,))[0]
    return _TYPE_NAMES.get(getattr(annotation, "__name__", ""), "TEXT")


def _metavar(param: Any) -> str | None:
    if param.param_type_name == "option" and not _takes_value(param):
        return None
    if param.metavar:
        return str(param.metavar)
    choices = _choices(param)
    if choices:
        return "|".join(choices)
    return _type_name(param)


def _default(param: Any) -> str | None:
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return shown
    if shown is False:
        return None
    value = param.default
    if param.param_type_name == "option" and not _takes_value(param):
        if not getattr(param, "secondary_opts", None) or value is None:
            return None
        return str((param.opts if value else param.secondary_opts)[0]).lstrip("-")
    if callable(value):
        return "(computed when run)"
    if isinstance(value, list | tuple):
        value = ", ".join(str(item.value if isinstance(item, Enum) else item) for item in value)
    elif isinstance(value, Enum):
        value = value.value
    return None if value is None or value == "" else str(value)


def _environment(param: Any) -> tuple[str, ...]:
    variables = param.envvar
    if not variables:
        return ()
    return (variables,) if isinstance(variables, str) else tuple(variables)


def _limits(param: Any) -> str | None:
    holder = param if hasattr(param, "min") else getattr(param, "type", None)
    low, high = getattr(holder, "min", None), getattr(holder, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None


def _names(param: Any) -> tuple[str, ...]:
    """Short names first, as man pages write them (`-S, --server`)."""
    names = [*param.opts, *getattr(param, "secondary_opts", ())]
    return tuple(sorted(names, key=lambda name: name.startswith("--")))


def option_doc(param: Any) -> OptionDoc:
    is_option = param.param_type_name == "option"
    return OptionDoc(
        names=_names(param) if is_option else (),
        metavar=_metavar(param),
        help=_help_text(getattr(param, "help", None) or ""),
        default=_default(param),
        environment=_environment(param),
        required=bool(param.required),
        repeatable=bool(getattr(param, "multiple", False)),
        limits=_limits(param),
    )


def _visible_params(node: CommandNode, kind: str) -> list[Any]:
    return [
        param
        for param in node.command.get_params(node.context)
        if param.param_type_name == kind and not getattr(param, "hidden", False)
    ]


def option_panels(node: CommandNode) -> dict[str | None, list[Any]]:
    """The command's options by help panel (None: the command's own), in declaration order."""
    panels: dict[str | None, list[Any]] = {None: []}
    for param in _visible_params(node, "option"):
        panels.setdefault(getattr(param, "rich_help_panel", None), []).append(param)
    return panels


def takes_server_configuration(node: CommandNode) -> bool:
    """Whether the command hands its raw arguments to the server's configuration parser."""
    settings = getattr(node.command, "context_settings", None) or {}
    return bool(settings.get("ignore_unknown_options")) and not node.is_group


def server_configuration_docs(node: CommandNode) -> tuple[str, list[OptionDoc]]:
    """The introduction and the flags of the server's configuration, for a server command.

    `migrate` and `db` read only the store (cli.md §4), so their pages list the store flags.
    """
    from resonate.server.config import OPTIONS, format_options_help
    from resonate.server.config.convert import default_text
    from resonate.server.config.options import CONFIG_ENV, CONFIG_FLAG, CONFIG_SHORT_FLAG
    from resonate.server.config.render import OUTPUT_FORMATS

    store_only = len(node.path) > 1 and node.path[1] in STORE_ONLY_GROUPS
    introduction = " ".join(format_options_help().splitlines()[:2])
    docs: list[OptionDoc] = []
    if node.path == CONFIG_SHOW_PATH:
        docs.append(OptionDoc(("--sources",), None, "Name the origin of each value."))
        docs.append(
            OptionDoc(("-o", "--output"), "|".join(OUTPUT_FORMATS), "Output format.", "yaml")
        )
    docs.append(
        OptionDoc(
            (CONFIG_SHORT_FLAG, CONFIG_FLAG),
            "PATH",
            "The configuration file (YAML).",
            "./resonate.yml",
            (CONFIG_ENV,),
        )
    )
    for option in OPTIONS:
        if store_only and not option.is_store_option:
            continue
        docs.append(_configuration_doc(option, default_text(option)))
    return introduction, docs


def _configuration_doc(option: ConfigOption, default: str) -> OptionDoc:
    from resonate.server.config import OptionType
    from resonate.server.config.options import negated_flag
    from resonate.server.config.render import _flag_usage  # the metavar `serve --help` shows

    if option.type is OptionType.BOOL:
        names: tuple[str, ...] = (option.flag, negated_flag(option))
        metavar = None
    else:
        names = (option.flag,)
        metavar = _flag_usage(option).removeprefix(option.flag).strip()
    repeatable = option.type in (OptionType.STRING_LIST, OptionType.STRING_MAP)
    help_text = option.help[:1].upper() + option.help[1:] + "."
    return OptionDoc(names, metavar, help_text, default, (option.env,), repeatable=repeatable)


# --- roff -------------------------------------------------------------------------------------


def roff(text: str) -> str:
    """Plain text as roff body text: escapes, ASCII only (`\\[uXXXX]` for the rest)."""
    escaped = (
        text.replace("\\", "\\e").replace("-", "\\-").replace("'", "\\(aq").replace("`", "\\(ga")
    )
    return "".join(char if ord(char) < 128 else f"\\[u{ord(char):04X}]" for char in escaped)


def _line(text: str) -> str:
    """A text line that roff will not take for a request."""
    return "\\&" + text if text.startswith((".", "'")) else text


def bold(text: str) -> str:
    return f"\\fB{roff(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{roff(text)}\\fR"


def _help_text(text: str) -> str:
    """Help as Typer shows it: what precedes a form feed, single line breaks joined."""
    text = text.partition("\f")[0]
    paragraphs = [" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n")]
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def _paragraphs(text: str) -> list[str]:
    lines: list[str] = []
    for index, paragraph in enumerate(_help_text(text).split("\n\n")):
        if index:
            lines.append(".PP")
        lines.append(_line(roff(paragraph)))
    return lines


def _option_entry(doc: OptionDoc) -> list[str]:
    tag = ", ".join(bold(name) for name in doc.names) if doc.names else ""
    if doc.metavar:
        tag = f"{tag} {italic(doc.metavar)}" if tag else italic(doc.metavar)
    lines = [".TP", tag]
    if doc.help:
        lines.append(_line(roff(doc.help)))
    facts: list[str] = []
    if doc.required:
        facts.append("Required.")
    if doc.repeatable:
        facts.append("May be given more than once.")
    if doc.limits:
        facts.append(f"Range: {roff(doc.limits)}.")
    if doc.default is not None:
        facts.append(f"Default: {bold(doc.default)}")
    if doc.environment:
        facts.append("Environment: " + ", ".join(bold(name) for name in doc.environment))
    for fact in facts:
        lines.extend([".br", _line(fact)])
    return lines


def _synopsis(node: CommandNode) -> list[str]:
    words = ["[" + italic("OPTIONS") + "]"]
    if node.is_group:
        words.append(italic("COMMAND") + " [" + italic("ARGS") + "]...")
    else:
        for param in _visible_params(node, "option"):
            if param.required:
                name = _names(param)[-1]
                metavar = _metavar(param)
                words.append(bold(name) + (" " + italic(metavar) if metavar else ""))
        for param in _visible_params(node, "argument"):
            word = italic(_metavar(param) or "")
            if param.nargs == -1:
                word += "..."
            words.append(word if param.required else f"[{word}]")
        if takes_server_configuration(node):
            for word in RAW_ARGUMENTS.get(tuple(node.path), ()):
                words.append(italic(word) if word.isupper() else word)
            words.append("[" + italic("CONFIGURATION FLAGS") + "]")
    return [".SH SYNOPSIS", ".B " + roff(" ".join(node.path)), _line(" ".join(words))]


def _commands_section(node: CommandNode) -> list[str]:
    lines = [".SH COMMANDS"]
    for child in node.children():
        lines.extend([".TP", bold(child.path[-1])])
        summary = _help_text(child.command.help or "").split("\n\n")[0]
        if summary:
            lines.append(_line(roff(summary)))
        lines.extend([".br", f"See {bold(child.page_name)}({SECTION})."])
    return lines


def _options_section(node: CommandNode) -> list[str]:
    lines = [".SH OPTIONS"]
    for panel, params in option_panels(node).items():
        if panel is not None and params:
            lines.append(f'.SS "{roff(panel)}"')
        for param in params:
            lines.extend(_option_entry(option_doc(param)))
    if takes_server_configuration(node):
        introduction, docs = server_configuration_docs(node)
        lines.extend(['.SS "Server configuration"', _line(roff(introduction))])
        for doc in docs:
            lines.extend(_option_entry(doc))
    return lines


def _environment_section(node: CommandNode) -> list[str]:
    entries: list[tuple[str, str]] = []
    for param in _visible_params(node, "option"):
        name = _names(param)[-1]
        for variable in _environment(param):
            entries.append((variable, f"The value of {bold(name)} when it is not given."))
        if param.name in IMPLIED_ENVIRONMENT:
            variable, meaning = IMPLIED_ENVIRONMENT[param.name]
            entries.append((variable, roff(meaning)))
    if takes_server_configuration(node):
        for doc in server_configuration_docs(node)[1]:
            for variable in doc.environment:
                entries.append(
                    (variable, f"The value of {bold(doc.names[-1])} when it is not given.")
                )
    lines = [".SH ENVIRONMENT"]
    if not entries:
        lines.append("This command reads no environment variable of its own.")
    for variable, meaning in entries:
        lines.extend([".TP", bold(variable), _line(meaning)])
    return lines


def _exit_status_section(node: CommandNode) -> list[str]:
    if len(node.path) > 1 and node.path[1] == "db":
        table = DB_EXIT_STATUS
    elif takes_server_configuration(node):
        table = SERVER_EXIT_STATUS
    else:
        table = EXIT_STATUS
    lines = [".SH EXIT STATUS"]
    for code, meaning in table.items():
        lines.extend([".TP", f"\\fB{int(code)}\\fR", _line(roff(meaning))])
    return lines


def _examples_section(node: CommandNode) -> list[str]:
    examples = examples_for(" ".join(node.path))
    if not examples:
        return []
    lines = [".SH EXAMPLES", ".PP", ".RS 4", ".nf"]
    lines.extend(_line(roff(example)) for example in examples)
    lines.extend([".fi", ".RE"])
    return lines


def _see_also_section(node: CommandNode, root: CommandNode) -> list[str]:
    """The groups above the command, from the root down, then its own commands."""
    related = [find(root, node.path[1:depth]) for depth in range(1, len(node.path))]
    related.extend(node.children())
    names = [other.page_name for other in related if other is not None]
    if not names:
        return []
    lines = [".SH SEE ALSO"]
    for index, name in enumerate(names):
        comma = "," if index < len(names) - 1 else ""
        lines.append(f".BR {roff(name)} ({SECTION}){comma}")
    return lines


def render_page(node: CommandNode, root: CommandNode) -> str:
    """The roff source of `node`'s page."""
    title = roff(node.page_name.upper())
    help_text = _help_text(node.command.help or "")
    summary = help_text.split("\n\n")[0] if help_text else ""
    lines = [
        f'.\\" Generated by {GENERATED_BY} from the command tree of {PROGRAM}; do not edit.',
        f'.TH "{title}" "{SECTION}" "" "{PROGRAM} {__version__}" "{MANUAL}"',
        ".nh",  # option names and ids must not be hyphenated
        ".ad l",
        ".SH NAME",
        _line(roff(node.page_name) + (f" \\- {roff(summary)}" if summary else "")),
        *_synopsis(node),
        ".SH DESCRIPTION",
        *(_paragraphs(help_text) if help_text else [roff(" ".join(node.path))]),
    ]
    if node.is_group:
        lines.extend(_commands_section(node))
    arguments = _visible_params(node, "argument")
    if arguments:
        lines.append(".SH ARGUMENTS")
        for param in arguments:
            lines.extend(_option_entry(option_doc(param)))
    lines.extend(_options_section(node))
    lines.extend(_exit_status_section(node))
    lines.extend(_environment_section(node))
    lines.extend(_examples_section(node))
    lines.extend(_see_also_section(node, root))
    return "\n".join(lines) + "\n"


# --- files ------------------------------------------------------------------------------------


def write_docs(directory: Path) -> list[Path]:
    """Write `man/*.1` and `completions/*` under `directory`; stale pages are removed."""
    from resonate.cli.complete import completion_scripts

    written: list[Path] = []
    outputs = {"man": man_pages(), "completions": completion_scripts()}
    for folder, files in outputs.items():
        target = directory / folder
        target.mkdir(parents=True, exist_ok=True)
        if folder == "man":
            for stale in sorted(target.glob(f"*.{SECTION}")):
                if stale.name not in files:
                    stale.unlink()
        for name, text in files.items():
            path = target / name
            path.write_bytes(text.encode("ascii" if folder == "man" else "utf-8"))
            written.append(path)
    return written
