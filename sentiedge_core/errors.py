"""The errors of the shared core; each service's own tree extends this one. Each class
carries the HTTP status it maps to at the edge (the control plane maps them to gRPC codes).

    SentiedgeError (500)
    ├── BundleError (500)         a model bundle is missing, corrupt, unverifiable or fails its golden examples
    ├── InvalidInput (400)        a request or argument is malformed; ``field`` names the culprit
    │   └── LimitExceeded (413)   an input is over a configured limit; names the limit
    ├── NotFound (404)            the named record does not exist
    ├── Unauthorized (401)        no, an unknown, revoked or expired client key or user token
    ├── Forbidden (403)           a valid credential that may not do this (another user or app, a missing scope)
    ├── RateLimited (429)         over a rate limit; ``retry_after`` says when to try again
    └── ConfigError (400)         a setting has a value that cannot work
"""

from __future__ import annotations


class SentiedgeError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BundleError(SentiedgeError):
    code = "bundle_invalid"


class InvalidInput(SentiedgeError):
    status_code = 400
    code = "invalid_input"


class LimitExceeded(InvalidInput):
    status_code = 413
    code = "limit_exceeded"


class ConfigError(SentiedgeError):
    status_code = 400
    code = "invalid_setting"


class NotFound(SentiedgeError):
    status_code = 404
    code = "not_found"


class _Refusal(SentiedgeError):
    """Access refusals: ``code`` names the reason (missing_client_key, token_expired, ...)."""

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        if reason:
            self.code = reason


class Unauthorized(_Refusal):
    status_code = 401
    code = "unauthorized"


class Forbidden(_Refusal):
    status_code = 403
    code = "forbidden"


class RateLimited(_Refusal):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
