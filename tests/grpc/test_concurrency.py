"""Clients of both protocols on the same ids at once: every promise's history, gRPC and HTTP
answers together, fits one sequential order (the checker of tests/server/test_concurrency.py)."""

from __future__ import annotations

import random
import threading
import time

import grpc
import httpx
import pytest

from resonate.server.grpc.gen import promise_pb2, promise_t_pb2
from tests.grpc.support import Stubs, error_code
from tests.support.linearizability import Op, is_linearizable

FAR = 4_102_444_800_000
STATES = ("RESOLVED", "REJECTED", "REJECTED_CANCELED")
COMPLETE = {
    "RESOLVED": ("ResolvePromise", promise_pb2.ResolvePromiseRequest),
    "REJECTED": ("RejectPromise", promise_pb2.RejectPromiseRequest),
    "REJECTED_CANCELED": ("CancelPromise", promise_pb2.CancelPromiseRequest),
}
# gRPC answers as the HTTP statuses of the checker's model.
HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 403,
}


def _grpc_op(stubs: Stubs, kind: str, pid: str, key: str | None, strict: bool, state: str | None):
    try:
        if kind == "create":
            answer = stubs.promises.CreatePromise(
                promise_pb2.CreatePromiseRequest(
                    id=pid, timeout=FAR, idempotencyKey=key or "", strict=strict
                )
            )
        elif kind == "complete":
            method, request = COMPLETE[state]
            answer = getattr(stubs.promises, method)(
                request(id=pid, idempotencyKey=key or "", strict=strict)
            )
        else:
            promise = stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=pid)).promise
            return 200, promise_t_pb2.State.Name(promise.state)
    except grpc.RpcError as error:
        return HTTP_STATUS.get(error.code(), 500), str(error_code(error))
    status = 200 if answer.noop else 201
    return status, promise_t_pb2.State.Name(answer.promise.state)


def _http_op(client: httpx.Client, kind: str, pid: str, key: str | None, strict: bool, state):
    headers = {"strict": str(strict).lower()}
    if key:
        headers["idempotency-key"] = key
    if kind == "create":
        response = client.post("/promises", json={"id": pid, "timeout": FAR}, headers=headers)
    elif kind == "complete":
        response = client.patch(f"/promises/{pid}", json={"state": state}, headers=headers)
    else:
        response = client.get(f"/promises/{pid}")
    body = response.json()
    return response.status_code, str(body["error"]["code"]) if "error" in body else body["state"]


def _client(grpc_server, ids, seed: int, ops: int, history: list[tuple[str, Op]]) -> None:
    rng = random.Random(seed)
    use_grpc = seed % 2 == 0
    with httpx.Client(base_url=grpc_server.api_url, timeout=30) as client:
        stubs = grpc_server.stubs
        for _ in range(ops):
            pid = rng.choice(ids)
            kind = rng.choices(("create", "complete", "read"), weights=(3, 4, 2))[0]
            key = rng.choice((None, "k1", "k2"))
            strict = rng.random() < 0.3
            state = rng.choice(STATES) if kind == "complete" else None
            invoked = time.monotonic()
            if use_grpc:
                status, observed = _grpc_op(stubs, kind, pid, key, strict, state)
            else:
                status, observed = _http_op(client, kind, pid, key, strict, state)
            returned = time.monotonic()
            op_key = key if kind != "read" else None
            op = Op(kind, op_key, strict, state, invoked, returned, status, observed)
            history.append((pid, op))


@pytest.mark.slow
def test_grpc_and_http_clients_on_the_same_ids_are_linearizable(grpc_server, uid):
    ids = [f"{uid}-{i}" for i in range(12)]
    histories: list[list[tuple[str, Op]]] = [[] for _ in range(6)]
    threads = [
        threading.Thread(target=_client, args=(grpc_server, ids, seed, 40, histories[seed]))
        for seed in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    by_id: dict[str, list[Op]] = {}
    for history in histories:
        for pid, op in history:
            by_id.setdefault(pid, []).append(op)
    assert sum(len(ops) for ops in by_id.values()) == 240
    assert all(op.status < 500 for ops in by_id.values() for op in ops)
    bad = [pid for pid, ops in by_id.items() if not is_linearizable(ops)]
    assert bad == [], f"non-linearizable histories for {bad[:3]}: {by_id[bad[0]] if bad else ''}"


@pytest.mark.parametrize("round_", range(5))
def test_resolve_over_grpc_and_reject_over_http_race(grpc_server, stubs, http, uid, round_):
    stubs.promises.CreatePromise(promise_pb2.CreatePromiseRequest(id=uid, timeout=FAR))
    answers: dict[str, tuple[int, str]] = {}
    barrier = threading.Barrier(2)

    def over_grpc() -> None:
        barrier.wait()
        answers["grpc"] = _grpc_op(stubs, "complete", uid, None, False, "RESOLVED")

    def over_http() -> None:
        with httpx.Client(base_url=grpc_server.api_url, timeout=30) as client:
            barrier.wait()
            answers["http"] = _http_op(client, "complete", uid, None, False, "REJECTED")

    threads = [threading.Thread(target=over_grpc), threading.Thread(target=over_http)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in answers.values())
    assert statuses == [201, 403], answers
    winner = next(state for status, state in answers.values() if status == 201)
    loser = next(observed for status, observed in answers.values() if status == 403)
    assert loser == {"RESOLVED": "40301", "REJECTED": "40302"}[winner]
    assert http.get(f"/promises/{uid}").json()["state"] == winner
