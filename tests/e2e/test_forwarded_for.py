"""The per-address rate limit over real HTTP: X-Forwarded-For is believed only from a proxy
listed in EDGE_TRUSTED_PROXIES (uvicorn believes it from loopback unless told otherwise)."""

import pytest

from tests.credentials import DevApp
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def _statuses(edge: str, app: DevApp, forwarded: list[str]) -> list[int]:
    return [call(edge, "GET", "/v1/personalize", headers={**app.anonymous(), "x-forwarded-for": address})[0]
            for address in forwarded]


def _edge(spawn, bundle_dir, tmp_path, **env: str) -> tuple[str, DevApp]:
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                    env={"EDGE_RATE_LIMIT_PER_ADDRESS": "5", **env})
    port = edge.rsplit(":", 1)[1]
    return edge, DevApp(tmp_path / f"data-{port}" / "dev-app.json")


def test_rotating_x_forwarded_for_from_loopback_does_not_escape_the_per_address_limit(spawn, bundle_dir, tmp_path):
    edge, app = _edge(spawn, bundle_dir, tmp_path)
    statuses = _statuses(edge, app, [f"203.0.113.{i}" for i in range(1, 41)])
    # 5/s with a burst of 10 from one real address (loopback): the forged addresses change nothing.
    assert statuses.count(429) >= 10, statuses
    assert set(statuses) <= {200, 429}


def test_a_trusted_proxys_forwarded_address_is_the_one_limited(spawn, bundle_dir, tmp_path):
    edge, app = _edge(spawn, bundle_dir, tmp_path, EDGE_TRUSTED_PROXIES="127.0.0.1,::1")
    # Every client behind the proxy has its own bucket: 40 distinct clients, none refused ...
    assert _statuses(edge, app, [f"203.0.113.{i}" for i in range(1, 41)]) == [200] * 40
    # ... and one client is limited by its own address, whichever proxy hop added it last.
    one = _statuses(edge, app, ["198.51.100.7"] * 30)
    assert one.count(429) >= 10, one
    assert _statuses(edge, app, ["198.51.100.8"]) == [200]


def test_an_untrusted_proxy_setting_is_refused_at_start_up():
    from edge_node.config import load_settings
    from edge_node.errors import ConfigError

    with pytest.raises(ConfigError, match=r"trusted_proxies: '\*' is not an IP address or CIDR"):
        load_settings({"EDGE_TRUSTED_PROXIES": "10.0.0.0/8,*"})
    assert load_settings({"EDGE_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}).trusted_proxy_list == ["10.0.0.0/8", "::1"]
