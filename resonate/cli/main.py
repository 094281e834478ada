"""The `resonate` command: the root Typer app and the registration of every command group.

Importing this module must stay cheap (cli.md: `resonate --help` and completion are fast): the
server, the store drivers, Textual and even httpx are imported only inside the commands that
use them. `tests/cli/test_import_hygiene.py` checks this.
"""

from __future__ import annotations

import platform
from typing import Any

import typer
from typer.core import TyperCommand

from resonate import __version__
from resonate.cli import doctor, invoke, locks, man, promises, schedules, tasks, tree, tui
from resonate.cli.examples import attach_examples
from resonate.cli.options import GlobalOptions, output_command, root_callback
from resonate.cli.root import ResonateGroup

_RAW_ARGUMENTS: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    name="resonate",
    cls=ResonateGroup,
    help="Resonate durable-promises server and operator CLI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.callback()(root_callback())


# --- server commands: implemented in resonate.cli.server_cmds / config_cmd --------------------


def _server_options_help() -> str:
    try:
        from resonate.server.config import format_options_help
    except ImportError:
        return "Options: see docs/configuration.md for every configuration option and flag."
    return format_options_help()


class ServerHelpCommand(TyperCommand):
    """A command whose help ends with the server's option list, built only when shown."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        formatter.write("\n" + _server_options_help().rstrip("\n") + "\n")


@app.command(
    "serve",
    cls=ServerHelpCommand,
    context_settings=_RAW_ARGUMENTS,
    add_help_option=True,
)
def serve(ctx: typer.Context) -> None:
    """Run the server (--config/-c PATH plus one flag per configuration option)."""
    from resonate.cli.server_cmds import run_serve

    raise typer.Exit(run_serve(list(ctx.args), dev=False))


@app.command("dev", cls=ServerHelpCommand, context_settings=_RAW_ARGUMENTS)
def dev(ctx: typer.Context) -> None:
    """Run the server on an in-memory SQLite store; all data is lost on exit."""
    from resonate.cli.server_cmds import run_serve

    raise typer.Exit(run_serve(list(ctx.args), dev=True))


migrate_app = typer.Typer(
    name="migrate", help="Inspect and apply database schema migrations.", no_args_is_help=True
)
app.add_typer(migrate_app, name="migrate")


def _migrate(action: str, ctx: typer.Context) -> None:
    from resonate.cli.server_cmds import run_migrate

    raise typer.Exit(run_migrate(action, list(ctx.args)))


@migrate_app.command("status", context_settings=_RAW_ARGUMENTS)
def migrate_status(ctx: typer.Context) -> None:
    """Print the schema version, the latest known version and the pending migrations."""
    _migrate("status", ctx)


@migrate_app.command("dry-run", context_settings=_RAW_ARGUMENTS)
def migrate_dry_run(ctx: typer.Context) -> None:
    """Print the SQL of the pending migrations without running it."""
    _migrate("dry-run", ctx)


@migrate_app.command("up", context_settings=_RAW_ARGUMENTS)
def migrate_up(ctx: typer.Context) -> None:
    """Apply the pending migrations in one transaction."""
    _migrate("up", ctx)


db_app = typer.Typer(
    name="db",
    help="Housekeeping of a SQLite store: online backups and VACUUM.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command(
    "backup", context_settings=_RAW_ARGUMENTS, options_metavar="PATH [--force] [STORE FLAGS]"
)
def db_backup(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Overwrite PATH if it exists."),
) -> None:
    """Copy the SQLite database to PATH while the server runs (SQLite's online backup)."""
    from resonate.cli.db_cmds import run_backup

    raise typer.Exit(run_backup(list(ctx.args), force=force))


@db_app.command("vacuum", context_settings=_RAW_ARGUMENTS, options_metavar="[STORE FLAGS]")
def db_vacuum(ctx: typer.Context) -> None:
    """Rebuild the SQLite file to give back the space of deleted rows; server stopped."""
    from resonate.cli.db_cmds import run_vacuum

    raise typer.Exit(run_vacuum(list(ctx.args)))


config_app = typer.Typer(
    name="config", help="Inspect the server configuration.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("show", cls=ServerHelpCommand, context_settings=_RAW_ARGUMENTS)
def config_show(ctx: typer.Context) -> None:
    """Print the effective server configuration, secrets masked (--sources: each origin)."""
    from resonate.cli.config_cmd import run_config_show

    raise typer.Exit(run_config_show(list(ctx.args)))


# --- client commands ----------------------------------------------------------------------------

app.add_typer(promises.app, name="promises")
app.add_typer(schedules.app, name="schedules")
app.add_typer(tasks.app, name="tasks")
app.add_typer(locks.app, name="locks")
app.command("invoke")(invoke.invoke_command)
app.command("tree")(tree.tree_command)
app.command("tui")(tui.tui_command)
app.command("doctor")(doctor.doctor_command)


# --- version ------------------------------------------------------------------------------------


@app.command("version")
@output_command
def version(options: GlobalOptions) -> None:
    """Print the version of resonate (no network)."""
    document = {"version": __version__, "python": platform.python_version()}
    options.printer().show_document(document, f"resonate {__version__}")


app.command("man")(man.man_command)
# Last, once every command is registered: the --help epilogs from resonate.cli.examples.
attach_examples(app)


def main() -> None:
    app(prog_name="resonate")
