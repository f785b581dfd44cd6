"""Where an edge's app set comes from, offline first.

1. The control plane streams it over Sync; the edge persists every set it receives, so a
   restart serves the same apps before it reconnects.
2. A standalone edge reads ``EDGE_APPS_FILE``: JSON with raw keys, as an operator writes it::

       {"apps": [{"name": "shop", "app_id": "app_shop", "origins": ["https://shop.example"],
                  "client_keys": ["ck_..."],
                  "signing_keys": [{"kid": "k1", "alg": "EdDSA", "public_key": "-----BEGIN PUBLIC KEY-----..."}],
                  "server_keys": [{"name": "backend", "key": "sk_...", "scopes": ["events:write"]}]}]}

3. A standalone edge with neither generates a development app into its data directory
   (``dev-app.json``, mode 0600) and logs where, as the control plane does for its token.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import msgspec

from edge_node.metrics import EdgeMetrics
from edge_node.personalization.cohorts import CohortBook
from edge_node.store import EdgeStore
from sentiedge_core.access import AppSet, Gatekeeper
from sentiedge_core.apps_file import DEV_FILE, from_file, read, write_development_file

__all__ = ["DEV_FILE", "from_file", "read", "write_development_file", "development_app", "initial", "save", "AppsInUse"]
log = logging.getLogger("edge_node")
_decode_set = msgspec.msgpack.Decoder(AppSet)
_encode = msgspec.msgpack.Encoder().encode


def development_app(data_dir: Path, origins: list[str]) -> Path:
    """Write a development app with every scope into the data dir, once; returns its path."""
    path = data_dir / DEV_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        write_development_file(path, app_id="app_dev", origins=origins, client_key=f"ck_{secrets.token_urlsafe(18)}",
                               kid="dev-1", server_key=f"sk_{secrets.token_urlsafe(24)}")
    return path


def initial(store: EdgeStore, *, apps_file: str, standalone: bool, data_dir: Path, origins: list[str]) -> AppSet:
    """The app set an edge starts with."""
    if apps_file:
        return from_file(Path(apps_file))
    if not standalone:
        raw = store.value("apps")
        return _decode_set.decode(raw) if raw else AppSet()
    path = development_app(data_dir, origins)
    log.debug("no EDGE_APPS_FILE: serving the development app in %s", path)  # said once, by preflight
    return from_file(path)


def save(store: EdgeStore, apps: AppSet) -> None:
    """Keep the set the control plane sent, for a restart before it reconnects."""
    store.set_value("apps", _encode(apps))


class AppsInUse:
    """The app set this node verifies keys and tokens against from now on (a revocation applies at once)."""

    def __init__(self, store: EdgeStore, *, access: Gatekeeper, cohorts: CohortBook, metrics: EdgeMetrics) -> None:
        self.store = store
        self.access = access
        self.cohorts = cohorts
        self.metrics = metrics

    def use(self, apps: AppSet, *, persist: bool = False) -> None:
        if persist:
            save(self.store, apps)
        self.access.set_apps(apps)
        self.cohorts.legacy_tenant = apps.legacy_tenant  # owns the cells written before tenants
        self.metrics.apps_known.set(sum(not a.revoked_at for a in apps.apps))
