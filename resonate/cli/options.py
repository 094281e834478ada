"""The global client options of cli.md §1, accepted before the group and on every command.

One list of parameter declarations (`GLOBAL_PARAMETERS`) serves both places:

- `root_callback` takes them on `resonate` itself and stores a `GlobalOptions` in the context;
- `client_command` adds them to a command's signature, so `resonate promises get x -S URL`
  works too. A value typed on the command line of the subcommand overrides the root's (the
  later one wins); environment variables and defaults are already applied by the root.

A command decorated with `client_command` receives the merged `GlobalOptions` as its first
argument, and its API and CLI errors are printed and turned into exit codes (cli.md §3).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec

import typer

from resonate.cli.errors import CliError, exit_code_for
from resonate.cli.output import OutputFormat, Printer, describe_error

if TYPE_CHECKING:
    from resonate.client import ResonateClient

DEFAULT_SERVER_URL = "http://localhost:8001"
# Every request's timeout (cli.md §1); a module attribute so that tests can shorten it.
REQUEST_TIMEOUT_SECONDS = 30.0
# Set to see the traceback of a failure the CLI did not expect instead of its one-line error.
DEBUG_ENVIRONMENT_VARIABLE = "RESONATE_DEBUG"
GLOBAL_PANEL = "Global options"
_CONTEXT_KEY = "resonate.global_options"
_CONTEXT_PARAMETER = "_resonate_context"


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    server: str = DEFAULT_SERVER_URL
    token: str | None = None
    username: str | None = None
    password: str | None = None
    output: OutputFormat = OutputFormat.table
    no_color: bool = False

    def printer(self) -> Printer:
        return Printer(self.output, no_color=self.no_color)

    def client(self) -> ResonateClient:
        """A client for `server`; raises a usage error (exit 2) for invalid settings."""
        from resonate.client import Credentials, ResonateClient

        if self.token and self.username:
            raise typer.BadParameter(
                "a token and a username are exclusive", param_hint="'--token' / '--username'"
            )
        if not self.server.startswith(("http://", "https://")):
            raise typer.BadParameter(
                f"{self.server!r} is not an http:// or https:// URL", param_hint="'--server'"
            )
        credentials = Credentials(self.token, self.username, self.password)
        import httpx

        try:
            return ResonateClient(
                self.server, credentials=credentials, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except httpx.InvalidURL as error:
            raise typer.BadParameter(
                f"invalid URL {self.server!r}: {error}", param_hint="'--server'"
            ) from None


ServerOption = Annotated[
    str,
    typer.Option(
        "--server",
        "-S",
        envvar="RESONATE_SERVER",
        metavar="URL",
        help="API base URL.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        "-T",
        envvar="RESONATE_TOKEN",
        help="JWT, sent as 'Authorization: Bearer'.",
        show_default=False,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        "--username",
        "-U",
        envvar="RESONATE_USERNAME",
        help="Basic auth user.",
        show_default=False,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        "-P",
        envvar="RESONATE_PASSWORD",
        help="Basic auth password.",
        show_default=False,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="Output format.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
NoColorOption = Annotated[
    bool,
    typer.Option(
        "--no-color",
        help="Plain output (also when NO_COLOR is set).",
        rich_help_panel=GLOBAL_PANEL,
    ),
]


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


GLOBAL_PARAMETERS: tuple[inspect.Parameter, ...] = (
    _keyword("server", ServerOption, DEFAULT_SERVER_URL),
    _keyword("token", TokenOption, None),
    _keyword("username", UsernameOption, None),
    _keyword("password", PasswordOption, None),
    _keyword("output", OutputOption, OutputFormat.table),
    _keyword("no_color", NoColorOption, False),
)
_CONTEXT = _keyword(_CONTEXT_PARAMETER, typer.Context, inspect.Parameter.empty)


def _given_on_command_line(context: typer.Context, name: str) -> bool:
    source = context.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def merged_options(context: typer.Context, values: dict[str, Any]) -> GlobalOptions:
    """The root's options, overridden by what this command's own command line gave."""
    inherited: GlobalOptions | None = context.meta.get(_CONTEXT_KEY)
    if inherited is None:
        return GlobalOptions(**values)
    overrides = {
        name: value for name, value in values.items() if _given_on_command_line(context, name)
    }
    return replace(inherited, **overrides)


def root_callback() -> Callable[..., None]:
    """The callback of the root app: takes the global options before the command group."""

    def callback(**values: Any) -> None:
        context: typer.Context = values.pop(_CONTEXT_PARAMETER)
        context.meta[_CONTEXT_KEY] = GlobalOptions(**values)

    callback.__signature__ = inspect.Signature([_CONTEXT, *GLOBAL_PARAMETERS])  # type: ignore[attr-defined]
    return callback


P = ParamSpec("P")

# The global options a command that never talks to a server takes (`version`).
OUTPUT_PARAMETERS: tuple[inspect.Parameter, ...] = tuple(
    parameter for parameter in GLOBAL_PARAMETERS if parameter.name in ("output", "no_color")
)


def client_command(function: Callable[Concatenate[GlobalOptions, P], None]) -> Callable[P, None]:
    """Give a command the global options and the CLI's error handling.

    The decorated function takes a `GlobalOptions` first; Typer sees its other parameters plus
    the global ones.
    """
    return _with_global_options(function, GLOBAL_PARAMETERS)


def output_command(function: Callable[Concatenate[GlobalOptions, P], None]) -> Callable[P, None]:
    """`client_command` for a command without network: only `--output` and `--no-color`."""
    return _with_global_options(function, OUTPUT_PARAMETERS)


def _with_global_options(
    function: Callable[Concatenate[GlobalOptions, P], None],
    global_parameters: tuple[inspect.Parameter, ...],
) -> Callable[P, None]:
    signature = inspect.signature(function, eval_str=True)
    own_parameters = list(signature.parameters.values())[1:]
    names = tuple(parameter.name for parameter in global_parameters)

    @functools.wraps(function)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        context: typer.Context = kwargs.pop(_CONTEXT_PARAMETER)  # type: ignore[assignment]
        values = {name: kwargs.pop(name) for name in names}
        options = merged_options(context, values)
        run_reporting_errors(options, lambda: function(options, *args, **kwargs))

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own_parameters, *global_parameters, _CONTEXT]
    )
    return command


def run_reporting_errors(options: GlobalOptions, action: Callable[[], None]) -> None:
    """Run `action`; print a failure as one `error:` line and exit with its code.

    Usage errors, Ctrl-C, a closed stdout and declined prompts go on to the root command
    (`resonate.cli.root`), which reports them the same way. Any other exception is a failure
    nobody expected (a server answering JSON of the wrong shape, or a bug): one line too, unless
    RESONATE_DEBUG is set, which shows its traceback.
    """
    try:
        action()
    except (typer.TyperException, typer.Exit, typer.Abort, BrokenPipeError):
        raise
    except Exception as error:
        # Imported late: httpx is loaded only once a command has talked to a server.
        from resonate.client import ResonateClientError

        if isinstance(error, CliError | OSError | ResonateClientError):
            message = describe_error(error)
        elif os.environ.get(DEBUG_ENVIRONMENT_VARIABLE):
            raise
        else:
            message = (
                f"unexpected failure: {type(error).__name__}: {error} "
                f"(set {DEBUG_ENVIRONMENT_VARIABLE}=1 for the traceback)"
            )
        options.printer().error(message)
        raise typer.Exit(exit_code_for(error)) from None
