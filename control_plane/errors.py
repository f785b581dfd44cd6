"""The control plane's names for the one error tree (sentiedge_core.errors), and its own class.
No gRPC here: each error has a ``kind``, and the gRPC servicers map kinds to status codes in one
place (control_plane/grpc_status.py).

    CpError (internal)                     = SentiedgeError, the root
    ├── InvalidArgument (invalid)          = InvalidInput: a request is malformed; names what is wrong
    │   └── BundleRejected (invalid)       a pushed bundle fails verification
    ├── NotFound (not_found)               no such model, node or request
    ├── Unauthenticated (unauthenticated)  = Unauthorized: no or unknown operator token or node credential
    ├── PermissionDenied (forbidden)       = Forbidden: a credential for another node, revoked, or a spent enrollment
    ├── ResourceExhausted (too_many)       = RateLimited: over a rate limit (privacy filings per node)
    ├── FailedPrecondition                 the state does not allow it (e.g. no previous version)
    └── ConfigError (invalid)              a setting has a value that cannot work
"""

from __future__ import annotations

from sentiedge_core.errors import (
    ConfigError,
    FailedPrecondition,
    NotFound,
)
from sentiedge_core.errors import Forbidden as PermissionDenied
from sentiedge_core.errors import InvalidInput as InvalidArgument
from sentiedge_core.errors import RateLimited as ResourceExhausted
from sentiedge_core.errors import SentiedgeError as CpError
from sentiedge_core.errors import Unauthorized as Unauthenticated

__all__ = ["CpError", "InvalidArgument", "BundleRejected", "NotFound", "Unauthenticated", "PermissionDenied",
           "ResourceExhausted", "FailedPrecondition", "ConfigError"]


class BundleRejected(InvalidArgument):
    code = "bundle_rejected"
