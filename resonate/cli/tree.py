"""`resonate tree`: the call graph under a root promise (cli.md §10), drawn as text.

How the graph is found (by tags, else by ids) lives in `resonate.calltree`, which the TUI's
detail view uses too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate import calltree
from resonate.calltree import Node, Search, label, walk_sync
from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import OutputFormat, color_enabled
from resonate.cli.promises import PromiseId

if TYPE_CHECKING:
    from resonate.client import ResonateClient

ICONS = {"PENDING": "🟡", "RESOLVED": "🟢"}
REJECTED_ICON = "🔴"
PLAIN_ICONS = {"PENDING": "*", "RESOLVED": "+"}
PLAIN_REJECTED_ICON = "x"


def call_graph(client: ResonateClient, root_id: str) -> Node:
    root = client.get_promise(root_id).body

    def search(request: Search) -> Iterable[dict[str, Any]]:
        return client.iter_promises(request.pattern, tags=request.tags)

    return walk_sync(calltree.call_graph(root), search)


# --- rendering ----------------------------------------------------------------------------------


def _icon(state: str, plain: bool) -> str:
    if plain:
        return PLAIN_ICONS.get(state, PLAIN_REJECTED_ICON)
    return ICONS.get(state, REJECTED_ICON)


def _visible_children(node: Node, level: int, depth: int | None) -> list[Node]:
    return node.children if depth is None or level < depth else []


def tree_lines(tree: Node, depth: int | None, plain: bool, dim_labels: bool = False) -> list[str]:
    """`<icon> <id> <label>` lines, children drawn under their parent with box characters."""
    lines: list[str] = []

    def line(node: Node, lead: str) -> str:
        text = f"{lead}{_icon(node.state, plain)} {node.id}"
        node_label = label(node.promise)
        if node_label:
            text += " " + (typer.style(node_label, dim=True) if dim_labels else node_label)
        return text

    def walk(node: Node, prefix: str, level: int) -> None:
        children = _visible_children(node, level, depth)
        for index, child in enumerate(children):
            last = index == len(children) - 1
            lines.append(line(child, prefix + ("└── " if last else "├── ")))
            walk(child, prefix + ("    " if last else "│   "), level + 1)

    lines.append(line(tree, ""))
    walk(tree, "", 0)
    return lines


def tree_document(tree: Node, depth: int | None, level: int = 0) -> dict[str, Any]:
    """The nested `{"id", "state", "label", "children"}` of `-o json`."""
    return {
        "id": tree.id,
        "state": tree.state,
        "label": label(tree.promise),
        "children": [
            tree_document(child, depth, level + 1)
            for child in _visible_children(tree, level, depth)
        ],
    }


def tree_ids(tree: Node, depth: int | None, level: int = 0) -> Iterable[str]:
    yield tree.id
    for child in _visible_children(tree, level, depth):
        yield from tree_ids(child, depth, level + 1)


def tree(
    options: GlobalOptions,
    promise_id: PromiseId,
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", min=0, metavar="N", help="Show N levels below the root (default: all)."
        ),
    ] = None,
) -> None:
    """Print the call graph under a root promise."""
    with options.client() as client:
        graph = call_graph(client, promise_id)
    if options.output is OutputFormat.table:
        plain = options.no_color or bool(os.environ.get("NO_COLOR"))
        dim = color_enabled(options.no_color, typer.get_text_stream("stdout"))
        for text in tree_lines(graph, depth, plain, dim_labels=dim):
            typer.echo(text)
    elif options.output is OutputFormat.id:
        for identifier in tree_ids(graph, depth):
            typer.echo(identifier)
    else:
        options.printer().show_document(tree_document(graph, depth), "")


tree_command = client_command(tree)
