"""The HTTP status of each kind of error (sentiedge_core.errors.Kind): the edge's one mapping."""

from __future__ import annotations

from sentiedge_core.errors import Kind, SentiedgeError

STATUS = {
    Kind.INTERNAL: 500,
    Kind.INVALID: 400,
    Kind.TOO_LARGE: 413,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.FAILED_PRECONDITION: 409,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.TOO_MANY: 429,
    Kind.UNAVAILABLE: 503,
    Kind.TIMEOUT: 408,
    Kind.NO_SPACE: 507,
}


def status_of(exc: BaseException) -> int:
    """The status an error answers with: its kind's, a framework error's own, else 500."""
    if isinstance(exc, SentiedgeError):
        return STATUS[exc.kind]
    status = getattr(exc, "status_code", 500)  # Litestar's HTTPException
    return status if isinstance(status, int) else 500
