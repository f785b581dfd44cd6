"""Test credentials: the development app an edge (or a loopback control plane) writes into
its data directory, as headers a client sends."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt

from sentiedge_core.privacy import tenant_user


def dev_user(user: str, tenant: str = "dev") -> str:
    """A user of the development app as the edge's records name it (pseudonyms are per tenant)."""
    return tenant_user(tenant, user)


class DevApp:
    def __init__(self, path: Path) -> None:
        app = json.loads(Path(path).read_text())["apps"][0]
        self.app_id = app["app_id"]
        self.client_key = app["client_keys"][0]
        self.server_key = app["server_keys"][0]["key"]
        signing = app["signing_keys"][0]
        self.kid = signing["kid"]
        self.alg = signing["alg"]
        # An HS256 secret, or (the default) the EdDSA private key the development file keeps.
        self.secret = signing.get("secret") or signing["private_key"]

    def server(self) -> dict[str, str]:
        """Headers of the app's backend: a server key with every scope."""
        return {"x-client-key": self.client_key, "authorization": f"Bearer {self.server_key}"}

    def anonymous(self) -> dict[str, str]:
        return {"x-client-key": self.client_key}

    def token(self, user: str, *, ttl: float = 3600, consent: dict | None = None, at: float | None = None,
              **claims) -> str:
        now = time.time()
        body = {"sub": user, "aud": self.app_id, "exp": int(now + ttl), **claims}
        if consent is not None:
            body["consent"] = {"purposes": consent, "policy_version": "v1", "at": now if at is None else at}
        return jwt.encode(body, self.secret, algorithm=self.alg, headers={"kid": self.kid})

    def user(self, user: str, **kwargs) -> dict[str, str]:
        return {"x-client-key": self.client_key, "authorization": f"Bearer {self.token(user, **kwargs)}"}


def edge_app(data_dir: Path) -> DevApp:
    return DevApp(Path(data_dir) / "dev-app.json")


def two_tenant_apps_file(tmp_path: Path, scopes: list[str]) -> Path:
    """An apps file with two apps of two tenants, shop and clinic: client keys ck_<name>, an
    EdDSA signing key each, and a server key sk_<name>_backend with ``scopes``."""
    from sentiedge_core.access import generate_key_pair

    apps = []
    for name in ("shop", "clinic"):
        _, public = generate_key_pair("EdDSA")
        apps.append({"name": name, "tenant": name, "client_keys": [f"ck_{name}"],
                     "signing_keys": [{"kid": f"{name}-1", "alg": "EdDSA", "public_key": public}],
                     "server_keys": [{"name": "backend", "key": f"sk_{name}_backend", "scopes": scopes}]})
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"apps": apps}))
    return path
