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
from typing import TYPE_CHECKING

import msgspec

from sentiedge_core.access import AppSet
from sentiedge_core.apps_file import DEV_FILE, from_file, read, write_development_file

if TYPE_CHECKING:
    from edge_node.store import EdgeStore

__all__ = ["DEV_FILE", "from_file", "read", "write_development_file", "development_app", "initial", "persist"]
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


def persist(store: EdgeStore, apps: AppSet) -> None:
    store.set_value("apps", _encode(apps))
