"""The status mapping (docs/grpc.md, "Errors"): one entry per code of the catalogue, each by
the rule of its HTTP status, and each sent as such, with its 5-digit code as a trailer."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest

from resonate.core.clock import ManualClock
from resonate.core.errors import Code, ResonateError
from resonate.server.grpc.gen import promise_pb2
from resonate.server.grpc.service import Call, Dispatcher, Method
from resonate.server.grpc.status import ERROR_CODE_KEY, STATUS, status_of
from resonate.server.http.routes import Context

S = grpc.StatusCode


def expected_status(code: Code) -> grpc.StatusCode:
    """The rule, written from the HTTP status (and, for 403, the code) independently of the
    table."""
    status = code.http_status
    if status < 300:
        return S.OK
    if status == 403:
        return S.PERMISSION_DENIED if code is Code.FORBIDDEN else S.FAILED_PRECONDITION
    if status == 503:
        return S.UNAVAILABLE
    if status >= 500:
        return S.INTERNAL
    return {
        400: S.INVALID_ARGUMENT,
        401: S.UNAUTHENTICATED,
        404: S.NOT_FOUND,
        405: S.UNIMPLEMENTED,
        408: S.DEADLINE_EXCEEDED,
        409: S.ALREADY_EXISTS,
        412: S.FAILED_PRECONDITION,
        413: S.RESOURCE_EXHAUSTED,
        431: S.RESOURCE_EXHAUSTED,
    }[status]


def test_every_code_of_the_catalogue_has_one_status():
    assert set(STATUS) == set(Code)


@pytest.mark.parametrize("code", list(Code), ids=lambda c: f"{c.name}-{int(c)}")
def test_status_follows_the_rule(code):
    assert status_of(code) == expected_status(code)


ERRORS = [code for code in Code if code.http_status >= 400]


@pytest.fixture
async def raising_server():
    """A server with one method, whose handler raises the code named by the request's id."""

    async def handler(ctx: Context, request: Any, call: Call) -> Any:
        raise ResonateError(Code(int(request.id)), f"raised {request.id}")

    ctx = Context(store=cast(Any, None), clock=ManualClock(0))
    dispatcher = Dispatcher(ctx)
    method = grpc.unary_unary_rpc_method_handler(
        dispatcher.unary("/test.Errors/Raise", Method("Raise", handler)),
        request_deserializer=promise_pb2.ReadPromiseRequest.FromString,
        response_serializer=promise_pb2.ReadPromiseResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Errors", {"Raise": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(
            "/test.Errors/Raise",
            request_serializer=promise_pb2.ReadPromiseRequest.SerializeToString,
            response_deserializer=promise_pb2.ReadPromiseResponse.FromString,
        )
    await server.stop(None)


async def test_every_error_code_goes_out_with_its_status_and_code(raising_server):
    for code in ERRORS:
        call = raising_server(promise_pb2.ReadPromiseRequest(id=str(int(code)), requestId="r1"))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        error = raised.value
        assert error.code() == expected_status(code), code
        assert error.details() == f"raised {int(code)}"
        trailers = dict(error.trailing_metadata())
        assert trailers[ERROR_CODE_KEY] == str(int(code))
        assert trailers["request-id"] == "r1"
