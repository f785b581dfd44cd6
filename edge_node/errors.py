"""The edge node's error tree: the shared core's (sentiedge_core.errors), whose root is
``EdgeError`` here, and the edge's own. Each class has a ``kind``; the HTTP status of each kind
is chosen in one place, edge_node/http/status.py.

    EdgeError (internal)          = sentiedge_core.errors.SentiedgeError
    ├── BundleError, InvalidInput (LimitExceeded), NotFound, Unauthorized, Forbidden,
    │   RateLimited, ConfigError  from the core
    ├── Conflict (conflict)       the request contradicts what is recorded (an id already linked elsewhere)
    ├── StoreError (internal)     the disk store cannot be opened or written
    │   └── StorageFull (no_space) the disk is full: writes are refused, deletions still succeed
    ├── RequestTimeout (timeout)  the request body did not arrive in time (EDGE_BODY_TIMEOUT_S)
    └── NotReady (unavailable)    the model is not loaded yet (or is being replaced)
        └── OutboxFull            too many privacy filings wait for the control plane; retry later
"""

from __future__ import annotations

from sentiedge_core.errors import (
    BundleError,
    ConfigError,
    Forbidden,
    InvalidInput,
    Kind,
    LimitExceeded,
    NotFound,
    RateLimited,
    Unauthorized,
)
from sentiedge_core.errors import SentiedgeError as EdgeError

__all__ = ["EdgeError", "BundleError", "ConfigError", "Forbidden", "InvalidInput", "LimitExceeded", "NotFound",
           "RateLimited", "Unauthorized", "Conflict", "NotReady", "StoreError", "StorageFull", "RequestTimeout",
           "OutboxFull"]


class NotReady(EdgeError):
    kind = Kind.UNAVAILABLE
    code = "not_ready"


class Conflict(EdgeError):
    kind = Kind.CONFLICT
    code = "conflict"

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        if reason:
            self.code = reason


class StoreError(EdgeError):
    code = "store_error"


class StorageFull(StoreError):
    kind = Kind.NO_SPACE
    code = "insufficient_storage"


class RequestTimeout(EdgeError):
    kind = Kind.TIMEOUT
    code = "request_timeout"


class OutboxFull(NotReady):
    code = "privacy_outbox_full"
    retry_after = 60.0
