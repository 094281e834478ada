"""The label of a promise in a call tree (`resonate tree`, the TUI's detail view), from what the
SDKs really store. The Python SDK 0.4.12 shapes below are copied from promises its workers
created (tests/sdk/test_sdk_cli.py runs the real workflow)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from resonate.calltree import INT64_MAX, label


def param(document: Any) -> dict[str, str]:
    return {"data": base64.b64encode(json.dumps(document).encode()).decode()}


def promise(**fields: Any) -> dict[str, Any]:
    return {"id": "wf.1", "state": "RESOLVED", "param": {}, "value": {}, **fields}


SQUARE = param({"func": "square", "args": [3], "kwargs": {}})

CASES = [
    ("a durable sleep (ctx.sleep)",
     promise(timeout=1_796_457_252_358, tags={"resonate:timeout": "true"}), "(sleep)"),
    ("a Python SDK remote call (ctx.rfc/rfi): its param and the invoke tag",
     promise(param=SQUARE, timeout=INT64_MAX, tags={"resonate:invoke": "poll://workers"}),
     "(rpc square)"),
    ("a root started by `resonate invoke` or an SDK's run/rpc",
     promise(param=param({"func": "fanout", "args": [], "kwargs": {}, "version": 1}),
             timeout=1_796_460_851_259, tags={"resonate:invoke": "poll://any@workflows"}),
     "(rpc fanout)"),
    ("a routed promise whose param names no function",
     promise(param={"data": "bm90IGpzb24="}, timeout=1, tags={"resonate:invoke": "default"}),
     "(rpc)"),
    ("a Python SDK local step (ctx.lfc): nothing but an id and a never-ending timeout",
     promise(timeout=INT64_MAX, idempotencyKeyForCreate="83e6"), "(run)"),
    ("the TypeScript SDK's global scope",
     promise(param=SQUARE, timeout=1, tags={"resonate:scope": "global"}), "(rpc square)"),
    ("the TypeScript SDK's local scope",
     promise(param=SQUARE, timeout=1, tags={"resonate:scope": "local"}), "(run square)"),
    ("a local scope without a function", promise(timeout=1, tags={"resonate:scope": "local"}),
     "(run)"),
    ("a param naming a function, nothing else", promise(param=SQUARE, timeout=1), "square"),
    ("a plain promise", promise(timeout=1_796_460_851_259), ""),
    ("a never-ending promise with tags of its own is no SDK step",
     promise(timeout=INT64_MAX, tags={"team": "ops"}), ""),
    ("a never-ending promise with data is no SDK step",
     promise(timeout=INT64_MAX, param={"data": "aGk="}), ""),
    # The 2026-04-01 protocol (protocol-2026.md §4.4): resonate:timer and resonate:target.
    ("a 2026 durable sleep (its target too, as the TypeScript SDK 0.11 sets)",
     promise(timeout=1, tags={"resonate:timer": "true", "resonate:target": "poll://any@default",
                              "resonate:scope": "global"}), "(sleep)"),
    ("a 2026 timer tag that is not true is no sleep",
     promise(timeout=1, tags={"resonate:timer": "false"}), ""),
    ("a 2026 remote call: scope global and a target",
     promise(param=SQUARE, timeout=1, tags={"resonate:target": "poll://any@g",
                                            "resonate:scope": "global"}), "(rpc square)"),
    ("a 2026 promise with a target and no scope",
     promise(param=SQUARE, timeout=1, tags={"resonate:target": "poll://any@g"}), "(rpc square)"),
    ("a 2026 local step", promise(param=SQUARE, timeout=1, tags={"resonate:scope": "local"}),
     "(run square)"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "document", "expected"), CASES, ids=[case[0] for case in CASES])
def test_labels_follow_what_the_sdk_stores(
    rule: str, document: dict[str, Any], expected: str
) -> None:
    assert label(document) == expected, rule
