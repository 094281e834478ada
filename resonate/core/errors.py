"""Errors as values: every failure the API can answer carries a 5-digit code.

The HTTP status is ``code // 100``; the message is the code's fixed text (http-api.md §1.7).
Protocol adapters map an error to a response in one place, never scattering status codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Code(IntEnum):
    OK = 20000
    CREATED = 20100
    NO_CONTENT = 20400
    INVALID_REQUEST = 40000
    UNAUTHORIZED = 40100
    FORBIDDEN = 40300
    PROMISE_ALREADY_RESOLVED = 40301
    PROMISE_ALREADY_REJECTED = 40302
    PROMISE_ALREADY_CANCELED = 40303
    PROMISE_ALREADY_TIMEDOUT = 40304
    LOCK_ALREADY_ACQUIRED = 40305
    TASK_ALREADY_CLAIMED = 40306
    TASK_ALREADY_COMPLETED = 40307
    TASK_INVALID_COUNTER = 40308
    TASK_INVALID_STATE = 40309
    PROMISE_NOT_FOUND = 40400
    SCHEDULE_NOT_FOUND = 40401
    LOCK_NOT_FOUND = 40402
    TASK_NOT_FOUND = 40403
    RECV_NOT_FOUND = 40404
    ROUTE_NOT_FOUND = 40405
    METHOD_NOT_ALLOWED = 40500
    REQUEST_TIMEOUT = 40800
    PROMISE_ALREADY_EXISTS = 40900
    SCHEDULE_ALREADY_EXISTS = 40901
    TASK_PRECONDITION_FAILED = 41200
    PAYLOAD_TOO_LARGE = 41300
    HEADERS_TOO_LARGE = 43100
    INTERNAL_ERROR = 50000
    STORE_ERROR = 50004
    SHUTTING_DOWN = 50300
    SUBMISSION_QUEUE_FULL = 50301
    TOO_MANY_CONNECTIONS = 50302
    NOT_READY = 50304

    @property
    def http_status(self) -> int:
        return int(self) // 100

    @property
    def message(self) -> str:
        return MESSAGES[self]


MESSAGES: dict[Code, str] = {
    Code.OK: "The request was successful",
    Code.CREATED: "The request was successful",
    Code.NO_CONTENT: "The request was successful",
    Code.INVALID_REQUEST: "The request is invalid",
    Code.UNAUTHORIZED: "The request is unauthorized",
    Code.FORBIDDEN: "The request is forbidden",
    Code.PROMISE_ALREADY_RESOLVED: "The promise has already been resolved",
    Code.PROMISE_ALREADY_REJECTED: "The promise has already been rejected",
    Code.PROMISE_ALREADY_CANCELED: "The promise has already been canceled",
    Code.PROMISE_ALREADY_TIMEDOUT: "The promise has already timedout",
    Code.LOCK_ALREADY_ACQUIRED: "The lock is already acquired",
    Code.TASK_ALREADY_CLAIMED: "The task is already claimed",
    Code.TASK_ALREADY_COMPLETED: "The task is already completed",
    Code.TASK_INVALID_COUNTER: "The task counter is invalid",
    Code.TASK_INVALID_STATE: "The task state is invalid",
    Code.PROMISE_NOT_FOUND: "The specified promise was not found",
    Code.SCHEDULE_NOT_FOUND: "The specified schedule was not found",
    Code.LOCK_NOT_FOUND: "The specified lock was not found",
    Code.TASK_NOT_FOUND: "The specified task was not found",
    Code.RECV_NOT_FOUND: "The specified recv couldn't be found",
    Code.ROUTE_NOT_FOUND: "The requested route does not exist",
    Code.METHOD_NOT_ALLOWED: "The method is not allowed on this route",
    Code.REQUEST_TIMEOUT: "The request was not received in time",
    Code.PROMISE_ALREADY_EXISTS: "The specified promise already exists",
    Code.SCHEDULE_ALREADY_EXISTS: "The specified schedule already exists",
    Code.TASK_PRECONDITION_FAILED: "The task precondition failed",
    Code.PAYLOAD_TOO_LARGE: "The request body is too large",
    Code.HEADERS_TOO_LARGE: "The request header fields are too large",
    Code.INTERNAL_ERROR: "There was an internal server error",
    Code.STORE_ERROR: "There was an error in the store",
    Code.SHUTTING_DOWN: "The system is shutting down",
    Code.SUBMISSION_QUEUE_FULL: "The submission queue is full",
    Code.TOO_MANY_CONNECTIONS: "The server has too many open connections",
    Code.NOT_READY: "The server is not ready",
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid request field, reported as a FieldValidationError detail."""

    field: str
    message: str


@dataclass(slots=True)
class ResonateError(Exception):
    """A failure with an API code.

    ``detail`` explains the cause in one short sentence meant for the client: never exception
    text or anything else internal. ``cause`` is the internal explanation (an exception's type
    and message), for the server's log only.
    """

    code: Code
    detail: str = ""
    fields: tuple[FieldProblem, ...] = field(default=())
    cause: str = ""

    def __post_init__(self) -> None:
        Exception.__init__(self, self.detail or self.code.message)

    def __str__(self) -> str:
        return self.detail or self.code.message

    def describe(self) -> str:
        """The client's text and, when there is one, the internal cause: for logs."""
        return f"{self}: {self.cause}" if self.cause else str(self)


# The code of an HTTP error that no operation produced (the HTTP layer's own refusals).
GENERIC_CODES: dict[int, Code] = {
    400: Code.INVALID_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.ROUTE_NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    408: Code.REQUEST_TIMEOUT,
    413: Code.PAYLOAD_TOO_LARGE,
    431: Code.HEADERS_TOO_LARGE,
    500: Code.INTERNAL_ERROR,
    503: Code.NOT_READY,
}


def code_for_status(status: int) -> Code:
    """The generic code of an HTTP error status; a status without one becomes 400 or 500."""
    return GENERIC_CODES.get(status) or (
        Code.INTERNAL_ERROR if status >= 500 else Code.INVALID_REQUEST
    )


def invalid(field_name: str, message: str) -> ResonateError:
    """A 400 for one request field."""
    return ResonateError(Code.INVALID_REQUEST, message, (FieldProblem(field_name, message),))


def bad_request(detail: str) -> ResonateError:
    return ResonateError(Code.INVALID_REQUEST, detail)


def describe(error: BaseException) -> str:
    """An error for the log: a ResonateError with its internal cause, anything else as is."""
    return error.describe() if isinstance(error, ResonateError) else str(error)
