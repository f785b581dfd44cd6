"""A Sync stream whose heartbeats stop being receipted is replaced: a real edge agent against a
real gRPC server on loopback that welcomes the edge and then never receipts a heartbeat (a
control plane that stopped reading the stream), and against one that receipts them (kept)."""

import asyncio
import time

import grpc
import pytest

from edge_node.config import load_settings
from edge_node.wiring import build
from protos.sentiedge.v1 import sync_pb2, sync_pb2_grpc


class ControlPlaneStandIn(sync_pb2_grpc.EdgeSyncServicer):
    """Welcomes every stream; answers heartbeats with receipts only while ``answering``."""

    def __init__(self, answering: bool) -> None:
        self.answering = answering
        self.streams = 0
        self.heartbeats = 0

    async def Sync(self, request_iterator, context):  # noqa: N802 (gRPC method name)
        self.streams += 1
        hello = await request_iterator.__anext__()
        yield sync_pb2.ControlMessage(welcome=sync_pb2.Welcome(node_id=hello.hello.node_id,
                                                               heartbeat_interval_s=0.2))
        async for message in request_iterator:
            if message.WhichOneof("kind") == "heartbeat":
                self.heartbeats += 1
                if self.answering:
                    yield sync_pb2.ControlMessage(heartbeat_receipt=sync_pb2.HeartbeatReceipt(
                        seq=message.heartbeat.seq))


def run_agent(model, tmp_path, answering: bool, seconds: float) -> tuple[ControlPlaneStandIn, float]:
    async def main():
        server = grpc.aio.server()
        servicer = ControlPlaneStandIn(answering)
        sync_pb2_grpc.add_EdgeSyncServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        settings = load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_CONTROL_PLANE": f"127.0.0.1:{port}",
                                  "EDGE_PSEUDONYM_KEY": "k", "EDGE_SYNC_STALL_S": "1.5",
                                  "EDGE_SYNC_BACKOFF_MAX_S": "0.2"})
        node = build(settings, model)
        node.sync.start()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return servicer, node.metrics.registry.get_sample_value("sentiedge_sync_stalls_total")
        finally:
            await node.sync.stop()
            await server.stop(0)
            node.store.close()

    return asyncio.run(main())


def test_a_silent_stream_is_replaced_by_a_new_one(model, tmp_path):
    servicer, stalls = run_agent(model, tmp_path, answering=False, seconds=6.0)
    assert servicer.heartbeats > 3  # the edge kept sending ...
    assert servicer.streams >= 2 and stalls >= 1  # ... no receipt came for 1.5 s (and 1 s more): it reconnected


def test_a_stream_that_answers_is_kept(model, tmp_path):
    servicer, stalls = run_agent(model, tmp_path, answering=True, seconds=4.0)
    assert servicer.heartbeats > 5
    assert servicer.streams == 1 and stalls == 0


def test_the_stall_timeout_must_be_positive(tmp_path):
    with pytest.raises(Exception, match="sync_stall_s must be > 0"):
        load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_SYNC_STALL_S": "0"})
