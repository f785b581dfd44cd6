"""The control plane's error tree. Each class carries the gRPC status code it maps to.

    CpError (INTERNAL)
    ├── InvalidArgument (INVALID_ARGUMENT)   a request is malformed; names what is wrong
    │   └── BundleRejected (INVALID_ARGUMENT) a pushed bundle fails verification
    ├── NotFound (NOT_FOUND)                 no such model, node or request
    ├── Unauthenticated (UNAUTHENTICATED)    no or unknown operator token or node credential
    ├── PermissionDenied (PERMISSION_DENIED) a credential for another node, revoked, or a spent enrollment
    ├── ResourceExhausted (RESOURCE_EXHAUSTED) over a rate limit (privacy filings per node)
    ├── FailedPrecondition (FAILED_PRECONDITION) the state does not allow it (e.g. no previous version)
    └── ConfigError (INVALID_ARGUMENT)       a setting has a value that cannot work
"""

from __future__ import annotations

import grpc


class CpError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(CpError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class BundleRejected(InvalidArgument):
    pass


class NotFound(CpError):
    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(CpError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(CpError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(CpError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(CpError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ConfigError(CpError):
    code = grpc.StatusCode.INVALID_ARGUMENT
