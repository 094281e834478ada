"""Every service over gRPC, on both stores, checked against the HTTP API of the same server
(one operations layer: what one protocol writes, the other reads)."""

from __future__ import annotations

import json

import grpc
import pytest

from resonate.server.grpc.gen import (
    callback_t_pb2,
    lock_pb2,
    promise_pb2,
    promise_t_pb2,
    resonate_pb2,
    schedule_pb2,
    task_pb2,
)
from tests.grpc.support import error_code

FUTURE = 4_102_444_800_000


def failure(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    return raised.value


def create(stubs, pid: str, **fields) -> promise_pb2.CreatePromiseResponse:
    return stubs.promises.CreatePromise(
        promise_pb2.CreatePromiseRequest(id=pid, timeout=FUTURE, **fields)
    )


# ---- promises ---------------------------------------------------------------------------------


def test_values_headers_and_tags_round_trip(stubs, http, uid):
    created = create(
        stubs,
        uid,
        param=promise_t_pb2.Value(headers={"h": "v"}, data=b"\x00\xff"),
        tags={"t": "1"},
        idempotencyKey="ik",
    )
    body = http.get(f"/promises/{uid}").json()
    assert body["param"] == {"headers": {"h": "v"}, "data": "AP8="}
    assert body["tags"] == {"t": "1"}
    assert body["idempotencyKeyForCreate"] == "ik"
    http.patch(f"/promises/{uid}", json={"state": "REJECTED", "value": {"data": "eHl6"}})
    read = stubs.promises.ReadPromise(promise_pb2.ReadPromiseRequest(id=uid)).promise
    assert read.state == promise_t_pb2.REJECTED
    assert read.value.data == b"xyz"
    assert read.param == created.promise.param


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (promise_pb2.CreatePromiseRequest(timeout=1), "id"),
        (promise_pb2.CreatePromiseRequest(id="a\x00b"), "id"),
        (promise_pb2.CreatePromiseRequest(id="x" * 1025), "id"),
        (promise_pb2.CreatePromiseRequest(id="ok", tags={"k": "\x00"}), "tags"),
        (
            promise_pb2.CreatePromiseRequest(
                id="ok", param=promise_t_pb2.Value(headers={"k": "a\x00"})
            ),
            "param.headers",
        ),
    ],
)
def test_invalid_requests_name_the_field(stubs, request_, field):
    error = failure(stubs.promises.CreatePromise, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(error) == 40000
    assert f"The field {field}" in error.details()


def test_search_promises_by_state_tags_and_cursor(stubs, http, uid):
    for i in range(3):
        create(stubs, f"{uid}/{i}", tags={"n": str(i % 2)})
    stubs.promises.ResolvePromise(promise_pb2.ResolvePromiseRequest(id=f"{uid}/0"))
    search = stubs.promises.SearchPromises
    pending = search(
        promise_pb2.SearchPromisesRequest(id=f"{uid}/*", state=promise_pb2.SEARCH_PENDING)
    )
    assert sorted(p.id for p in pending.promises) == [f"{uid}/1", f"{uid}/2"]
    tagged = search(promise_pb2.SearchPromisesRequest(id=f"{uid}/*", tags={"n": "0"}))
    assert sorted(p.id for p in tagged.promises) == [f"{uid}/0", f"{uid}/2"]
    first = search(promise_pb2.SearchPromisesRequest(id=f"{uid}/*", limit=2))
    assert len(first.promises) == 2 and first.cursor
    rest = search(promise_pb2.SearchPromisesRequest(cursor=first.cursor))
    assert len(rest.promises) == 1 and rest.cursor == ""
    # The HTTP cursor and the gRPC one are the same thing.
    assert (
        http.get("/promises", params={"cursor": first.cursor}).json()["promises"][0]["id"]
        == rest.promises[0].id
    )
    error = failure(search, promise_pb2.SearchPromisesRequest(id=f"{uid}/*", limit=101))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = failure(search, promise_pb2.SearchPromisesRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "id" in error.details()


def test_callbacks_and_subscriptions(stubs, http, uid):
    root, leaf = f"{uid}/root", f"{uid}/leaf"
    create(stubs, root)
    create(stubs, leaf)
    request = promise_pb2.CreateCallbackRequest(
        promiseId=leaf,
        rootPromiseId=root,
        timeout=FUTURE,
        recv=callback_t_pb2.Recv(
            physical=callback_t_pb2.PhysicalRecv(type="http", data=b'{"url":"http://x.test"}')
        ),
    )
    first = stubs.promises.CreateCallback(request)
    assert not first.noop
    assert first.callback.id == f"__resume:{root}:{leaf}"
    assert first.callback.promiseId == leaf
    again = stubs.promises.CreateCallback(request)
    assert again.noop and again.callback.id == first.callback.id
    subscribed = stubs.promises.CreateSubscription(
        promise_pb2.CreateSubscriptionRequest(
            id="s1", promiseId=leaf, timeout=FUTURE, recv=callback_t_pb2.Recv(logical="any")
        )
    )
    assert not subscribed.noop and subscribed.callback.id == f"__notify:{leaf}:s1"
    listed = http.get("/callbacks", params={"promiseId": leaf}).json()["callbacks"]
    assert {(c["type"], json.dumps(c["recv"], sort_keys=True)) for c in listed} == {
        ("resume", '{"data": {"url": "http://x.test"}, "type": "http"}'),
        ("notify", '"any"'),
    }
    missing_recv = failure(
        stubs.promises.CreateCallback,
        promise_pb2.CreateCallbackRequest(promiseId=leaf, rootPromiseId=root),
    )
    assert missing_recv.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "recv" in missing_recv.details()
    stubs.promises.ResolvePromise(promise_pb2.ResolvePromiseRequest(id=leaf))
    late = stubs.promises.CreateCallback(request)
    assert late.noop and not late.HasField("callback")
    assert late.promise.state == promise_t_pb2.RESOLVED


# ---- tasks ------------------------------------------------------------------------------------


def test_create_with_task_complete_and_read(stubs, http, uid):
    answer = stubs.ext_promises.CreatePromiseAndTask(
        promise_pb2.CreatePromiseAndTaskRequest(
            promise=promise_pb2.CreatePromiseRequest(
                id=uid, timeout=FUTURE, tags={"resonate:invoke": "default"}
            ),
            task=promise_pb2.CreatePromiseTaskRequest(processId="proc", ttl=60_000),
        )
    )
    assert not answer.noop
    task = answer.task
    assert task.id == f"__invoke:{uid}" and task.processId == "proc"
    assert task.state == resonate_pb2.CLAIMED
    read = stubs.ext_tasks.ReadTask(resonate_pb2.ReadTaskRequest(id=task.id)).task
    assert read.counter == task.counter and read.recv.logical == "default"
    assert http.get(f"/tasks/{task.id}").json()["state"] == "CLAIMED"
    beats = stubs.tasks.HeartbeatTasks(task_pb2.HeartbeatTasksRequest(processId="proc"))
    assert beats.tasksAffected == 1
    found = stubs.ext_tasks.SearchTasks(
        resonate_pb2.SearchTasksRequest(rootPromiseId=uid, state=resonate_pb2.CLAIMED)
    )
    assert [t.id for t in found.tasks] == [task.id]
    wrong = failure(
        stubs.tasks.CompleteTask,
        task_pb2.CompleteTaskRequest(id=task.id, counter=task.counter + 1),
    )
    assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(wrong) == 40308
    done = stubs.tasks.CompleteTask(task_pb2.CompleteTaskRequest(id=task.id, counter=task.counter))
    assert done.completed
    again = stubs.ext_tasks.CompleteTask(
        resonate_pb2.CompleteTaskRequest(id=task.id, counter=task.counter)
    )
    assert again.noop and again.task.state == resonate_pb2.COMPLETED
    # The same create again: deduplicated by its key? No key: 409.
    conflict = failure(
        stubs.promises.CreatePromiseAndTask,
        promise_pb2.CreatePromiseAndTaskRequest(
            promise=promise_pb2.CreatePromiseRequest(id=uid, timeout=FUTURE),
            task=promise_pb2.CreatePromiseTaskRequest(processId="proc"),
        ),
    )
    assert conflict.code() == grpc.StatusCode.ALREADY_EXISTS and error_code(conflict) == 40900


def test_claim_drop_and_claim_again(stubs, uid):
    create(stubs, uid, tags={"resonate:invoke": "default"})
    task_id = f"__invoke:{uid}"
    claimed = stubs.tasks.ClaimTask(
        task_pb2.ClaimTaskRequest(id=task_id, counter=1, processId="w1", ttl=60_000)
    )
    assert claimed.claimed and claimed.mesg.type == "invoke"
    root = claimed.mesg.promises["root"]
    assert root.id == uid and root.href.endswith(f"/promises/{uid}")
    assert root.data.state == promise_t_pb2.PENDING
    taken = failure(
        stubs.tasks.ClaimTask, task_pb2.ClaimTaskRequest(id=task_id, counter=1, processId="w2")
    )
    assert taken.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(taken) == 40306
    assert stubs.tasks.DropTask(task_pb2.DropTaskRequest(id=task_id, counter=1)).dropped
    again = stubs.tasks.ClaimTask(
        task_pb2.ClaimTaskRequest(id=task_id, counter=2, processId="w2", ttl=60_000)
    )
    assert again.claimed
    zero = failure(stubs.tasks.ClaimTask, task_pb2.ClaimTaskRequest(id=task_id, processId="w"))
    assert zero.code() == grpc.StatusCode.INVALID_ARGUMENT and "counter" in zero.details()


def test_fenced_create_and_complete(stubs, uid):
    answer = stubs.ext_promises.CreatePromiseAndTask(
        promise_pb2.CreatePromiseAndTaskRequest(
            promise=promise_pb2.CreatePromiseRequest(
                id=uid, timeout=FUTURE, tags={"resonate:invoke": "default"}
            ),
            task=promise_pb2.CreatePromiseTaskRequest(processId="proc", ttl=60_000),
        )
    )
    fence = resonate_pb2.Fence(taskId=answer.task.id, counter=answer.task.counter)
    child = stubs.ext_promises.CreatePromise(
        resonate_pb2.CreatePromiseRequest(
            promise=promise_pb2.CreatePromiseRequest(id=f"{uid}/child", timeout=FUTURE),
            fence=fence,
        )
    )
    assert not child.noop
    stale = resonate_pb2.Fence(taskId=answer.task.id, counter=answer.task.counter + 1)
    refused = failure(
        stubs.ext_promises.CompletePromise,
        resonate_pb2.CompletePromiseRequest(
            id=f"{uid}/child", state=resonate_pb2.RESOLVED, fence=stale
        ),
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(refused) == 41200
    done = stubs.ext_promises.CompletePromise(
        resonate_pb2.CompletePromiseRequest(
            id=f"{uid}/child",
            state=resonate_pb2.REJECTED_CANCELED,
            fence=fence,
            value=promise_t_pb2.Value(data=b"why"),
        )
    )
    assert not done.noop and done.promise.state == promise_t_pb2.REJECTED_CANCELED
    unspecified = failure(
        stubs.ext_promises.CompletePromise, resonate_pb2.CompletePromiseRequest(id=uid)
    )
    assert unspecified.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- locks ------------------------------------------------------------------------------------


def test_locks(stubs, http, uid):
    request = lock_pb2.AcquireLockRequest(
        resourceId=uid, executionId="e1", processId="p1", ttl=60_000
    )
    assert stubs.locks.AcquireLock(request).acquired
    held = stubs.ext_locks.ReadLock(resonate_pb2.ReadLockRequest(resourceId=uid)).lock
    assert (held.executionId, held.processId, held.ttl) == ("e1", "p1", 60_000)
    assert http.get(f"/locks/{uid}").json()["expiresAt"] == held.expiresAt
    other = failure(
        stubs.locks.AcquireLock,
        lock_pb2.AcquireLockRequest(resourceId=uid, executionId="e2", processId="p2", ttl=1),
    )
    assert other.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(other) == 40305
    assert (
        stubs.locks.HeartbeatLocks(lock_pb2.HeartbeatLocksRequest(processId="p1")).locksAffected
        == 1
    )
    found = stubs.ext_locks.SearchLocks(resonate_pb2.SearchLocksRequest(resourceId=f"{uid}*"))
    assert [lock.resourceId for lock in found.locks] == [uid]
    released = stubs.locks.ReleaseLock(
        lock_pb2.ReleaseLockRequest(resourceId=uid, executionId="e1")
    )
    assert released.released
    gone = failure(
        stubs.locks.ReleaseLock, lock_pb2.ReleaseLockRequest(resourceId=uid, executionId="e1")
    )
    assert gone.code() == grpc.StatusCode.NOT_FOUND and error_code(gone) == 40402
    ext = stubs.ext_locks.AcquireLock(
        resonate_pb2.AcquireLockRequest(resourceId=uid, executionId="e3", processId="p3", ttl=5)
    )
    assert ext.lock.executionId == "e3"


# ---- schedules --------------------------------------------------------------------------------


def test_schedules(stubs, http, uid):
    request = schedule_pb2.CreateScheduleRequest(
        id=uid,
        description="every minute",
        cron="* * * * *",
        tags={"a": "b"},
        promiseId=f"{uid}.{{{{.timestamp}}}}",
        promiseTimeout=60_000,
        promiseParam=promise_t_pb2.Value(data=b"p"),
        idempotencyKey="sk",
    )
    created = stubs.schedules.CreateSchedule(request)
    assert not created.noop
    schedule = created.schedule
    assert schedule.nextRunTime > 0 and schedule.idempotencyKey == "sk"
    assert stubs.schedules.CreateSchedule(request).noop
    body = http.get(f"/schedules/{uid}").json()
    assert body["promiseParam"] == {"data": "cA=="} and body["description"] == "every minute"
    read = stubs.schedules.ReadSchedule(schedule_pb2.ReadScheduleRequest(id=uid)).schedule
    assert read == schedule
    found = stubs.schedules.SearchSchedules(schedule_pb2.SearchSchedulesRequest(id=f"{uid}*"))
    assert [s.id for s in found.schedules] == [uid]
    stubs.schedules.DeleteSchedule(schedule_pb2.DeleteScheduleRequest(id=uid))
    gone = failure(stubs.schedules.ReadSchedule, schedule_pb2.ReadScheduleRequest(id=uid))
    assert gone.code() == grpc.StatusCode.NOT_FOUND and error_code(gone) == 40401
    bad = failure(
        stubs.schedules.CreateSchedule,
        schedule_pb2.CreateScheduleRequest(id=f"{uid}b", cron="nope", promiseId="x"),
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
