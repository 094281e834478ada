"""The Go server's wire names (v0.8.x): full method paths and the field numbers a client
generated from its .proto files sends. Written down from its files, independently of ours."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pool

from resonate.server.grpc.gen import lock_pb2, promise_pb2, schedule_pb2, task_pb2  # noqa: F401

GO_METHODS = {
    "promise.Promises": [
        "ReadPromise",
        "SearchPromises",
        "CreatePromise",
        "CreatePromiseAndTask",
        "ResolvePromise",
        "RejectPromise",
        "CancelPromise",
        "CreateCallback",
        "CreateSubscription",
    ],
    "schedule.Schedules": ["ReadSchedule", "SearchSchedules", "CreateSchedule", "DeleteSchedule"],
    "lock.Locks": ["AcquireLock", "ReleaseLock", "HeartbeatLocks"],
    "task.Tasks": ["ClaimTask", "CompleteTask", "DropTask", "HeartbeatTasks"],
}

# (message, {field: number}) for every request and the records answered.
GO_FIELDS = {
    "promise_t.Promise": {
        "id": 1,
        "state": 2,
        "param": 3,
        "value": 4,
        "timeout": 5,
        "idempotencyKeyForCreate": 6,
        "idempotencyKeyForComplete": 7,
        "tags": 8,
        "createdOn": 9,
        "completedOn": 10,
    },
    "promise_t.Value": {"headers": 1, "data": 2},
    "callback_t.Callback": {"id": 1, "promiseId": 2, "timeout": 3, "createdOn": 4},
    "callback_t.Recv": {"logical": 1, "physical": 2},
    "callback_t.PhysicalRecv": {"type": 1, "data": 2},
    "promise.ReadPromiseRequest": {"id": 1, "requestId": 2},
    "promise.SearchPromisesRequest": {
        "id": 1,
        "state": 2,
        "tags": 3,
        "limit": 4,
        "cursor": 5,
        "requestId": 6,
    },
    "promise.CreatePromiseRequest": {
        "id": 1,
        "idempotencyKey": 2,
        "strict": 3,
        "param": 4,
        "timeout": 5,
        "tags": 6,
        "requestId": 7,
    },
    "promise.CreatePromiseAndTaskRequest": {"promise": 1, "task": 2},
    "promise.CreatePromiseTaskRequest": {"processId": 1, "ttl": 2},
    "promise.ResolvePromiseRequest": {
        "id": 1,
        "idempotencyKey": 2,
        "strict": 3,
        "value": 4,
        "requestId": 5,
    },
    "promise.CreateCallbackRequest": {
        "promiseId": 1,
        "rootPromiseId": 2,
        "timeout": 3,
        "recv": 4,
        "requestId": 5,
    },
    "promise.CreateCallbackResponse": {"noop": 1, "callback": 2, "promise": 3},
    "promise.CreateSubscriptionRequest": {
        "id": 1,
        "promiseId": 2,
        "timeout": 4,
        "recv": 5,
        "requestId": 6,
    },
    "schedule_t.Schedule": {
        "id": 1,
        "description": 2,
        "cron": 3,
        "tags": 4,
        "promiseId": 5,
        "promiseTimeout": 6,
        "promiseParam": 7,
        "promiseTags": 8,
        "idempotencyKey": 9,
        "lastRunTime": 10,
        "nextRunTime": 11,
        "createdOn": 12,
    },
    "schedule.CreateScheduleRequest": {
        "id": 1,
        "description": 2,
        "cron": 3,
        "tags": 4,
        "promiseId": 5,
        "promiseTimeout": 6,
        "promiseParam": 7,
        "promiseTags": 8,
        "idempotencyKey": 9,
        "requestId": 10,
    },
    "schedule.SearchSchedulesRequest": {
        "id": 1,
        "tags": 2,
        "limit": 3,
        "cursor": 4,
        "requestId": 5,
    },
    "lock.AcquireLockRequest": {
        "resourceId": 1,
        "executionId": 2,
        "processId": 3,
        "ttl": 4,
        "requestId": 5,
    },
    "lock.HeartbeatLocksResponse": {"locksAffected": 1},
    "task.ClaimTaskRequest": {"id": 1, "counter": 2, "processId": 3, "ttl": 4, "requestId": 5},
    "task.ClaimTaskResponse": {"claimed": 1, "mesg": 2},
    "task.Mesg": {"type": 1, "promises": 2},
    "task.MesgPromise": {"id": 1, "href": 2, "data": 3},
    "task.DropTaskRequest": {"id": 1, "counter": 2, "requestId": 3},
    "task.HeartbeatTasksResponse": {"tasksAffected": 1},
}

GO_ENUMS = {
    "promise_t.State": {
        "PENDING": 0,
        "RESOLVED": 1,
        "REJECTED": 2,
        "REJECTED_TIMEDOUT": 3,
        "REJECTED_CANCELED": 4,
    },
    "promise.SearchState": {
        "SEARCH_ALL": 0,
        "SEARCH_PENDING": 1,
        "SEARCH_RESOLVED": 2,
        "SEARCH_REJECTED": 3,
    },
}

POOL = descriptor_pool.Default()


@pytest.mark.parametrize("service", list(GO_METHODS))
def test_services_and_methods(service):
    assert [m.name for m in POOL.FindServiceByName(service).methods] == GO_METHODS[service]


@pytest.mark.parametrize("message", list(GO_FIELDS))
def test_field_numbers(message):
    fields = POOL.FindMessageTypeByName(message).fields
    assert {f.name: f.number for f in fields} == GO_FIELDS[message]


@pytest.mark.parametrize("enum", list(GO_ENUMS))
def test_enum_numbers(enum):
    values = POOL.FindEnumTypeByName(enum).values
    assert {v.name: v.number for v in values} == GO_ENUMS[enum]


def test_an_int32_ttl_of_a_go_client_decodes():
    """CreatePromiseTaskRequest.ttl is int32 in the Go file, int64 here: same varint."""
    # A message of one int32 field 2, as a Go client's encoder writes -1 and 1000.
    for number in (1000, -1):
        raw = bytes([0x10]) + _varint(number & 0xFFFFFFFFFFFFFFFF)
        assert promise_pb2.CreatePromiseTaskRequest.FromString(raw).ttl == number


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
