"""Authentication from the ``authorization`` metadata and prefix authorisation over gRPC: the
HTTP API's rules exactly (http-api.md §9), checked against the HTTP answers of the same
server where they can be compared."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import grpc
import httpx
import pytest

from resonate.server.grpc.gen import (
    lock_pb2,
    promise_pb2,
    resonate_pb2,
    schedule_pb2,
    task_pb2,
)
from tests.grpc.support import Stubs, ThreadedServer, error_code
from tests.server.test_jwt_auth import (
    AUDIENCE,
    ISSUER,
    PASSWORD,
    RSA,
    bad_tokens,
    key_file,
)

FUTURE = 4_102_444_800_000


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    """RSA JWT auth with issuer and audience, and Basic too (SQLite: auth does not touch the
    store)."""
    workdir = tmp_path_factory.mktemp("grpc-auth")
    args = [
        "--api-auth-public-key",
        str(key_file(workdir, RSA)),
        "--api-auth-issuer",
        ISSUER,
        "--api-auth-audience",
        AUDIENCE,
        "--api-http-auth",
        f"alice={PASSWORD}",
    ]
    server = ThreadedServer(workdir, "sqlite", args).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stubs(secured: ThreadedServer) -> Stubs:
    return secured.stubs


@pytest.fixture
def http(secured: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.api_url, timeout=30) as client:
        yield client


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(claims: dict) -> str:
    return "Bearer " + RSA.token(claims)


def meta(authorization: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", authorization),)


def fails(call, request, authorization: str | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=meta(authorization) if authorization else None)
    return raised.value


def test_no_credentials_is_unauthenticated_with_a_challenge(stubs, uid):
    error = fails(stubs.promises.ReadPromise, promise_pb2.ReadPromiseRequest(id=uid), None)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(error) == 40100
    trailers = dict(error.trailing_metadata())
    assert trailers["www-authenticate"] == 'Basic realm="resonate", Bearer realm="resonate"'


# Ids are named, not derived from the values: tokens are signed afresh at each collection, and
# pytest-xdist needs every worker to collect the same ids.
_BAD = {
    "basic wrong password": basic("alice", "wrong"),
    "basic unknown user": basic("mallory", PASSWORD),
    "basic not base64": "Basic not-base64!",
    "digest": "Digest abc",
    "bearer without token": "Bearer",
    **{f"bearer {name}": "Bearer " + token for name, token in bad_tokens().items()},
}


@pytest.mark.parametrize("authorization", list(_BAD.values()), ids=list(_BAD))
def test_bad_credentials_are_unauthenticated(stubs, http, uid, authorization):
    error = fails(stubs.promises.ReadPromise, promise_pb2.ReadPromiseRequest(id=uid), authorization)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(error) == 40100
    assert PASSWORD not in (error.details() or "")
    # The same credentials over HTTP: the same refusal.
    response = http.get(f"/promises/{uid}", headers={"Authorization": authorization})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [basic("alice", PASSWORD), bearer({"role": "admin"}), bearer({"prefix": ""})],
    ids=["basic", "bearer admin", "bearer empty prefix"],
)
def test_full_access(stubs, uid, authorization):
    created = stubs.promises.CreatePromise(
        promise_pb2.CreatePromiseRequest(id=f"any/{uid}", timeout=FUTURE),
        metadata=meta(authorization),
    )
    assert created.promise.id == f"any/{uid}"


def test_a_prefix_token_works_inside_its_prefix(stubs, uid):
    token = meta(bearer({"prefix": f"{uid}/"}))
    pid = f"{uid}/p"
    stubs.promises.CreatePromise(
        promise_pb2.CreatePromiseRequest(id=pid, timeout=FUTURE), metadata=token
    )
    assert stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=pid), metadata=token)
    page = stubs.promises.SearchPromises(
        promise_pb2.SearchPromisesRequest(id=f"{uid}/*"), metadata=token
    )
    assert [p.id for p in page.promises] == [pid]
    resolved = stubs.promises.ResolvePromise(
        promise_pb2.ResolvePromiseRequest(id=pid), metadata=token
    )
    assert not resolved.noop
    acquired = stubs.locks.AcquireLock(
        lock_pb2.AcquireLockRequest(
            resourceId=f"{uid}/r", executionId="e", processId="p", ttl=1000
        ),
        metadata=token,
    )
    assert acquired.acquired
    # A task id of its prefix passes authorisation (and is then not found).
    missing = fails(
        stubs.tasks.ClaimTask,
        task_pb2.ClaimTaskRequest(id=f"__invoke:{uid}/x", counter=1, processId="p"),
        token[0][1],
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND and error_code(missing) == 40403


def forbidden_calls(uid: str, other: str):
    """Calls naming an id outside the prefix ``uid/`` (``other`` is outside it)."""
    return [
        ("promises", "ReadPromise", promise_pb2.ReadPromiseRequest(id=other)),
        ("promises", "CreatePromise", promise_pb2.CreatePromiseRequest(id=other, timeout=FUTURE)),
        ("promises", "ResolvePromise", promise_pb2.ResolvePromiseRequest(id=other)),
        ("promises", "SearchPromises", promise_pb2.SearchPromisesRequest(id="*")),
        ("promises", "SearchPromises", promise_pb2.SearchPromisesRequest(id=f"*{uid}/")),
        (
            "promises",
            "CreateCallback",
            promise_pb2.CreateCallbackRequest(
                promiseId=f"{uid}/a", rootPromiseId=other, recv={"logical": "any"}
            ),
        ),
        (
            "promises",
            "CreateSubscription",
            promise_pb2.CreateSubscriptionRequest(promiseId=other, id="s", recv={"logical": "x"}),
        ),
        (
            "promises",
            "CreatePromiseAndTask",
            promise_pb2.CreatePromiseAndTaskRequest(
                promise=promise_pb2.CreatePromiseRequest(id=other, timeout=FUTURE),
                task=promise_pb2.CreatePromiseTaskRequest(processId="p", ttl=1),
            ),
        ),
        ("schedules", "ReadSchedule", schedule_pb2.ReadScheduleRequest(id=other)),
        (
            "schedules",
            "CreateSchedule",
            schedule_pb2.CreateScheduleRequest(
                id=f"{uid}/s", cron="* * * * *", promiseId=f"{other}.{{{{.timestamp}}}}"
            ),
        ),
        (
            "locks",
            "AcquireLock",
            lock_pb2.AcquireLockRequest(resourceId=other, executionId="e", processId="p"),
        ),
        (
            "tasks",
            "ClaimTask",
            task_pb2.ClaimTaskRequest(id=f"__invoke:{other}", counter=1, processId="p"),
        ),
        ("tasks", "CompleteTask", task_pb2.CompleteTaskRequest(id=f"{uid}/t", counter=1)),
        ("ext_tasks", "SearchTasks", resonate_pb2.SearchTasksRequest(id="*")),
        ("ext_locks", "SearchLocks", resonate_pb2.SearchLocksRequest(resourceId="*")),
        (
            "ext_promises",
            "CreatePromise",
            resonate_pb2.CreatePromiseRequest(
                promise=promise_pb2.CreatePromiseRequest(id=f"{uid}/f", timeout=FUTURE),
                fence=resonate_pb2.Fence(taskId=f"__invoke:{other}", counter=1),
            ),
        ),
    ]


def test_a_prefix_token_is_forbidden_outside_its_prefix(stubs, uid):
    token = bearer({"prefix": f"{uid}/"})
    for service, method, request in forbidden_calls(uid, f"other-{uid}"):
        error = fails(getattr(getattr(stubs, service), method), request, token)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (method, error.details())
        assert error_code(error) == 40300, method


def test_a_token_without_prefix_or_role_is_forbidden(stubs, http, uid):
    token = bearer({})
    error = fails(stubs.promises.ReadPromise, promise_pb2.ReadPromiseRequest(id=uid), token)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and error_code(error) == 40300
    assert http.get(f"/promises/{uid}", headers={"Authorization": token}).status_code == 403
    # Heartbeats name no id: no authorisation needed, as over HTTP.
    assert (
        stubs.tasks.HeartbeatTasks(
            task_pb2.HeartbeatTasksRequest(processId="p"), metadata=meta(token)
        ).tasksAffected
        == 0
    )
