"""The root command's own behaviour: help that reads like a Unix tool's, and the one place where
a failure that no command handled becomes its exit code and one `error:` line (cli.md §3).

- Help: a flag is shown without a value (`--all`, not `--all <bool>`), an option by its metavar
  or Click's type name (`TEXT`, `INTEGER`), a choice as `[a|b|c]`, an argument by its name
  (`ID`, `[PATTERN]`). Typer has no hook for this, so the root group, once built, gives every
  parameter of the command tree a subclass that renders that way (`present_parameters`).
- Usage errors (exit 2) print `error: <message>` in our own words, never Click's or pydantic's
  (`invalid output format 'xml' (choose table, json, jsonl, yaml, id)`).
- Ctrl-C prints `error: interrupted` and exits 130; a reader that closed the pipe early
  (`resonate promises search --all | head -1`) ends the command quietly with 141, as a process
  killed by SIGPIPE does, and `resonate serve` keeps ignoring SIGPIPE on its sockets.

Typer vendors Click (`typer._click`); pyproject bounds Typer to the minor version this is
written and tested against, and `tests/cli/test_help_golden.py` notices any change in rendering.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import typer
from typer._click.exceptions import (
    BadParameter,
    ClickException,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperArgument, TyperGroup, TyperOption

from resonate.cli.errors import ExitCode
from resonate.cli.output import Printer

NO_COLOR_FLAG = "--no-color"

# Click's names for the value of an option that has no metavar of its own.
_TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}

# What an invalid value of these options is called in an error message; the others are called
# `--<option> value`.
_VALUE_NOUNS = {"output": "output format"}

_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra arguments?(?:\(s\))? \((.*)\)")


# --- help ---------------------------------------------------------------------------------------


def _choices(parameter: TyperOption | TyperArgument) -> list[str]:
    choices = parameter.type_descriptor.choices or ()
    return [str(getattr(choice, "value", choice)) for choice in choices]


def _value_name(parameter: TyperOption | TyperArgument) -> str:
    """`METAVAR`, `[a|b|c]` for a choice, or Click's name of the type (`TEXT`, `INTEGER`)."""
    if parameter.metavar is not None:
        return parameter.metavar
    descriptor = parameter.type_descriptor
    if descriptor.is_choice:
        return "[" + "|".join(_choices(parameter)) + "]"
    if descriptor.is_path or descriptor.is_file:
        return "PATH"
    annotation = descriptor.annotation
    if descriptor.is_list:
        element = getattr(annotation, "__args__", (str,))[0]
        return _TYPE_NAMES.get(element, "TEXT")
    return _TYPE_NAMES.get(annotation, "TEXT")


class InvalidChoice(BadParameter):
    """A value that is none of a choice option's values."""

    def __init__(self, value: str, ctx: Any, param: Any) -> None:
        super().__init__(f"{value!r} is not a choice", ctx=ctx, param=param)
        self.value = value


# --- value conversion ---------------------------------------------------------------------------
# Typer converts every value through a pydantic TypeAdapter, built when a parameter is first
# processed, even when it has no value. Importing pydantic alone costs a subcommand's `--help`
# a fifth of its time (the root's options are processed before it) and completion as much. So
# options left out, text, flags and string enums are converted here; any other value still goes
# through Typer's conversion, built on first use.


def _typer_conversion(param: Any) -> RuntimeParam:
    conversion: RuntimeParam | None = getattr(param, "_resonate_typer_conversion", None)
    if conversion is None:
        conversion = build_runtime_param(param.type_descriptor)
        param._resonate_typer_conversion = conversion
    return conversion


@dataclass(frozen=True)
class _DeferredConversion(RuntimeParam):
    """Typer's conversion, built only when there is a value to convert; text and flags that
    already have their type are taken as they are."""

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.annotation in (str, bool) and isinstance(value, self.annotation):
            return value
        return _typer_conversion(param)._coerce_value(value, param, ctx)


@dataclass(frozen=True)
class _ChoiceConversion(RuntimeParam):
    """One of a string enum's values (case-insensitively unless the option says otherwise)."""

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        choices: type[Enum] = self.annotation
        if isinstance(value, choices):
            return value
        text = str(value)
        sensitive = param.type_descriptor.case_sensitive
        for member in choices:
            if member.value == text or (not sensitive and member.value.lower() == text.lower()):
                return member
        raise InvalidChoice(text, ctx, param)


def _conversion(parameter: TyperOption | TyperArgument) -> RuntimeParam:
    descriptor = parameter.type_descriptor
    annotation = descriptor.annotation
    single = not (descriptor.is_list or descriptor.is_tuple)
    if single and isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return _ChoiceConversion(parameter_info=descriptor.parameter_info, annotation=annotation)
    return _DeferredConversion(parameter_info=descriptor.parameter_info, annotation=annotation)


class PresentedOption(TyperOption):
    """An option as a Unix tool shows it: flags alone, values by name."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return _value_name(self)

    def get_runtime_param(self) -> RuntimeParam:
        if self._runtime_param is None:
            self._runtime_param = _conversion(self)
        return self._runtime_param


class PresentedArgument(TyperArgument):
    """An argument shown by its name: `ID` when required, `[PATTERN]` when optional."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_runtime_param(self) -> RuntimeParam:
        if self._runtime_param is None:
            self._runtime_param = _conversion(self)
        return self._runtime_param

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1:
            name += "..."
        return name if self.required else f"[{name}]"


def _present(parameter: Any) -> None:
    # The subclasses add methods only, so switching the class of a built parameter is safe.
    if type(parameter) is TyperOption:
        parameter.__class__ = PresentedOption
    elif type(parameter) is TyperArgument:
        parameter.__class__ = PresentedArgument


def _plain_when_asked(format_help: Any) -> Any:
    """`format_help` drawing without any escape code under NO_COLOR or `--no-color` (Rich
    keeps bold and dim under NO_COLOR; with no colour system it draws plain text)."""

    def plain_format_help(ctx: Any, formatter: Any) -> Any:
        root = ctx.find_root().command
        if not (os.environ.get("NO_COLOR") or getattr(root, "_no_color", False)):
            return format_help(ctx, formatter)
        from typer import rich_utils

        color_system = rich_utils.COLOR_SYSTEM
        rich_utils.COLOR_SYSTEM = None
        try:
            return format_help(ctx, formatter)
        finally:
            rich_utils.COLOR_SYSTEM = color_system

    return plain_format_help


def present_parameters(command: Any) -> None:
    """Give every parameter under `command` (itself included) the presentation above; calling
    it again presents the parameters added since."""
    for parameter in getattr(command, "params", ()):
        _present(parameter)
    if not getattr(command, "_resonate_presented", False):
        command._resonate_presented = True
        # `--help` is made on first use, from the context's option names.
        make_help_option = command.get_help_option

        def get_help_option(ctx: Any) -> Any:
            option = make_help_option(ctx)
            _present(option)
            return option

        command.get_help_option = get_help_option
        command.format_help = _plain_when_asked(command.format_help)
    for child in getattr(command, "commands", {}).values():
        present_parameters(child)


# --- usage errors -------------------------------------------------------------------------------


def _option_name(parameter: Any) -> str:
    """`--limit` (the long form when there is one), or an argument's `ID`."""
    if isinstance(parameter, TyperArgument):
        return str(parameter.display_name_raw)
    options: Sequence[str] = getattr(parameter, "opts", ()) or ()
    longs = [option for option in options if option.startswith("--")]
    return (longs or list(options) or [str(parameter.name)])[0]


def _sentence(text: str) -> str:
    """Click's `No such command 'x'.` as our `no such command 'x'` (`JSON …` stays)."""
    text = text.strip().rstrip(".")
    if text[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def _validation_failure(error: BadParameter) -> dict[str, Any] | None:
    """The first pydantic error behind a value Typer could not convert, if that is the cause."""
    errors = getattr(error.__cause__, "errors", None)
    if not callable(errors):
        return None
    try:
        found = errors()
    except Exception:
        return None
    return found[0] if found and isinstance(found[0], dict) else None


def _expected_range(parameter: Any) -> str:
    low, high = getattr(parameter, "min", None), getattr(parameter, "max", None)
    if low is not None and high is not None:
        return f"expected {low} to {high}"
    if low is not None:
        return f"expected at least {low}"
    if high is not None:
        return f"expected at most {high}"
    return "out of range"


def _invalid_value(error: BadParameter, failure: dict[str, Any]) -> str:
    """`invalid <noun> '<value>' (<what is allowed>)` for a value Typer rejected."""
    parameter = error.param
    name = _option_name(parameter)
    noun = _VALUE_NOUNS.get(str(getattr(parameter, "name", "")), f"{name} value")
    given = f"{noun} {str(failure.get('input', ''))!r}"
    kind = str(failure.get("type", ""))
    if isinstance(parameter, TyperOption | TyperArgument) and parameter.type_descriptor.is_choice:
        return f"invalid {given} (choose {', '.join(_choices(parameter))})"
    if kind.endswith("_parsing") and kind.startswith("int"):
        return f"invalid {given} (expected an integer)"
    if kind.endswith("_parsing") and kind.startswith("float"):
        return f"invalid {given} (expected a number)"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"invalid {given} ({_expected_range(parameter)})"
    message = str(failure.get("msg", "")).removeprefix("Value error, ")
    return f"invalid {given} ({_sentence(message)})"


def _help_hint(error: UsageError) -> str:
    context = error.ctx
    if context is None or context.command.get_help_option(context) is None:
        return ""
    return f" (see '{context.command_path} {context.help_option_names[-1]}')"


def describe_usage_error(error: ClickException) -> str:
    """The text after `error: ` for a command line that could not be used."""
    if isinstance(error, MissingParameter):
        parameter = error.param
        kind = "argument" if isinstance(parameter, TyperArgument) else "option"
        what = _option_name(parameter) if parameter is not None else ""
        return f"missing {kind} {what}".rstrip() + _help_hint(error)
    if isinstance(error, InvalidChoice):
        return _invalid_value(error, {"input": error.value})
    if isinstance(error, BadParameter):
        failure = _validation_failure(error)
        if failure is not None and error.param is not None:
            return _invalid_value(error, failure)
        hint = error.param_hint
        if hint is None and error.param is not None:
            hint = _option_name(error.param)
        if isinstance(hint, list | tuple):
            hint = " / ".join(hint)
        if hint:
            return f"{str(hint).replace(chr(39), '')}: {error.message}"
        return error.message
    if isinstance(error, NoSuchOption):
        message = f"unknown option {error.option_name}"
        if error.possibilities:
            message += f" (did you mean {' or '.join(sorted(error.possibilities))}?)"
        return message + _help_hint(error)
    if isinstance(error, UsageError):
        extra = _EXTRA_ARGUMENTS.fullmatch(error.message)
        if extra:
            message = f"unexpected argument {extra.group(1)!r}"
        else:
            message = _sentence(error.message).replace(". Did you mean", "; did you mean")
        return message + _help_hint(error)
    return _sentence(error.format_message())


# --- the root group -----------------------------------------------------------------------------


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that flushing what is still buffered cannot fail again."""
    try:
        descriptor = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(descriptor, sys.stdout.fileno())
        finally:
            os.close(descriptor)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): nothing will flush to a closed pipe


def _stdout_identity() -> tuple[int, int] | None:
    """Which file stdout is (device and inode), or None when it is not a real file."""
    try:
        status = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    return status.st_dev, status.st_ino


def _silenced_by_rich(before: tuple[int, int] | None) -> bool:
    """Whether stdout was pointed at /dev/null since `before`: Rich does that (and exits 1)
    when it writes to a closed pipe (`Console.on_broken_pipe`)."""
    after = _stdout_identity()
    if before is None or after is None or after == before:
        return False
    devnull = os.stat(os.devnull)
    return after == (devnull.st_dev, devnull.st_ino)


def _interrupted(error: BaseException) -> bool:
    return isinstance(error, KeyboardInterrupt) or isinstance(error.__context__, KeyboardInterrupt)


class ResonateGroup(TyperGroup):
    """The `resonate` group: presentation of the whole tree and the last word on failures."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        # Built last, after every command and group under it.
        present_parameters(self)
        self._no_color = False

    def main(self, args: Sequence[str] | None = None, *more: Any, **extra: Any) -> Any:
        present_parameters(self)  # Typer adds --install-completion and co. after __init__
        stdout_before = _stdout_identity()
        try:
            result = super().main(args, *more, **extra)
        except SystemExit as exit:
            if exit.code == ExitCode.ERROR and _silenced_by_rich(stdout_before):
                # Rich met the closed pipe first (it draws the help) and exited 1.
                raise SystemExit(ExitCode.BROKEN_PIPE) from None
            self._flush_stdout()
            raise
        self._flush_stdout()
        return result

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        self._no_color = NO_COLOR_FLAG in args
        with self._failures_reported():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with self._failures_reported():
            return super().invoke(ctx)

    @contextmanager
    def _failures_reported(self) -> Iterator[None]:
        """Usage errors, Ctrl-C, a closed stdout and a declined prompt, as exit codes."""
        try:
            yield
        except NoArgsIsHelpError:
            raise  # the help is already shown; Typer exits 2
        except ClickException as error:
            self._error(describe_usage_error(error))
            raise typer.Exit(error.exit_code) from None
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(ExitCode.BROKEN_PIPE) from None
        except KeyboardInterrupt:
            self._error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except typer.Abort as error:
            # Only a prompt aborts, and the cursor is still on its line: end that line first.
            if _interrupted(error):
                self._error("interrupted", after_prompt=True)
                raise typer.Exit(ExitCode.INTERRUPTED) from None
            self._error("aborted", after_prompt=True)
            raise typer.Exit(ExitCode.ERROR) from None

    def _error(self, message: str, after_prompt: bool = False) -> None:
        try:
            if after_prompt:
                typer.echo("", err=True)
            Printer(no_color=self._no_color).error(message)
        except BrokenPipeError:
            pass  # stderr is gone too: the exit code says it all

    @staticmethod
    def _flush_stdout() -> None:
        """Flush now, so a reader that went away is seen here rather than at interpreter exit
        (where Python would print `Exception ignored … BrokenPipeError` and exit 120)."""
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
            raise SystemExit(ExitCode.BROKEN_PIPE) from None
        except (OSError, ValueError):
            pass
