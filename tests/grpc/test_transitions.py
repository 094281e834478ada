"""transitions.md §1-§3 over gRPC, on both stores: the HTTP suite's table
(tests/server/test_transitions.py), driven through the generated stubs. An HTTP status of the
table becomes the gRPC status of docs/grpc.md, its 5-digit code the ``resonate-error-code``
trailer; 201 is ``noop: false``, 200 ``noop: true``."""

from __future__ import annotations

import grpc
import pytest

from resonate.server.grpc.gen import promise_pb2, promise_t_pb2
from tests.grpc.support import Stubs, error_code
from tests.server.promise_setup import (
    HOUR_MS,
    KEY_RELATIONS,
    STATE_AFTER,
    STATE_NAMES,
    TIMER_TAGS,
    now_ms,
)
from tests.server.test_transitions import complete_cases, create_cases

# The HTTP statuses of the table's errors, as gRPC statuses.
GRPC_STATUS = {
    403: grpc.StatusCode.FAILED_PRECONDITION,  # 4030x: already completed
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
}
STATE = dict(promise_t_pb2.State.items())
COMPLETE = {
    "RESOLVED": ("ResolvePromise", promise_pb2.ResolvePromiseRequest),
    "REJECTED": ("RejectPromise", promise_pb2.RejectPromiseRequest),
    "REJECTED_CANCELED": ("CancelPromise", promise_pb2.CancelPromiseRequest),
}

Outcome = promise_pb2.CreatePromiseResponse | grpc.RpcError


def create(
    stubs: Stubs,
    pid: str,
    *,
    timeout: int | None = None,
    key: str | None = None,
    strict: bool = False,
    tags: dict[str, str] | None = None,
    data: bytes | None = None,
) -> Outcome:
    request = promise_pb2.CreatePromiseRequest(
        id=pid,
        timeout=now_ms() + HOUR_MS if timeout is None else timeout,
        idempotencyKey=key or "",
        strict=strict,
        tags=tags or {},
    )
    if data is not None:
        request.param.data = data
    try:
        return stubs.promises.CreatePromise(request)
    except grpc.RpcError as error:
        return error


def complete(
    stubs: Stubs,
    pid: str,
    state: str,
    *,
    key: str | None = None,
    strict: bool = False,
    data: bytes | None = None,
) -> Outcome:
    method, request_type = COMPLETE[state]
    request = request_type(id=pid, idempotencyKey=key or "", strict=strict)
    if data is not None:
        request.value.data = data
    try:
        return getattr(stubs.promises, method)(request)
    except grpc.RpcError as error:
        return error


def read(stubs: Stubs, pid: str) -> promise_t_pb2.Promise:
    return stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=pid)).promise


def setup(
    stubs: Stubs,
    pid: str,
    before: str,
    *,
    create_key: str | None = None,
    complete_key: str | None = None,
) -> None:
    """tests/server/promise_setup.setup, over gRPC."""
    if before == "∅":
        return
    overdue = before in ("P!", "P!t", "T", "Rt")
    timer = before in ("P!t", "Rt")
    created = create(
        stubs,
        pid,
        key=create_key,
        tags=TIMER_TAGS if timer else None,
        timeout=now_ms() - 1000 if overdue else None,
    )
    assert not isinstance(created, grpc.RpcError) and not created.noop, created
    if before in STATE_NAMES:
        completed = complete(stubs, pid, STATE_NAMES[before], key=complete_key)
        assert not isinstance(completed, grpc.RpcError) and not completed.noop, completed
    if before in ("T", "Rt"):
        expected = "RESOLVED" if before == "Rt" else "REJECTED_TIMEDOUT"
        assert read(stubs, pid).state == STATE[expected]


def assert_answer(outcome: Outcome, status: int, code: int | None) -> None:
    if code is None:
        assert not isinstance(outcome, grpc.RpcError), (outcome.code(), outcome.details())
        assert outcome.noop is (status == 200)
    else:
        assert isinstance(outcome, grpc.RpcError), outcome
        assert outcome.code() == GRPC_STATUS[status]
        assert error_code(outcome) == code


@pytest.mark.parametrize(
    ("before", "relation", "strict", "status", "after", "code"), create_cases()
)
def test_create(stubs, uid, before, relation, strict, status, after, code):
    stored_key, request_key = KEY_RELATIONS[relation]
    setup(stubs, uid, before, create_key=stored_key, complete_key="ck")
    stored = read(stubs, uid)

    outcome = create(
        stubs, uid, key=request_key, strict=strict, timeout=1, tags={"x": "y"}, data=b"a"
    )

    assert_answer(outcome, status, code)
    if code is None:
        # Dedup answers the stored promise, not the request's param/timeout/tags.
        promise = outcome.promise
        assert promise.state == STATE[STATE_AFTER[after]]
        assert promise.timeout == stored.timeout
        assert dict(promise.tags) == dict(stored.tags)
        assert promise.param == stored.param
    assert read(stubs, uid).state == STATE[STATE_AFTER[after]]


def test_c1_create_new(stubs, http, uid):
    outcome = create(
        stubs, uid, key="k1", timeout=123_456_789_000_000, tags={"a": "b"}, data=b'{"x":1}'
    )
    assert_answer(outcome, 201, None)
    promise = outcome.promise
    assert promise.state == promise_t_pb2.PENDING
    assert promise.idempotencyKeyForCreate == "k1"
    assert promise.value == promise_t_pb2.Value()
    assert promise.param.data == b'{"x":1}'
    assert dict(promise.tags) == {"a": "b"}
    assert promise.createdOn > 0
    assert promise.completedOn == 0 and promise.idempotencyKeyForComplete == ""
    assert read(stubs, uid) == promise
    # The same promise over HTTP: one operations layer.
    body = http.get(f"/promises/{uid}").json()
    assert body["param"] == {"data": "eyJ4IjoxfQ=="}
    assert body["createdOn"] == promise.createdOn


@pytest.mark.parametrize(
    ("tags", "after"), [(None, "REJECTED_TIMEDOUT"), ({"resonate:timeout": "true"}, "RESOLVED")]
)
def test_c2_create_in_the_past_answers_pending(stubs, uid, tags, after):
    outcome = create(stubs, uid, timeout=5, tags=tags)
    assert_answer(outcome, 201, None)
    assert outcome.promise.state == promise_t_pb2.PENDING
    stored = read(stubs, uid)
    assert stored.state == STATE[after]
    assert stored.completedOn == 5
    assert stored.value == promise_t_pb2.Value()


@pytest.mark.parametrize(
    ("before", "relation", "strict", "target", "status", "after", "code"), complete_cases()
)
def test_complete(stubs, uid, before, relation, strict, target, status, after, code):
    stored_key, request_key = KEY_RELATIONS[relation]
    setup(stubs, uid, before, create_key="create-key", complete_key=stored_key)

    outcome = complete(stubs, uid, STATE_NAMES[target], key=request_key, strict=strict, data=b"x")

    assert_answer(outcome, status, code)
    if code is None:
        assert outcome.promise.state == STATE[STATE_AFTER[after]]
    if after == "∅":
        with pytest.raises(grpc.RpcError) as missing:
            read(stubs, uid)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_code(missing.value) == 40400
        return
    stored = read(stubs, uid)
    assert stored.state == STATE[STATE_AFTER[after]]
    if status == 201:  # K2
        assert stored.value.data == b"x"
        assert stored.idempotencyKeyForComplete == (request_key or "")
        assert stored.idempotencyKeyForCreate == "create-key"
        assert stored.completedOn > 0
    if after in ("T", "Rt"):
        assert stored.idempotencyKeyForComplete == ""
        assert stored.completedOn == stored.timeout
        assert stored.value == promise_t_pb2.Value()


def test_k6_dedup_answers_stored_state_even_for_another_request(stubs, uid):
    setup(stubs, uid, "J", complete_key="k")
    outcome = complete(stubs, uid, "RESOLVED", key="k")
    assert_answer(outcome, 200, None)
    assert outcome.promise.state == promise_t_pb2.REJECTED


@pytest.mark.parametrize(
    ("before", "state"),
    [
        ("P", "PENDING"),
        ("R", "RESOLVED"),
        ("J", "REJECTED"),
        ("C", "REJECTED_CANCELED"),
        ("P!", "REJECTED_TIMEDOUT"),
        ("P!t", "RESOLVED"),
    ],
)
def test_read(stubs, uid, before, state):
    """G2-G5: reads time out overdue promises lazily and never return them PENDING."""
    setup(stubs, uid, before)
    promise = read(stubs, uid)
    assert promise.state == STATE[state]
    if before in ("P!", "P!t"):
        assert promise.value == promise_t_pb2.Value()
        assert promise.completedOn == promise.timeout


@pytest.mark.parametrize("pid", ["{uid}", ""])
def test_g1_g6_read_missing(stubs, uid, pid):
    with pytest.raises(grpc.RpcError) as missing:
        read(stubs, pid.format(uid=uid))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(missing.value) == 40400


def test_ids_with_slashes(stubs, uid):
    assert_answer(create(stubs, f"{uid}/a/b"), 201, None)
    assert read(stubs, f"{uid}/a/b").id == f"{uid}/a/b"
    assert_answer(complete(stubs, f"{uid}/a/b", "RESOLVED"), 201, None)
