"""The apps file: an operator's JSON with raw keys, read into an app set (keys digested).

    {"apps": [{"name": "shop", "app_id": "app_shop", "tenant": "shop", "origins": ["https://shop.example"],
               "client_keys": ["ck_..."], "policy_version": "2026-01", "policy_url": "https://shop.example/privacy",
               "signing_keys": [{"kid": "k1", "alg": "EdDSA", "public_key": "-----BEGIN PUBLIC KEY-----..."},
                                {"kid": "k2", "alg": "HS256", "secret": "..."}],
               "server_keys": [{"name": "backend", "key": "sk_...", "scopes": ["events:write"]}]}],
     "legacy_tenant": ""}

A standalone edge reads it (EDGE_APPS_FILE); both services write development apps in it. A
signing key may also hold its ``private_key`` (the development file does, so ``edge-node
token`` can mint): it is for minting only and never enters the app set an edge verifies with.
``tenant`` groups the apps of one brand (default: each app is its own); ``legacy_tenant``
names the tenant whose users keep the pseudonyms of the release before tenants. A file from
before tenants (no app names a tenant, no legacy tenant) keeps its old behaviour: its apps share
one user namespace, the legacy tenant, so the users it served keep their records.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from sentiedge_core.access import (
    ALGORITHMS,
    SCOPES,
    App,
    AppSet,
    KeyDigest,
    ServerKey,
    SigningKey,
    digest,
    generate_key_pair,
)
from sentiedge_core.errors import ConfigError

DEV_FILE = "dev-app.json"


class FileServerKey(msgspec.Struct, kw_only=True):
    name: str
    key: str
    scopes: list[str] = []


class FileSigningKey(msgspec.Struct, kw_only=True):
    kid: str
    alg: str
    secret: str = ""
    public_key: str = ""
    private_key: str = ""  # development files only: what `edge-node token` mints with
    not_after: float = 0.0

    def verifying(self) -> SigningKey:
        return SigningKey(kid=self.kid, alg=self.alg, secret=self.secret, public_key=self.public_key,
                          not_after=self.not_after)


class FileApp(msgspec.Struct, kw_only=True):
    name: str
    app_id: str = ""
    tenant: str = ""
    origins: list[str] = []
    client_keys: list[str] = []
    signing_keys: list[FileSigningKey] = []
    server_keys: list[FileServerKey] = []
    policy_version: str = ""
    policy_url: str = ""


class AppsFile(msgspec.Struct, kw_only=True):
    apps: list[FileApp]
    legacy_tenant: str = ""


def read(path: Path) -> AppsFile:
    try:
        return msgspec.json.decode(path.read_bytes(), type=AppsFile)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"cannot read apps from {path} (EDGE_APPS_FILE): {exc}") from exc


def from_file(path: Path) -> AppSet:
    parsed = read(path)
    apps = []
    for entry in parsed.apps:
        if not entry.client_keys:
            raise ConfigError(f"app {entry.name!r} in {path} has no client_keys")
        for signing in entry.signing_keys:
            if signing.alg not in ALGORITHMS or not signing.verifying().material:
                raise ConfigError(f"app {entry.name!r} in {path}: signing key {signing.kid!r} needs alg EdDSA or "
                                  f"ES256 with a public_key, or HS256 with a secret")
        for server_key in entry.server_keys:
            if not server_key.key.startswith("sk_") or set(server_key.scopes) - set(SCOPES):
                raise ConfigError(f"app {entry.name!r} in {path}: server key {server_key.name!r} must start with "
                                  f"sk_ and use scopes from {', '.join(SCOPES)}")
        apps.append(App(app_id=entry.app_id or f"app_{entry.name}", name=entry.name, origins=entry.origins,
                        tenant=entry.tenant, policy_version=entry.policy_version, policy_url=entry.policy_url,
                        client_keys=[KeyDigest(sha256=digest(k)) for k in entry.client_keys],
                        signing_keys=[k.verifying() for k in entry.signing_keys],
                        server_keys=[ServerKey(name=k.name, sha256=digest(k.key), scopes=k.scopes)
                                     for k in entry.server_keys]))
    return AppSet(version=1, apps=apps, legacy_tenant=parsed.legacy_tenant)


def write_development_file(path: Path, *, app_id: str, origins: list[str], client_key: str, kid: str,
                           server_key: str, private_key: str = "", public_key: str = "", tenant: str = "",
                           legacy_tenant: str = "") -> Path:
    """An apps file (mode 0600) holding one app "dev" with its raw keys — an EdDSA key pair
    (generated unless given) and a server key "dev-backend" of every scope: what `make run`,
    the README and the tests read."""
    if not private_key:
        private_key, public_key = generate_key_pair("EdDSA")
    body = {"apps": [{
        "name": "dev", "app_id": app_id, "tenant": tenant or "dev", "origins": origins, "client_keys": [client_key],
        "signing_keys": [{"kid": kid, "alg": "EdDSA", "public_key": public_key, "private_key": private_key}],
        "server_keys": [{"name": "dev-backend", "key": server_key, "scopes": list(SCOPES)}],
    }], "legacy_tenant": legacy_tenant}
    path.write_text(json.dumps(body, indent=2) + "\n")
    path.chmod(0o600)
    return path
