"""The apps file: an operator's JSON with raw keys, read into an app set (keys digested).

    {"apps": [{"name": "shop", "app_id": "app_shop", "origins": ["https://shop.example"],
               "client_keys": ["ck_..."],
               "signing_keys": [{"kid": "k1", "alg": "HS256", "secret": "..."},
                                {"kid": "k2", "alg": "EdDSA", "public_key": "-----BEGIN PUBLIC KEY-----..."}],
               "server_keys": [{"name": "backend", "key": "sk_...", "scopes": ["events:write"]}]}]}

A standalone edge reads it (EDGE_APPS_FILE); both services write development apps in it.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from sentiedge_core.access import SCOPES, App, AppSet, KeyDigest, ServerKey, SigningKey, digest
from sentiedge_core.errors import ConfigError

DEV_FILE = "dev-app.json"


class FileServerKey(msgspec.Struct, kw_only=True):
    name: str
    key: str
    scopes: list[str] = []


class FileApp(msgspec.Struct, kw_only=True):
    name: str
    app_id: str = ""
    origins: list[str] = []
    client_keys: list[str] = []
    signing_keys: list[SigningKey] = []
    server_keys: list[FileServerKey] = []


class AppsFile(msgspec.Struct, kw_only=True):
    apps: list[FileApp]


def from_file(path: Path) -> AppSet:
    try:
        parsed = msgspec.json.decode(path.read_bytes(), type=AppsFile)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"cannot read apps from {path} (EDGE_APPS_FILE): {exc}") from exc
    apps = []
    for entry in parsed.apps:
        if not entry.client_keys:
            raise ConfigError(f"app {entry.name!r} in {path} has no client_keys")
        for signing in entry.signing_keys:
            if signing.alg not in ("HS256", "EdDSA") or not (signing.secret if signing.alg == "HS256"
                                                             else signing.public_key):
                raise ConfigError(f"app {entry.name!r} in {path}: signing key {signing.kid!r} needs alg HS256 with "
                                  f"a secret, or EdDSA with a public_key")
        for server_key in entry.server_keys:
            if not server_key.key.startswith("sk_") or set(server_key.scopes) - set(SCOPES):
                raise ConfigError(f"app {entry.name!r} in {path}: server key {server_key.name!r} must start with "
                                  f"sk_ and use scopes from {', '.join(SCOPES)}")
        apps.append(App(app_id=entry.app_id or f"app_{entry.name}", name=entry.name, origins=entry.origins,
                        client_keys=[KeyDigest(sha256=digest(k)) for k in entry.client_keys],
                        signing_keys=entry.signing_keys,
                        server_keys=[ServerKey(name=k.name, sha256=digest(k.key), scopes=k.scopes)
                                     for k in entry.server_keys]))
    return AppSet(version=1, apps=apps)


def write_development_file(path: Path, *, app_id: str, origins: list[str], client_key: str, kid: str,
                           secret: str, server_key: str) -> Path:
    """An apps file (mode 0600) holding one app "dev" with its raw keys and a server key
    "dev-backend" of every scope: what `make run`, the README and the tests read."""
    body = {"apps": [{
        "name": "dev", "app_id": app_id, "origins": origins, "client_keys": [client_key],
        "signing_keys": [{"kid": kid, "alg": "HS256", "secret": secret}],
        "server_keys": [{"name": "dev-backend", "key": server_key, "scopes": list(SCOPES)}],
    }]}
    path.write_text(json.dumps(body, indent=2) + "\n")
    path.chmod(0o600)
    return path
