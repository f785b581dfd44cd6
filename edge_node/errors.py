"""The edge node's error tree: the shared core's (sentiedge_core.errors), whose root is
``EdgeError`` here, and the edge's own. Each class carries the HTTP status it maps to.

    EdgeError (500)               = sentiedge_core.errors.SentiedgeError
    ├── BundleError, InvalidInput (LimitExceeded), NotFound, Unauthorized, Forbidden,
    │   RateLimited, ConfigError  from the core
    ├── Conflict (409)            the request contradicts what is recorded (an id already linked elsewhere)
    ├── StoreError (500)          the disk store cannot be opened or written
    │   └── StorageFull (507)     the disk is full: writes are refused, deletions still succeed
    ├── RequestTimeout (408)      the request body did not arrive in time (EDGE_BODY_TIMEOUT_S)
    └── NotReady (503)            the model is not loaded yet (or is being replaced)
        └── OutboxFull (503)      too many privacy filings wait for the control plane; retry later
"""

from __future__ import annotations

from sentiedge_core.errors import (
    BundleError,
    ConfigError,
    Forbidden,
    InvalidInput,
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
    status_code = 503
    code = "not_ready"


class Conflict(EdgeError):
    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        if reason:
            self.code = reason


class StoreError(EdgeError):
    code = "store_error"


class StorageFull(StoreError):
    status_code = 507
    code = "insufficient_storage"


class RequestTimeout(EdgeError):
    status_code = 408
    code = "request_timeout"


class OutboxFull(NotReady):
    code = "privacy_outbox_full"
    retry_after = 60.0
