"""Webhooks end to end: a real control plane process, the operator's CLI and a real local HTTP
receiver. A notification queued while the receiver is down survives a SIGKILL of the control
plane and is delivered, signed, after the restart; every attempt is in the log."""

import json
import subprocess
import time

import pytest

from control_plane.webhooks import EVENT_ID, SIGNATURE, verify
from tests.e2e.cluster import CLI, cp_env, eventually, operator, operator_args
from tests.e2e.conftest import free_port
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e


def cli(cp: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *operator_args(cp), *args], capture_output=True, text=True, timeout=60)


def test_a_notification_waits_in_the_outbox_through_a_kill_and_arrives_signed(spawn):
    env = cp_env(CP_WEBHOOK_ALLOW_PRIVATE="true", CP_WEBHOOK_RETRY_BASE_S="0.3", CP_WEBHOOK_RETRY_MAX_S="1")
    process, cp = spawn("control-plane", "serve", env=env)
    port = free_port()  # nobody listens there yet
    url = f"http://127.0.0.1:{port}/hooks/sentiedge"

    refused = cli(cp, "webhooks", "set", "--url", "ftp://example.com/hook")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "control-plane: INVALID_ARGUMENT: the webhook URL must start with https:// or http://, not ftp"]

    shown = cli(cp, "webhooks", "set", "--url", url)  # a table for people: the secret, once
    assert shown.returncode == 0, shown.stderr
    secret = next(w for w in shown.stdout.split() if w.startswith("whsec_"))
    again = operator(cp, "webhooks", "set", "--url", url)
    assert again["secret"] == "" and again["url"] == url  # set again: the same secret, not shown

    queued = operator(cp, "webhooks", "test")
    failing = eventually(lambda: [a for a in operator(cp, "webhooks", "log")["attempts"]
                                  if a["event_id"] == queued["event_id"]], what="an attempt at the dead receiver")
    assert failing[0]["status"] == 0 and failing[0]["error"].startswith("no answer")

    process.kill()  # SIGKILL: the notification is only in the store now
    receiver = Receiver(port=port)
    try:
        process.restart()
        eventually(lambda: receiver.received, what="the notification after the restart")
        headers, body = receiver.received[0]
        assert headers[EVENT_ID] == queued["event_id"]
        assert verify(secret, headers[SIGNATURE], body, time.time())
        assert json.loads(body)["type"] == "webhook.test"
        log = eventually(lambda: (d := operator(cp, "webhooks", "log"))["deliveries"][0]["state"] == "delivered"
                         and d, what="the delivery logged")
        attempts = [a for a in log["attempts"] if a["event_id"] == queued["event_id"]]
        assert attempts[0]["status"] == 200 and len(attempts) >= 2
        assert len(receiver.received) == 1  # delivered once
        listed = operator(cp, "webhooks", "list")["webhooks"]
        assert [(w["url"], w["pending"], w["secret"]) for w in listed] == [(url, 0, "")]
    finally:
        receiver.close()
