"""The one error tree of both services, rooted here. An error says what went wrong in words
(``message``, and ``field`` where one input is the culprit), names it for machines (``code``:
``invalid_input``, ``token_expired``, ...) and says what *kind* of failure it is (``kind``) —
never an HTTP status or a gRPC code. Each transport maps a kind to its own status in one place:
the edge's HTTP app (edge_node/http/status.py), the control plane's gRPC servicers
(control_plane/grpc_status.py). Each service adds its own classes under this root
(edge_node/errors.py, control_plane/errors.py).

    SentiedgeError (internal)
    ├── BundleError (internal)            a model bundle is missing, corrupt, unverifiable or fails its golden examples
    ├── InvalidInput (invalid)            a request or argument is malformed; ``field`` names the culprit
    │   └── LimitExceeded (too_large)     an input is over a configured limit; names the limit
    ├── ConfigError (invalid)             a setting has a value that cannot work
    ├── NotFound (not_found)              the named record does not exist
    ├── FailedPrecondition (failed_precondition)  the state does not allow it (e.g. no previous version)
    ├── Unauthorized (unauthenticated)    no, an unknown, revoked or expired key, token or credential
    ├── Forbidden (forbidden)             a valid credential that may not do this (another user or app, a scope)
    └── RateLimited (too_many)            over a rate limit; ``retry_after`` says when to try again
"""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    """What kind of failure an error is; a transport maps each to its own status."""

    INTERNAL = "internal"  # the service failed (a bug, a broken store or bundle)
    INVALID = "invalid"  # the request or a setting is malformed
    TOO_LARGE = "too_large"  # an input is over a configured limit
    NOT_FOUND = "not_found"  # the named thing does not exist
    CONFLICT = "conflict"  # the request contradicts what is recorded
    FAILED_PRECONDITION = "failed_precondition"  # the state does not allow it now
    UNAUTHENTICATED = "unauthenticated"  # no credential, or one that is unknown, revoked or expired
    FORBIDDEN = "forbidden"  # a valid credential that may not do this
    TOO_MANY = "too_many"  # over a rate limit or a queue's bound: retry later
    UNAVAILABLE = "unavailable"  # not ready now (loading, catching up): retry later
    TIMEOUT = "timeout"  # the request did not arrive in time
    NO_SPACE = "no_space"  # the disk is full


class SentiedgeError(Exception):
    kind = Kind.INTERNAL
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BundleError(SentiedgeError):
    code = "bundle_invalid"


class InvalidInput(SentiedgeError):
    kind = Kind.INVALID
    code = "invalid_input"


class LimitExceeded(InvalidInput):
    kind = Kind.TOO_LARGE
    code = "limit_exceeded"


class ConfigError(SentiedgeError):
    kind = Kind.INVALID
    code = "invalid_setting"


class NotFound(SentiedgeError):
    kind = Kind.NOT_FOUND
    code = "not_found"


class FailedPrecondition(SentiedgeError):
    kind = Kind.FAILED_PRECONDITION
    code = "failed_precondition"


class _Refusal(SentiedgeError):
    """Access refusals: ``code`` names the reason (missing_client_key, token_expired, ...)."""

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        if reason:
            self.code = reason


class Unauthorized(_Refusal):
    kind = Kind.UNAUTHENTICATED
    code = "unauthorized"


class Forbidden(_Refusal):
    kind = Kind.FORBIDDEN
    code = "forbidden"


class RateLimited(_Refusal):
    kind = Kind.TOO_MANY
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
