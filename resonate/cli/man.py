"""`resonate man [COMMAND]`: the manual page of a command, rendered from the live command tree.

The rendering (`resonate.cli.manpage`) is imported only when the command runs, so that
`resonate --help` and completion do not pay for it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Annotated

import typer


def man_command(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND",
            help="The command whose page to show, e.g. 'promises get'; none for resonate(1).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show the manual page of resonate or of one of its commands.

    On a terminal the page opens in man(1); otherwise its roff source is printed.
    """
    from resonate.cli.manpage import find, render_page, root_node

    root = root_node(ctx.find_root().command)
    node = find(root, command or [])
    if node is None:
        raise typer.BadParameter(f"no command {' '.join(command or [])!r}", param_hint="'COMMAND'")
    page = render_page(node, root)
    viewer = shutil.which("man")
    if viewer is None or not sys.stdout.isatty():
        sys.stdout.write(page)
        return
    raise typer.Exit(subprocess.run([viewer, "-l", "-"], input=page.encode()).returncode)
