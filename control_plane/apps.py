"""Client apps: registered here, verified at every edge.

An app has a public **client key** (browsers, mobile apps), a **signing secret** for the user
tokens its backend mints (HS256; or a registered Ed25519 public key for EdDSA), and any number
of scoped **server keys** for its backend. Keys are shown once and kept hashed; the signing
secret is kept as it is, because every edge needs it to verify tokens offline (it travels
only over the authenticated Sync stream). Rotation issues a new client key and signing secret;
the old ones keep working for a grace period. Revocation takes effect on every connected
edge with the next Sync push (seconds).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import msgspec

from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound
from control_plane.store import Store
from sentiedge_core.access import SCOPES, App, KeyDigest, ServerKey, SigningKey, digest, mint_token
from sentiedge_core.apps_file import write_development_file

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")
_decode = msgspec.json.Decoder(App)


class Issued(msgspec.Struct, kw_only=True):
    app: App
    client_key: str = ""
    signing_secret: str = ""
    server_key: str = ""


class AppBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self) -> list[App]:
        return [_decode.decode(body) for body in self.store.apps()]

    def get(self, name: str) -> App:
        body = self.store.app(name)
        if body is None:
            raise NotFound(f"no app named {name!r} (control-plane apps list)")
        return _decode.decode(body)

    def _save(self, app: App, now: float) -> None:
        self.store.put_app(app.name, msgspec.json.encode(app).decode(), now)

    def add(self, name: str, origins: list[str], public_key: str, now: float) -> Issued:
        if not NAME.match(name):
            raise InvalidArgument("an app name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        for origin in origins:
            if not ORIGIN.match(origin):
                raise InvalidArgument(f"origin {origin!r} must be scheme://host[:port] (e.g. https://shop.example) "
                                      f"or '*'")
        if self.store.app(name) is not None:
            raise InvalidArgument(f"an app named {name!r} exists (rotate its keys with: control-plane apps rotate)")
        signing = [SigningKey(kid=f"{name}-1", alg="HS256", secret=secrets.token_urlsafe(32))]
        if public_key:
            signing.append(SigningKey(kid=f"{name}-ed1", alg="EdDSA", public_key=_ed25519_pem(public_key)))
        client_key = f"ck_{secrets.token_urlsafe(18)}"
        app = App(app_id=f"app_{secrets.token_hex(8)}", name=name, origins=origins,
                  client_keys=[KeyDigest(sha256=digest(client_key))], signing_keys=signing)
        self._save(app, now)
        return Issued(app=app, client_key=client_key, signing_secret=signing[0].secret)

    def rotate(self, name: str, grace_s: float, now: float) -> Issued:
        """A new client key and HS256 secret; the current ones end after ``grace_s``."""
        app = self._active(name)
        if grace_s < 0:
            raise InvalidArgument("grace must be >= 0 seconds")
        end = now + grace_s if grace_s else now
        keep = [k for k in app.client_keys if not k.not_after or k.not_after > now]
        for key in keep:
            key.not_after = key.not_after or end
        hs = [k for k in app.signing_keys if k.alg == "HS256"]
        for key in hs:
            key.not_after = key.not_after or end
        client_key = f"ck_{secrets.token_urlsafe(18)}"
        signing = SigningKey(kid=f"{name}-{len(hs) + 1}", alg="HS256", secret=secrets.token_urlsafe(32))
        app.client_keys = [k for k in keep if k.not_after > now] + [KeyDigest(sha256=digest(client_key))]
        app.signing_keys = [k for k in app.signing_keys if not k.not_after or k.not_after > now] + [signing]
        self._save(app, now)
        return Issued(app=app, client_key=client_key, signing_secret=signing.secret)

    def revoke(self, name: str, server_key: str, now: float) -> App:
        app = self._active(name)
        if server_key:
            found = [k for k in app.server_keys if k.name == server_key and not k.revoked_at]
            if not found:
                raise NotFound(f"app {name!r} has no active server key {server_key!r}")
            found[0].revoked_at = now
        else:
            app.revoked_at = now
        self._save(app, now)
        return app

    def add_server_key(self, name: str, key_name: str, scopes: list[str], now: float) -> Issued:
        app = self._active(name)
        if not NAME.match(key_name):
            raise InvalidArgument("a server key name is 1-63 letters, digits, '.', '_' or '-'")
        if not scopes:
            raise InvalidArgument(f"name at least one scope ({', '.join(SCOPES)})")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise InvalidArgument(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
        if any(k.name == key_name and not k.revoked_at for k in app.server_keys):
            raise InvalidArgument(f"app {name!r} has an active server key {key_name!r}; revoke it first")
        key = f"sk_{secrets.token_urlsafe(24)}"
        app.server_keys.append(ServerKey(name=key_name, sha256=digest(key), scopes=sorted(set(scopes))))
        self._save(app, now)
        return Issued(app=app, server_key=key)

    def token(self, name: str, user_id: str, ttl_s: float, consent: list[str], policy_version: str,
              now: float) -> tuple[str, float]:
        """A development user token signed with the app's current HS256 secret."""
        app = self._active(name)
        if not user_id.strip() or len(user_id) > 256:
            raise InvalidArgument("user_id must be 1-256 characters")
        if not 0 < ttl_s <= 30 * 86400:
            raise InvalidArgument("ttl must be between 1 second and 30 days")
        current = [k for k in app.signing_keys if k.alg == "HS256" and not k.not_after]
        if not current:
            raise FailedPrecondition(f"app {name!r} has no current HS256 signing key")
        grants = {p: True for p in consent} if consent else None
        return (mint_token(app, current[-1], user_id, ttl_s=ttl_s, consent=grants,
                           policy_version=policy_version or "dev", now=now), now + ttl_s)

    def _active(self, name: str) -> App:
        app = self.get(name)
        if app.revoked_at:
            raise FailedPrecondition(f"app {name!r} is revoked")
        return app

    def development(self, path: Path, origins: list[str], now: float) -> Path | None:
        """On a loopback control plane with no apps: a development app with a server key of
        every scope, written (with its raw keys) where ``make run`` and the README find it."""
        if self.store.apps():
            return None
        issued = self.add("dev", origins, "", now)
        server = self.add_server_key("dev", "dev-backend", list(SCOPES), now)
        return write_development_file(path, app_id=issued.app.app_id, origins=origins, client_key=issued.client_key,
                                      kid=issued.app.signing_keys[0].kid, secret=issued.signing_secret,
                                      server_key=server.server_key)


def _ed25519_pem(text: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise InvalidArgument(f"public key is not PEM: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument("public key must be Ed25519 (EdDSA user tokens)")
    return text.strip() + "\n"
