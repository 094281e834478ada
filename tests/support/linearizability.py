"""A small linearizability checker for one promise id (Wing & Gong style search).

A history is a list of operations with invoke/response times and the observed response. The
checker looks for a sequential order that respects real time (an operation that returned before
another was invoked comes first) and in which a model of the promise gives every observed
response. The model implements the rules of http-api.md §2.4 and §2.6 for promises whose
deadline is far away.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

CODES = {
    "RESOLVED": 40301,
    "REJECTED": 40302,
    "REJECTED_CANCELED": 40303,
    "REJECTED_TIMEDOUT": 40304,
}


@dataclass(frozen=True)
class Op:
    kind: str  # "create" | "complete" | "read"
    key: str | None
    strict: bool
    state: str | None  # requested state for complete
    invoked: float
    returned: float
    status: int  # observed
    observed: str | None  # observed promise state, or error code as text


# Model state: None (absent) or (state, create_key, complete_key)
Model = tuple[str, str | None, str | None] | None


def apply(model: Model, op: Op) -> tuple[Model, int, str | None]:
    """The model's answer (status, state-or-code) and next state for ``op``."""
    if op.kind == "read":
        if model is None:
            return model, 404, "40400"
        return model, 200, model[0]
    if op.kind == "create":
        if model is None:
            return ("PENDING", op.key, None), 201, "PENDING"
        matched = op.key is not None and op.key == model[1]
        if matched and (not op.strict or model[0] == "PENDING"):
            return model, 200, model[0]
        return model, 409, "40900"
    # complete
    if model is None:
        return model, 404, "40400"
    state, create_key, complete_key = model
    if state == "PENDING":
        return (op.state, create_key, op.key), 201, op.state
    matched = op.key is not None and op.key == complete_key
    if op.strict:
        ok = matched and state == op.state
    else:
        ok = matched or state == "REJECTED_TIMEDOUT"
    if ok:
        return model, 200, state
    return model, 403, str(CODES[state])


def is_linearizable(history: list[Op]) -> bool:
    ops = tuple(sorted(history, key=lambda op: op.invoked))
    everything = (1 << len(ops)) - 1

    @cache
    def search(done: int, model: Model) -> bool:
        if done == everything:
            return True
        pending = [i for i in range(len(ops)) if not done & (1 << i)]
        horizon = min(ops[i].returned for i in pending)
        for i in pending:
            op = ops[i]
            if op.invoked > horizon:  # some pending op returned before this one began
                continue
            after, status, observed = apply(model, op)
            if status == op.status and observed == op.observed and search(done | (1 << i), after):
                return True
        return False

    return search(0, None)
