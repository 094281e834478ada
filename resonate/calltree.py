"""The call graph under a root promise, shared by `resonate tree` and the TUI's detail view.

Three ways to find the graph, because SDKs differ:

- by tags: SDKs that tag each promise with `resonate:root` and `resonate:parent` are found with
  the search `id=*, tags[resonate:root]=<root>`; a child with `resonate:scope=global` is the root
  of its own invocation, whose promises are searched for in turn;
- by origin: the SDKs of the 2026-04-01 protocol tag every promise of a workflow, remote
  children and theirs included, with `resonate:origin` (the root's id) and `resonate:parent`,
  so one search `id=*, tags[resonate:origin]=<origin>` finds the whole graph (the REST search
  sees every promise, whichever protocol created it); asked for a promise below the origin,
  the walk keeps the part of that graph under it;
- by ids: the Python SDK (0.4.x) names the children of `p` `p.1`, `p.2`, … and sets neither tag,
  so when the tag search finds nothing below the root, the search `<root>.*` is nested by id.

The walk is written once, without I/O, as a generator that yields the searches it needs
(`Search`) and receives their results; `walk_sync` and `walk_async` drive it with the
synchronous or the asynchronous client.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ROOT_TAG = "resonate:root"
PARENT_TAG = "resonate:parent"
SCOPE_TAG = "resonate:scope"
TIMER_TAG = "resonate:timeout"
INVOKE_TAG = "resonate:invoke"
# The 2026-04-01 protocol's names (protocol-2026.md §4.4).
ORIGIN_TAG = "resonate:origin"
TIMER_2026_TAG = "resonate:timer"
TARGET_TAG = "resonate:target"
# The timeout the Python SDK gives promises that never time out (its `sys.maxsize`).
INT64_MAX = 9_223_372_036_854_775_807

_DIGITS = re.compile(r"(\d+)")

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Search:
    """Every promise matching `pattern` (and `tags`), all pages."""

    pattern: str
    tags: dict[str, str] | None = None


Walk = Generator[Search, list[JsonObject], "Node"]


@dataclass(slots=True)
class Node:
    promise: JsonObject
    children: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.promise.get("id", ""))

    @property
    def state(self) -> str:
        return str(self.promise.get("state", ""))

    def walk(self) -> Iterator[tuple[int, Node]]:
        """Every node with its depth, parents before children."""
        stack: list[tuple[int, Node]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.children))


def promise_function(promise: JsonObject) -> str | None:
    """The `func` of the promise's param, when the param is the JSON an SDK invocation sends."""
    from resonate.client import decode_value_data

    try:
        document = json.loads(decode_value_data(promise.get("param")))
    except ValueError:
        return None
    func = document.get("func") if isinstance(document, dict) else None
    return func if isinstance(func, str) and func else None


def is_sdk_local_step(promise: JsonObject) -> bool:
    """What the Python SDK 0.4 stores for a durable local step (`ctx.lfc`/`ctx.lfi`): an id
    and nothing else, no param, no tags, a timeout of int64 max. The function's name is not
    stored (a bare `ctx.promise()` looks the same)."""
    param = promise.get("param") or {}
    return (
        not promise.get("tags")
        and not param.get("data")
        and not param.get("headers")
        and promise.get("timeout") == INT64_MAX
    )


def label(promise: JsonObject) -> str:
    """How a promise shows in a call tree, from what the SDKs store:

    - `(sleep)`: a durable sleep (`resonate:timeout`; `resonate:timer=true` in 2026);
    - `(rpc f)` / `(run f)`: a remote or local call by `resonate:scope` (the TypeScript SDK,
      and every SDK of the 2026 protocol);
    - `(rpc f)`: a promise routed to a worker (`resonate:invoke`; `resonate:target` in 2026):
      the Python SDK's remote calls (`ctx.rfc`/`ctx.rfi`), `resonate invoke` and an SDK's
      top-level `run`/`rpc`;
    - `(run)`: a Python SDK local step, which stores no function name (`is_sdk_local_step`);
    - `f`: the function of any other param an SDK would decode; else nothing.
    """
    tags = promise.get("tags") or {}
    func = promise_function(promise)
    if tags.get(TIMER_TAG) or tags.get(TIMER_2026_TAG) == "true":
        return "(sleep)"
    scope = tags.get(SCOPE_TAG)
    if scope in ("global", "local"):
        kind = "rpc" if scope == "global" else "run"
        return f"({kind} {func})" if func else f"({kind})"
    if tags.get(INVOKE_TAG) or tags.get(TARGET_TAG):
        return f"(rpc {func})" if func else "(rpc)"
    if func:
        return func
    return "(run)" if is_sdk_local_step(promise) else ""


def _creation_order(promise: JsonObject) -> tuple[int, list[tuple[int, int | str]]]:
    """Oldest first; ties broken by id with numbers compared as numbers (`p.2` before `p.10`)."""
    created = promise.get("createdOn")
    parts = _DIGITS.split(str(promise.get("id", "")))
    natural = [(1, int(part)) if part.isdigit() else (0, part) for part in parts if part]
    return (created if isinstance(created, int) else 0, natural)


def _build(root: JsonObject, parent_of: dict[str, str], found: dict[str, JsonObject]) -> Node:
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


def graph_by_tags(root: JsonObject) -> Generator[Search, list[JsonObject], Node | None]:
    """The graph from `resonate:root`/`resonate:parent` tags, or None when nothing is tagged."""
    root_id = str(root["id"])
    found: dict[str, JsonObject] = {}
    parent_of: dict[str, str] = {}
    searched: set[str] = set()
    roots = deque([root_id])
    while roots:
        invocation = roots.popleft()
        if invocation in searched:
            continue
        searched.add(invocation)
        for promise in (yield Search("*", {ROOT_TAG: invocation})):
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


def graph_by_origin(root: JsonObject) -> Generator[Search, list[JsonObject], Node | None]:
    """The graph from `resonate:origin`/`resonate:parent` tags (the 2026 protocol), or None when
    no other promise has the origin. Below the origin, only the promises under `root` count."""
    root_id = str(root["id"])
    tags = root.get("tags") or {}
    origin = tags.get(ORIGIN_TAG)
    if not isinstance(origin, str) or not origin:
        origin = root_id
    found: dict[str, JsonObject] = {}
    parent_of: dict[str, str] = {}
    for promise in (yield Search("*", {ORIGIN_TAG: origin})):
        promise_id = str(promise["id"])
        if promise_id == root_id:
            continue
        found[promise_id] = promise
        parent = (promise.get("tags") or {}).get(PARENT_TAG)
        if isinstance(parent, str) and parent and parent != promise_id:
            parent_of[promise_id] = parent
    if origin != root_id:
        found = {key: promise for key, promise in found.items() if _under(key, root_id, parent_of)}
    if not found:
        return None
    return _build(root, parent_of, found)


def _under(promise_id: str, ancestor: str, parent_of: dict[str, str]) -> bool:
    """Whether following `parent_of` from `promise_id` reaches `ancestor` (cycles end it)."""
    seen = {promise_id}
    current = parent_of.get(promise_id)
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parent_of.get(current)
    return False


def graph_by_ids(root: JsonObject) -> Walk:
    """The graph from ids: `<parent>.<n>` is a child of `<parent>`."""
    root_id = str(root["id"])
    prefix = root_id + "."
    found = {
        str(promise["id"]): promise
        for promise in (yield Search(prefix + "*"))
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


def call_graph(root: JsonObject) -> Walk:
    """The graph under `root` (a promise object): by tags, else by origin, else by ids."""
    tagged = yield from graph_by_tags(root)
    if tagged is not None:
        return tagged
    by_origin = yield from graph_by_origin(root)
    if by_origin is not None:
        return by_origin
    return (yield from graph_by_ids(root))


def walk_sync(walk: Walk, search: Callable[[Search], Iterable[JsonObject]]) -> Node:
    """Run a walk, answering each search with `search` (e.g. the synchronous client's pager)."""
    try:
        request = next(walk)
        while True:
            request = walk.send(list(search(request)))
    except StopIteration as done:
        result: Node = done.value
        return result


async def walk_async(walk: Walk, search: Callable[[Search], AsyncIterator[JsonObject]]) -> Node:
    """`walk_sync` for an asynchronous search (the TUI's client)."""
    try:
        request = next(walk)
        while True:
            request = walk.send([promise async for promise in search(request)])
    except StopIteration as done:
        result: Node = done.value
        return result
