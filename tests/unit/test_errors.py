"""The one error tree: errors name a kind, never a transport's status; each transport maps every
kind in one place (the edge's HTTP app, the control plane's gRPC servicers)."""

import grpc

import control_plane.errors as cp
import edge_node.errors as edge
from control_plane.grpc_status import status_of as grpc_status
from edge_node.http.status import status_of as http_status
from sentiedge_core.errors import Kind, SentiedgeError


def tree(cls: type) -> list[type]:
    return [cls, *(c for sub in cls.__subclasses__() for c in tree(sub))]


def test_every_error_of_both_services_is_in_one_tree_and_carries_no_transport_status():
    errors = {getattr(module, name) for module in (edge, cp) for name in module.__all__}
    assert errors <= set(tree(SentiedgeError))
    for cls in tree(SentiedgeError):
        assert isinstance(cls.kind, Kind), cls
        assert not hasattr(cls, "status_code") and not isinstance(cls.code, grpc.StatusCode), cls


def test_each_transport_maps_every_kind():
    for kind in Kind:
        error = SentiedgeError("x")
        error.kind = kind
        assert 400 <= http_status(error) < 600 and isinstance(grpc_status(error), grpc.StatusCode)


def test_the_statuses_the_clients_see():
    http = {edge.InvalidInput: 400, edge.LimitExceeded: 413, edge.ConfigError: 400, edge.NotFound: 404,
            edge.Unauthorized: 401, edge.Forbidden: 403, edge.RateLimited: 429, edge.Conflict: 409,
            edge.NotReady: 503, edge.OutboxFull: 503, edge.StorageFull: 507, edge.StoreError: 500,
            edge.RequestTimeout: 408, edge.BundleError: 500, edge.EdgeError: 500}
    assert {cls: http_status(cls("x")) for cls in http} == http
    codes = grpc.StatusCode
    rpc = {cp.CpError: codes.INTERNAL, cp.InvalidArgument: codes.INVALID_ARGUMENT,
           cp.BundleRejected: codes.INVALID_ARGUMENT, cp.NotFound: codes.NOT_FOUND,
           cp.Unauthenticated: codes.UNAUTHENTICATED, cp.PermissionDenied: codes.PERMISSION_DENIED,
           cp.ResourceExhausted: codes.RESOURCE_EXHAUSTED, cp.FailedPrecondition: codes.FAILED_PRECONDITION,
           cp.ConfigError: codes.INVALID_ARGUMENT}
    assert {cls: grpc_status(cls("x")) for cls in rpc} == rpc
