"""The gRPC status code of each kind of error (sentiedge_core.errors.Kind): the control plane's
one mapping, used by both servicers (sync_servicer.py, admin_servicers.py)."""

from __future__ import annotations

from typing import NoReturn

import grpc

from sentiedge_core.errors import Kind, SentiedgeError

STATUS = {
    Kind.INTERNAL: grpc.StatusCode.INTERNAL,
    Kind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    Kind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Kind.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Kind.TOO_MANY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Kind.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Kind.NO_SPACE: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_of(exc: SentiedgeError) -> grpc.StatusCode:
    return STATUS[exc.kind]


async def abort(context: grpc.aio.ServicerContext, exc: SentiedgeError) -> NoReturn:
    """End the call with the error's status and message."""
    await context.abort(status_of(exc), exc.message)
    raise AssertionError("context.abort returned")  # it raises; this line tells a reader (and mypy) so
