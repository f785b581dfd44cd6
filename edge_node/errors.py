"""The edge node's error tree. Each class carries the HTTP status it maps to.

    EdgeError (500)
    ├── BundleError (500)         a model bundle is missing, corrupt, unverifiable or fails its golden examples
    ├── InvalidInput (400)        a request or argument is malformed; ``field`` names the culprit
    │   └── LimitExceeded (413)   an input is over a configured limit; names the limit
    ├── NotFound (404)            the named user has no such record on this node
    ├── ConfigError (400)         a setting has a value that cannot work
    ├── StoreError (500)          the disk store cannot be opened or written
    └── NotReady (503)            the model is not loaded yet (or is being replaced)
"""

from __future__ import annotations


class EdgeError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BundleError(EdgeError):
    code = "bundle_invalid"


class InvalidInput(EdgeError):
    status_code = 400
    code = "invalid_input"


class LimitExceeded(InvalidInput):
    status_code = 413
    code = "limit_exceeded"


class ConfigError(EdgeError):
    status_code = 400
    code = "invalid_setting"


class NotReady(EdgeError):
    status_code = 503
    code = "not_ready"


class NotFound(EdgeError):
    status_code = 404
    code = "not_found"


class StoreError(EdgeError):
    code = "store_error"
