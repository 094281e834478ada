"""A Hypothesis state machine of the promise API against a real server process, on each store:
random runs of create, complete, read and search on a few ids, with and without idempotency keys,
`strict` spelled every way D16 allows, deadlines in the future and in the past, timer tags, and
a model that predicts every answer.

The model holds each promise in the notation of transitions.md (`P`, `P!`, `P!t`, `R`, `J`,
`C`, `T`, `Rt`) and takes every create and complete outcome from the tables the conformance
suite already runs (`tests/server/test_transitions.py`), so the rules are written down once.
Deadlines are an hour ahead or already past, so the system clock cannot move a promise between
steps except by timing it out, which every access does first anyway (and the background loop's
earlier timeout answers the same)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from tests.server.promise_setup import HOUR_MS, STATE_AFTER, TIMER_TAGS, now_ms
from tests.server.test_transitions import complete_cases, create_cases

pytestmark = pytest.mark.fuzz

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    # No shrinking: replaying a run step by step against a server takes minutes; the first
    # failing run of at most 20 steps is short enough to read.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)

Row = tuple[int, str, int | None]  # status, state after (transitions.md notation), error code


def outcome_table(cases: list[Any]) -> dict[tuple[Any, ...], Row]:
    """(before, key relation, strict[, target]) → (status, after, code), from pytest.params."""
    table = {}
    for case in cases:
        *situation, status, after, code = case.values
        table[tuple(situation)] = (status, after, code)
    return table


CREATE = outcome_table(create_cases())
COMPLETE = outcome_table(complete_cases())


def look_up(table: dict[tuple[Any, ...], Row], before: str, relation: str, *rest: Any) -> Row:
    """The row for this situation. Where the key cannot matter (nothing pending has a completion
    key; a timed-out promise never has one), the tables list one or two relations only: then every
    row for the other columns must agree, and that is the answer."""
    if (before, relation, *rest) in table:
        return table[(before, relation, *rest)]
    rows = {row for (b, _, *r), row in table.items() if b == before and tuple(r) == rest}
    assert len(rows) == 1, f"no single row for {(before, relation, *rest)}: {rows}"
    return rows.pop()


def relation(stored: str | None, requested: str | None) -> str:
    """The key relation of transitions.md; an empty key counts as absent (http-api.md §1.4)."""
    if stored and requested:
        return "=" if stored == requested else "≠"
    if stored:
        return "-k"
    return "k-" if requested else "--"


SYMBOL_OF_STATE = {"RESOLVED": "R", "REJECTED": "J", "REJECTED_CANCELED": "C"}
TIMED_OUT = {"P!": "T", "P!t": "Rt"}
SEARCH_STATES = {
    "pending": {"P"},
    "resolved": {"R", "Rt"},
    "rejected": {"J", "C", "T"},
}
# `strict` header spellings (D16) and what they mean; None sends no header.
STRICT = [
    (None, False),
    ("", False),
    ("true", True),
    ("False", False),
    ("1", True),
    ("0", False),
    ("t", True),
    ("F", False),
]
KEYS = [None, "", "k1", "k2"]
DATA = [None, "eA==", "eyJ4IjoxfQ=="]
# Case-insensitive (http-api.md §2.6).
REQUESTED_STATES = ["RESOLVED", "REJECTED", "REJECTED_CANCELED", "resolved", "Rejected_Canceled"]


SLOTS = st.integers(0, 2)
CREATE_ARGUMENTS = {
    "key": st.sampled_from(KEYS),
    "strict": st.sampled_from(STRICT),
    # An hour ahead half of the time; otherwise already past, left out (0) or negative.
    "deadline": st.one_of(st.just("future"), st.sampled_from(["past", "absent", "negative"])),
    "timer": st.booleans(),
    "data": st.sampled_from(DATA),
}


@dataclass(slots=True)
class Stored:
    """What the server should hold for one id."""

    symbol: str
    created: int  # creation order, for search
    timeout: int
    tags: dict[str, str]
    param: dict[str, str]
    create_key: str | None
    complete_key: str | None = None
    value: dict[str, str] = field(default_factory=dict)
    completed_on: int | None = None

    def settle(self) -> None:
        """A lazy timeout: what any access does first to an overdue promise."""
        if self.symbol in TIMED_OUT:
            self.symbol = TIMED_OUT[self.symbol]
            self.completed_on = self.timeout
            self.value = {}

    def after(self, symbol: str) -> None:
        """Take the state a table row says the promise is in after a request."""
        if TIMED_OUT.get(self.symbol) == symbol:
            self.settle()
        assert symbol == self.symbol, f"the table moved {self.symbol} to {symbol}"

    def expected(self, promise_id: str) -> dict[str, Any]:
        """The promise object a read answers (after a lazy timeout); None means absent."""
        pending = self.symbol in ("P", "P!", "P!t")
        return {
            "id": promise_id,
            "state": STATE_AFTER[self.symbol] if not pending else "PENDING",
            "param": self.param,
            "value": self.value,
            "timeout": self.timeout,
            "tags": self.tags or None,
            "idempotencyKeyForCreate": self.create_key,
            "idempotencyKeyForComplete": self.complete_key,
            "completedOn": self.completed_on,
        }


def assert_promise(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if value is None:
            assert key not in body, f"{key} should be absent: {body}"
        else:
            assert body.get(key) == value, f"{key}: {body.get(key)!r} != {value!r} in {body}"
    assert isinstance(body.get("createdOn"), int), body


def assert_error(response: httpx.Response, code: int) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body


def promise_machine(api: httpx.Client, run_prefix: str) -> type[RuleBasedStateMachine]:
    examples = itertools.count()

    class PromiseMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # A namespace per example: runs never see each other's promises.
            self.namespace = f"{run_prefix}.{next(examples)}"
            self.stored: dict[str, Stored] = {}
            self.creations = itertools.count()

        def promise_id(self, slot: int) -> str:
            return f"{self.namespace}/p{slot}"

        @staticmethod
        def headers(key: str | None, strict: str | None) -> dict[str, str]:
            sent = {"idempotency-key": key, "strict": strict}
            return {name: value for name, value in sent.items() if value is not None}

        # Two of the three ids exist from the start, so that most steps meet a promise.
        @initialize(**CREATE_ARGUMENTS)
        def create_first(self, key, strict, deadline, timer, data) -> None:
            self.create_promise(0, key, strict, deadline, timer, data)

        @initialize(**CREATE_ARGUMENTS)
        def create_second(self, key, strict, deadline, timer, data) -> None:
            self.create_promise(1, key, strict, deadline, timer, data)

        @rule(slot=SLOTS, **CREATE_ARGUMENTS)
        def create(self, slot, key, strict, deadline, timer, data) -> None:
            self.create_promise(slot, key, strict, deadline, timer, data)

        def create_promise(self, slot, key, strict, deadline, timer, data) -> None:
            promise_id = self.promise_id(slot)
            timeout = {"future": now_ms() + HOUR_MS, "past": now_ms() - 1000, "negative": -1}
            body: dict[str, Any] = {"id": promise_id, "tags": TIMER_TAGS if timer else {"a": "b"}}
            if deadline != "absent":
                body["timeout"] = timeout[deadline]
            if data is not None:
                body["param"] = {"data": data}
            response = api.post("/promises", json=body, headers=self.headers(key, strict[0]))

            stored = self.stored.get(promise_id)
            if stored is None:  # C1-C3
                assert response.status_code == 201, response.text
                overdue = deadline != "future"
                self.stored[promise_id] = Stored(
                    symbol=("P!t" if timer else "P!") if overdue else "P",
                    created=next(self.creations),
                    timeout=body.get("timeout", 0),
                    tags=body["tags"],
                    param=body.get("param", {}),
                    create_key=key or None,
                )
                assert_promise(response.json(), self.stored[promise_id].expected(promise_id))
                return
            status, after, code = look_up(
                CREATE, stored.symbol, relation(stored.create_key, key), strict[1]
            )
            assert response.status_code == status, (stored.symbol, response.text)
            stored.after(after)
            if code is not None:
                assert_error(response, code)
            else:  # dedup: the stored promise, not the request's param, timeout or tags
                assert_promise(response.json(), stored.expected(promise_id))

        @rule(
            slot=SLOTS,
            requested=st.sampled_from(REQUESTED_STATES),
            key=st.sampled_from(KEYS),
            strict=st.sampled_from(STRICT),
            data=st.sampled_from(DATA),
        )
        def complete(self, slot, requested, key, strict, data) -> None:
            promise_id = self.promise_id(slot)
            body: dict[str, Any] = {"state": requested}
            if data is not None:
                body["value"] = {"data": data}
            response = api.patch(
                f"/promises/{quote(promise_id, safe='')}",
                json=body,
                headers=self.headers(key, strict[0]),
            )

            stored = self.stored.get(promise_id)
            before = stored.symbol if stored else "∅"
            symbol = SYMBOL_OF_STATE[requested.upper()]
            stored_key = stored.complete_key if stored else None
            status, after, code = look_up(
                COMPLETE, before, relation(stored_key, key), strict[1], symbol
            )
            assert response.status_code == status, (before, response.text)
            if code is not None:
                assert_error(response, code)
            if stored is None:
                return
            if status == 201:  # K2
                promise = response.json()
                stored.symbol = after
                stored.complete_key = key or None
                stored.value = body.get("value", {})
                stored.completed_on = promise.get("completedOn")
                assert isinstance(stored.completed_on, int), promise
                assert_promise(promise, stored.expected(promise_id))
                return
            stored.after(after)
            if code is None:
                assert_promise(response.json(), stored.expected(promise_id))

        @rule(slot=SLOTS)
        def read(self, slot) -> None:  # G1-G5
            promise_id = self.promise_id(slot)
            response = api.get(f"/promises/{quote(promise_id, safe='')}")
            stored = self.stored.get(promise_id)
            if stored is None:
                assert response.status_code == 404, response.text
                assert_error(response, 40400)
                return
            assert response.status_code == 200, response.text
            stored.settle()
            assert_promise(response.json(), stored.expected(promise_id))

        @rule(state=st.sampled_from([None, *SEARCH_STATES, "PENDING"]))
        def search(self, state) -> None:  # S1-S5, S16: timed out first, newest first
            params = {"id": f"{self.namespace}/*"}
            if state is not None:
                params["state"] = state
            response = api.get("/promises", params=params)
            assert response.status_code == 200, response.text
            for stored in self.stored.values():
                stored.settle()
            wanted = SEARCH_STATES[state.lower()] if state else None
            expected = sorted(
                (
                    (promise_id, stored)
                    for promise_id, stored in self.stored.items()
                    if wanted is None or stored.symbol in wanted
                ),
                key=lambda item: -item[1].created,
            )
            promises = response.json()["promises"]
            assert [(p["id"], p["state"]) for p in promises] == [
                (promise_id, STATE_AFTER[stored.symbol]) for promise_id, stored in expected
            ]
            for promise, (promise_id, stored) in zip(promises, expected, strict=True):
                assert_promise(promise, stored.expected(promise_id))

    return PromiseMachine


def test_promise_api_follows_the_model(api: httpx.Client) -> None:
    machine = promise_machine(api, f"sm{uuid.uuid4().hex[:8]}")
    run_state_machine_as_test(machine, settings=SETTINGS)
