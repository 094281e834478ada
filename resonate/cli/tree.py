"""`resonate tree`: the call graph under a root promise (cli.md §10).

Two ways to find the graph, because SDKs differ:

- by tags: SDKs that tag each promise with `resonate:root` and `resonate:parent` are found with
  the search `id=*, tags[resonate:root]=<root>`; a child with `resonate:scope=global` is the root
  of its own invocation, whose promises are searched for in turn;
- by ids: the Python SDK (0.4.x) names the children of `p` `p.1`, `p.2`, … and sets neither tag,
  so when the tag search finds nothing below the root, the search `<root>.*` is nested by id.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resonate.cli.options import GlobalOptions, client_command
from resonate.cli.output import OutputFormat, color_enabled
from resonate.cli.promises import PromiseId

if TYPE_CHECKING:
    from resonate.client import ResonateClient

ROOT_TAG = "resonate:root"
PARENT_TAG = "resonate:parent"
SCOPE_TAG = "resonate:scope"
TIMER_TAG = "resonate:timeout"

ICONS = {"PENDING": "🟡", "RESOLVED": "🟢"}
REJECTED_ICON = "🔴"
PLAIN_ICONS = {"PENDING": "*", "RESOLVED": "+"}
PLAIN_REJECTED_ICON = "x"

_DIGITS = re.compile(r"(\d+)")


@dataclass(slots=True)
class Node:
    promise: dict[str, Any]
    children: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.promise.get("id", ""))

    @property
    def state(self) -> str:
        return str(self.promise.get("state", ""))


def promise_function(promise: dict[str, Any]) -> str | None:
    """The `func` of the promise's param, when the param is the JSON an SDK invocation sends."""
    from resonate.client import decode_value_data

    try:
        document = json.loads(decode_value_data(promise.get("param")))
    except ValueError:
        return None
    func = document.get("func") if isinstance(document, dict) else None
    return func if isinstance(func, str) and func else None


def label(promise: dict[str, Any]) -> str:
    """`(sleep)` for timers, `(rpc f)` / `(run f)` by scope, else the function name, if any."""
    tags = promise.get("tags") or {}
    func = promise_function(promise)
    if tags.get(TIMER_TAG):
        return "(sleep)"
    scope = tags.get(SCOPE_TAG)
    if scope in ("global", "local"):
        kind = "rpc" if scope == "global" else "run"
        return f"({kind} {func})" if func else f"({kind})"
    return func or ""


def _creation_order(promise: dict[str, Any]) -> tuple[int, list[tuple[int, int | str]]]:
    """Oldest first; ties broken by id with numbers compared as numbers (`p.2` before `p.10`)."""
    created = promise.get("createdOn")
    parts = _DIGITS.split(str(promise.get("id", "")))
    natural = [(1, int(part)) if part.isdigit() else (0, part) for part in parts if part]
    return (created if isinstance(created, int) else 0, natural)


def _build(root: dict[str, Any], parent_of: dict[str, str], found: dict[str, Any]) -> Node:
    """Nest the found promises under their parents; unknown parents hang off the root."""
    nodes = {promise_id: Node(promise) for promise_id, promise in found.items()}
    tree = Node(root)
    nodes[tree.id] = tree
    for promise in sorted(found.values(), key=_creation_order):
        child = nodes[str(promise["id"])]
        parent = nodes.get(parent_of.get(child.id, tree.id), tree)
        parent.children.append(child)
    return _detach_cycles(tree)


def _detach_cycles(tree: Node) -> Node:
    """Keep only what is reachable from the root, each promise once (tags can be anything)."""
    seen = {tree.id}
    stack = [tree]
    while stack:
        node = stack.pop()
        node.children = [child for child in node.children if child.id not in seen]
        seen.update(child.id for child in node.children)
        stack.extend(node.children)
    return tree


def _search_all(
    client: ResonateClient, pattern: str, tags: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    return list(client.iter_promises(pattern, tags=tags))


def graph_by_tags(client: ResonateClient, root: dict[str, Any]) -> Node | None:
    """The graph from `resonate:root`/`resonate:parent` tags, or None when nothing is tagged."""
    root_id = str(root["id"])
    found: dict[str, dict[str, Any]] = {}
    parent_of: dict[str, str] = {}
    searched: set[str] = set()
    roots = deque([root_id])
    while roots:
        invocation = roots.popleft()
        if invocation in searched:
            continue
        searched.add(invocation)
        for promise in _search_all(client, "*", {ROOT_TAG: invocation}):
            promise_id = str(promise["id"])
            if promise_id == root_id:
                continue
            found[promise_id] = promise
            tags = promise.get("tags") or {}
            parent = tags.get(PARENT_TAG)
            if parent and parent != promise_id:
                parent_of[promise_id] = parent
            if tags.get(SCOPE_TAG) == "global" and promise_id != invocation:
                roots.append(promise_id)
    if not found:
        return None
    return _build(root, parent_of, found)


def graph_by_ids(client: ResonateClient, root: dict[str, Any]) -> Node:
    """The graph from ids: `<parent>.<n>` is a child of `<parent>`."""
    root_id = str(root["id"])
    prefix = root_id + "."
    found = {
        str(promise["id"]): promise
        for promise in _search_all(client, prefix + "*")
        if str(promise.get("id", "")).startswith(prefix)
    }
    parent_of: dict[str, str] = {}
    for promise_id in found:
        parent = promise_id.rsplit(".", 1)[0]
        # A missing intermediate promise: hang the child off its nearest known ancestor.
        while parent != root_id and parent not in found:
            parent = parent.rsplit(".", 1)[0]
        parent_of[promise_id] = parent
    return _build(root, parent_of, found)


def call_graph(client: ResonateClient, root_id: str) -> Node:
    root = client.get_promise(root_id).body
    return graph_by_tags(client, root) or graph_by_ids(client, root)


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
