"""How an API error becomes a gRPC status: one table, one entry per code of the catalogue
(resonate/core/errors.py). The 5-digit code travels in the trailing metadata
(``resonate-error-code``), so that a client can tell apart the codes that share a status (the
403s of an already completed promise, for one)."""

from __future__ import annotations

import grpc

from resonate.core.errors import Code

# Trailing metadata of every answer that is not OK: the 5-digit code of the error.
ERROR_CODE_KEY = "resonate-error-code"

STATUS: dict[Code, grpc.StatusCode] = {
    Code.OK: grpc.StatusCode.OK,
    Code.CREATED: grpc.StatusCode.OK,
    Code.NO_CONTENT: grpc.StatusCode.OK,
    Code.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Code.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    Code.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Code.PROMISE_ALREADY_RESOLVED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.PROMISE_ALREADY_REJECTED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.PROMISE_ALREADY_CANCELED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.PROMISE_ALREADY_TIMEDOUT: grpc.StatusCode.FAILED_PRECONDITION,
    Code.LOCK_ALREADY_ACQUIRED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.TASK_ALREADY_CLAIMED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.TASK_ALREADY_COMPLETED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.TASK_INVALID_COUNTER: grpc.StatusCode.FAILED_PRECONDITION,
    Code.TASK_INVALID_STATE: grpc.StatusCode.FAILED_PRECONDITION,
    Code.PROMISE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.SCHEDULE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.LOCK_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.TASK_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.RECV_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.ROUTE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    # HTTP-only refusals, mapped for completeness (gRPC answers these conditions itself:
    # UNIMPLEMENTED for an unknown method, RESOURCE_EXHAUSTED for a message over the limit).
    Code.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    Code.REQUEST_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Code.PROMISE_ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.SCHEDULE_ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.TASK_PRECONDITION_FAILED: grpc.StatusCode.FAILED_PRECONDITION,
    Code.PAYLOAD_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.HEADERS_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.INTERNAL_ERROR: grpc.StatusCode.INTERNAL,
    Code.STORE_ERROR: grpc.StatusCode.INTERNAL,
    Code.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    Code.SUBMISSION_QUEUE_FULL: grpc.StatusCode.UNAVAILABLE,
    Code.TOO_MANY_CONNECTIONS: grpc.StatusCode.UNAVAILABLE,
    Code.NOT_READY: grpc.StatusCode.UNAVAILABLE,
}


def status_of(code: Code) -> grpc.StatusCode:
    return STATUS[code]
