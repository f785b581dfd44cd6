"""The control plane's gRPC server: EdgeSync, the operator services, health and reflection.
SIGTERM stops accepting, lets calls finish for a grace period, and exits 0."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from control_plane import admin_servicers
from control_plane.config import CpSettings
from control_plane.errors import ConfigError, CpError
from control_plane.state import ControlPlane
from control_plane.sync_servicer import EdgeSyncServicer
from protos.sentiedge.v1 import operator_pb2, sync_pb2, sync_pb2_grpc
from sentiedge_core.key_files import lock_exclusively, private_dir

log = logging.getLogger("control_plane")

SERVICES = [
    sync_pb2.DESCRIPTOR.services_by_name["EdgeSync"].full_name,
    *(operator_pb2.DESCRIPTOR.services_by_name[s].full_name
      for s in ("Models", "Privacy", "Nodes", "Cohorts", "Admin", "Rules", "Experiments", "Apps", "Topics",
                "Webhooks")),
]


def build(settings: CpSettings, cp: ControlPlane) -> tuple[grpc.aio.Server, health.HealthServicer]:
    limit = settings.max_message_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", limit),
                                      ("grpc.keepalive_time_ms", 20_000),
                                      ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                                      ("grpc.keepalive_permit_without_calls", 1),
                                      # A second control plane on a taken port fails to start rather
                                      # than silently sharing it (gRPC sets SO_REUSEPORT by default).
                                      ("grpc.so_reuseport", 0)])
    sync_pb2_grpc.add_EdgeSyncServicer_to_server(EdgeSyncServicer(cp), server)
    admin_servicers.add_all(server, cp)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    if settings.tls:
        credentials = grpc.ssl_server_credentials(
            [(Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())],
            root_certificates=Path(settings.tls_client_ca).read_bytes(), require_client_auth=True)
    _check_listen(settings)  # asked first: gRPC would print its own raw error line
    try:
        if settings.tls:
            server.add_secure_port(settings.address, credentials)  # and no plain port at all
        else:
            server.add_insecure_port(settings.address)
    except RuntimeError:
        raise _unusable(settings) from None
    return server, health_servicer


def _unusable(settings: CpSettings) -> CpError:
    return CpError(f"cannot listen on {settings.address}: the port is in use or the host is not this machine's "
                   f"(CP_HOST / CP_PORT, --host / --port)")


def _check_listen(settings: CpSettings) -> None:
    if not _can_listen(settings.host, settings.port):
        raise _unusable(settings)


def _lock_data_dir(directory: Path) -> int:
    """One control plane per SQLite data directory: a second one (another port, the same store)
    is refused before it writes anything, instead of serving and changing the same state. The
    lock goes with the process (kill -9 included)."""
    fd = lock_exclusively(private_dir(directory) / "serve.lock")
    if fd is None:
        raise ConfigError(f"the data in {directory} is in use by another control plane (one per data directory: "
                          f"CP_DATA_DIR / --data-dir picks another)")
    return fd


def _can_listen(host: str, port: int) -> bool:
    """Whether a listening socket can be bound on (host, port) now, on at least one address the host
    resolves to, as gRPC requires (port 0: any is free)."""
    if port == 0:
        return True
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no obstacle
            try:
                probe.bind(address)
                return True
            except OSError:
                continue
    return False


async def serve(settings: CpSettings) -> int:
    lock = None if settings.database_url else _lock_data_dir(settings.data_path)  # PostgreSQL replicas may share
    # Before the control plane writes anything (a generated admin.token, the development app's keys):
    # a start that cannot serve leaves no credential behind that nobody was told about.
    _check_listen(settings)
    cp = ControlPlane(settings)  # start-up work before serving may block: nothing is served yet
    cp.development_app()
    cp.listen_to_replicas()
    server, health_servicer = build(settings, cp)
    await server.start()
    if settings.metrics_port:
        cp.metrics.serve(settings.host, settings.metrics_port)
    for name in ["", *SERVICES]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("control plane listening on %s with %s (data in %s)", settings.address,
             "mTLS" if settings.tls else "plain gRPC (no TLS: development only)", settings.data_dir)
    if cp.node_auth.allow_anonymous:
        log.warning("CP_ALLOW_ANONYMOUS_NODES: edges may sync without a credential, so any local process can act "
                    "as any unenrolled node: receive every app's verification keys (HS256 secrets mint user tokens), "
                    "file privacy requests and acknowledge them. Development only; never expose this port.")
    elif not settings.tls:
        log.info("edges must present a node credential (control-plane nodes --enroll NODE)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    background = [asyncio.create_task(_prune(cp)), asyncio.create_task(_judge_trends(cp)),
                  asyncio.create_task(_deliver_webhooks(cp))]
    await stop.wait()
    log.info("shutting down: draining calls")
    for task in background:
        task.cancel()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    cp.close()
    if lock is not None:
        os.close(lock)
    log.info("control plane stopped")
    return 0


async def _prune(cp: ControlPlane) -> None:
    while True:
        await asyncio.sleep(cp.settings.maintenance_interval_s)
        try:  # database work: in a worker thread, off the streams' event loop
            await asyncio.to_thread(cp.cohorts.prune, cp.now())
            await asyncio.to_thread(cp.segments.prune, cp.now(), cp.cohorts.horizon_s)
            await asyncio.to_thread(cp.store.prune_webhooks, cp.now() - cp.settings.webhook_log_days * 86400)
            if await asyncio.to_thread(cp.neighbours.prune, cp.now()):
                cp.wake_all()  # a table lost its oldest windows: every stream sends it
            floor, compacted = await asyncio.to_thread(cp.ledger.compact, cp.now(), cp.settings.privacy_compact_after_s)
            if compacted:
                log.info("privacy log compacted: %d entries every node applied, up to sequence %d", compacted, floor)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("control plane maintenance failed")


async def _judge_trends(cp: ControlPlane) -> None:
    """Every CP_TREND_INTERVAL_S: judge every topic's trend; a fired or cleared one is notified."""
    while True:
        await asyncio.sleep(cp.settings.trend_interval_s)
        try:
            for trend in await asyncio.to_thread(cp.trends.evaluate, cp.now()):
                log.info("topic trend %s of tenant %s %s: negative share %.2f against %.2f (p=%.2g)", trend.topic,
                         trend.tenant, "fired" if trend.firing else "cleared", trend.recent_share,
                         trend.baseline_share, trend.p_value)
        except Exception:  # keep judging; the next round retries
            log.exception("judging topic trends failed")


WEBHOOK_POLL_S = 1.0  # how often the outbox is looked at for due notifications


async def _deliver_webhooks(cp: ControlPlane) -> None:
    """Send due webhook notifications (several at once, each in a worker thread), then look again."""
    while True:
        try:
            due = await asyncio.to_thread(cp.sender.due, cp.now())
            if due:
                await asyncio.gather(*(asyncio.to_thread(cp.sender.deliver, n) for n in due))
                continue
        except Exception:  # keep delivering; what was claimed is due again when its lease ends
            log.exception("delivering webhooks failed")
        await asyncio.sleep(WEBHOOK_POLL_S)
