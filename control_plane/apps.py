"""Client apps: registered here, verified at every edge.

An app has a public **client key** (browsers, mobile apps), a **signing key** for the user
tokens its backend mints, and any number of scoped **server keys** for its backend. The
signing key is asymmetric by default (EdDSA; ES256 on request): the control plane makes the
pair, prints the private key once for the app's backend and keeps only the public key, so no
edge and no control plane ever holds anything that can mint a user token. HS256 stays as an
explicit per-app opt-in: its secret must then reach every edge (over the authenticated Sync
stream), and each of them could mint tokens for any of the app's users. Client and server
keys are shown once and kept hashed. Rotation issues a new client key and signing key; the old
ones keep working for a grace period. Revocation takes effect on every connected edge with the
next Sync push (seconds).

Every app belongs to a **tenant** (a brand): by default its own, named after it; ``--tenant``
groups a brand's web, iOS and backend apps so they share users. User ids are pseudonymized
per tenant (sentiedge_core.privacy.tenant_user). A store from before tenants keeps its users:
its apps are put in one tenant (named after the first), the *legacy tenant*, whose pseudonyms
stay the bare-id ones they were written under.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import msgspec

from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound
from control_plane.store import Store
from sentiedge_core.access import (
    ALGORITHMS,
    SCOPES,
    App,
    KeyDigest,
    ServerKey,
    SigningKey,
    check_public_key,
    digest,
    generate_key_pair,
    mint_token,
)
from sentiedge_core.apps_file import write_development_file

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")
POLICY = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,63}$")  # 1-64 printable characters
POLICY_URL = re.compile(r"^https?://[\x21-\x7e]{1,500}$")
LEGACY_TENANT = "legacy_tenant"  # where the store remembers it (decided once)
_decode = msgspec.json.Decoder(App)


class Issued(msgspec.Struct, kw_only=True):
    app: App
    client_key: str = ""
    signing_secret: str = ""  # HS256 apps only
    private_key: str = ""  # EdDSA / ES256 apps: shown once, never stored
    server_key: str = ""


def _new_signing_key(kid: str, alg: str) -> tuple[SigningKey, str]:
    """A signing key and what to show once: the private key (asymmetric) or the secret (HS256)."""
    if alg == "HS256":
        secret = secrets.token_urlsafe(32)
        return SigningKey(kid=kid, alg=alg, secret=secret), secret
    private, public = generate_key_pair(alg)
    return SigningKey(kid=kid, alg=alg, public_key=public), private


class AppBook:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.legacy_tenant = self._legacy_tenant()

    def _legacy_tenant(self) -> str:
        """Decided once, when this release first opens the store: the apps registered before
        tenants existed all shared one user namespace, so they become one tenant (named after
        the first) that keeps the bare-id pseudonyms; a store with no apps then has none."""
        stored = self.store.stored_secret(LEGACY_TENANT)
        if stored is not None:
            return stored.decode()
        # Decided outside the secrets transaction (the apps are written in their own); a replica
        # that decided first wins: secret() keeps the first value stored.
        apps = self.all()
        tenant = apps[0].name if apps else ""
        for app in apps:
            if not app.tenant:
                app.tenant = tenant
                self.store.put_app(app.name, msgspec.json.encode(app).decode(), 0.0)
        return self.store.secret(LEGACY_TENANT, lambda: tenant.encode()).decode()

    def all(self) -> list[App]:
        return [_decode.decode(body) for body in self.store.apps()]

    def tenants(self) -> list[str]:
        """Every tenant that ever had an app: a revoked app's users still have data to erase."""
        return sorted({a.tenant_id for a in self.all()} | ({self.legacy_tenant} if self.legacy_tenant else set()))

    def tenant_of_request(self, tenant: str, what: str = "the user's tenant") -> str:
        """The tenant a request names (``what`` it is, in the error); may be left out while there is only one."""
        known = self.tenants()
        if not tenant:
            if len(known) == 1:
                return known[0]
            if not known:
                raise InvalidArgument("no app is registered, so no tenant has users yet (control-plane apps add)")
            raise InvalidArgument(f"name {what} (--tenant): this control plane has {len(known)}: "
                                  f"{', '.join(known)}")
        if tenant not in known:
            raise InvalidArgument(f"no tenant {tenant!r}; tenants are {', '.join(known) or 'none'} "
                                  f"(control-plane apps list)")
        return tenant

    def get(self, name: str) -> App:
        body = self.store.app(name)
        if body is None:
            raise NotFound(f"no app named {name!r} (control-plane apps list)")
        return _decode.decode(body)

    def _save(self, app: App, now: float) -> None:
        self.store.put_app(app.name, msgspec.json.encode(app).decode(), now)

    def add(self, name: str, origins: list[str], public_key: str, now: float, *, tenant: str = "",
            alg: str = "", policy_version: str = "", policy_url: str = "") -> Issued:
        """A new app. ``public_key`` registers the backend's own EdDSA/ES256 key (nothing private
        is made or shown); else a key pair of ``alg`` is made and its private key shown once."""
        if not NAME.match(name):
            raise InvalidArgument("an app name is 1-63 letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit")
        if tenant and not NAME.match(tenant):
            raise InvalidArgument("a tenant name is 1-63 letters, digits, '.', '_' or '-', starting with a letter "
                                  "or digit")
        for origin in origins:
            if not ORIGIN.match(origin):
                raise InvalidArgument(f"origin {origin!r} must be scheme://host[:port] (e.g. https://shop.example) "
                                      f"or '*'")
        _check_policy(policy_version, policy_url)
        alg = alg or "EdDSA"
        if alg not in ALGORITHMS:
            raise InvalidArgument(f"alg must be one of {', '.join(ALGORITHMS)}")
        if self.store.app(name) is not None:
            raise InvalidArgument(f"an app named {name!r} exists (rotate its keys with: control-plane apps rotate)")
        if public_key:
            if alg == "HS256":
                raise InvalidArgument("a public key is for EdDSA or ES256 user tokens, not HS256")
            try:
                signing, shown = SigningKey(kid=f"{name}-1", alg=alg, public_key=check_public_key(alg, public_key)), ""
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
        else:
            signing, shown = _new_signing_key(f"{name}-1", alg)
        client_key = f"ck_{secrets.token_urlsafe(18)}"
        app = App(app_id=f"app_{secrets.token_hex(8)}", name=name, origins=origins, tenant=tenant or name,
                  client_keys=[KeyDigest(sha256=digest(client_key))], signing_keys=[signing],
                  policy_version=policy_version, policy_url=policy_url)
        self._save(app, now)
        return Issued(app=app, client_key=client_key, **_shown(alg, shown))

    def configure(self, name: str, now: float, *, origins: list[str] | None = None,
                  policy_version: str | None = None, policy_url: str | None = None) -> App:
        """Change an app's browser origins or privacy policy (None: keep as it is)."""
        app = self._active(name)
        for origin in origins or []:
            if not ORIGIN.match(origin):
                raise InvalidArgument(f"origin {origin!r} must be scheme://host[:port] (e.g. https://shop.example) "
                                      f"or '*'")
        _check_policy(policy_version or "", policy_url or "")
        if origins is not None:
            app.origins = origins
        if policy_version is not None:
            app.policy_version = policy_version
        if policy_url is not None:
            app.policy_url = policy_url
        self._save(app, now)
        return app

    def rotate(self, name: str, grace_s: float, now: float) -> Issued:
        """A new client key and signing key (of the current key's algorithm); the current ones
        end after ``grace_s``."""
        app = self._active(name)
        if grace_s < 0:
            raise InvalidArgument("grace must be >= 0 seconds")
        end = now + grace_s if grace_s else now
        keep = [k for k in app.client_keys if not k.not_after or k.not_after > now]
        for key in keep:
            key.not_after = key.not_after or end
        current = [k for k in app.signing_keys if not k.not_after]
        alg = current[-1].alg if current else "EdDSA"
        for signing_key in current:
            signing_key.not_after = end
        client_key = f"ck_{secrets.token_urlsafe(18)}"
        signing, shown = _new_signing_key(f"{name}-{_next_kid(app)}", alg)
        app.client_keys = [k for k in keep if k.not_after > now] + [KeyDigest(sha256=digest(client_key))]
        app.signing_keys = [k for k in app.signing_keys if not k.not_after or k.not_after > now] + [signing]
        self._save(app, now)
        return Issued(app=app, client_key=client_key, **_shown(alg, shown))

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
        """A development user token signed with the app's current HS256 secret (an EdDSA/ES256
        app's private key is not here: `control-plane apps token --private-key` mints locally)."""
        app = self._active(name)
        if not user_id.strip() or len(user_id) > 256:
            raise InvalidArgument("user_id must be 1-256 characters")
        if not 0 < ttl_s <= 30 * 86400:
            raise InvalidArgument("ttl must be between 1 second and 30 days")
        current = [k for k in app.signing_keys if k.alg == "HS256" and not k.not_after]
        if not current:
            raise FailedPrecondition(f"app {name!r} signs with a private key the control plane never keeps: mint "
                                     f"with control-plane apps token {name} USER --private-key FILE")
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
        every scope, written (with its raw keys, the EdDSA private key included) where
        ``make run`` and the README find it."""
        if self.store.apps():
            return None
        issued = self.add("dev", origins, "", now, policy_version="dev")
        server = self.add_server_key("dev", "dev-backend", list(SCOPES), now)
        signing = issued.app.signing_keys[0]
        return write_development_file(path, app_id=issued.app.app_id, origins=origins, client_key=issued.client_key,
                                      kid=signing.kid, private_key=issued.private_key, public_key=signing.public_key,
                                      tenant=issued.app.tenant_id, legacy_tenant=self.legacy_tenant,
                                      server_key=server.server_key)


def _next_kid(app: App) -> int:
    """One more than any key number the app has used: a kid is never reused while an older key
    with it still verifies (edges look keys up by kid)."""
    numbers = [int(k.kid.rsplit("-", 1)[1]) for k in app.signing_keys if k.kid.rsplit("-", 1)[-1].isdigit()]
    return max(numbers, default=len(app.signing_keys)) + 1


def _shown(alg: str, shown: str) -> dict[str, str]:
    return {"signing_secret": shown} if alg == "HS256" else {"private_key": shown}


def _check_policy(version: str, url: str) -> None:
    if version and not POLICY.match(version):
        raise InvalidArgument("a policy version is 1-64 printable ASCII characters")
    if url and not POLICY_URL.match(url):
        raise InvalidArgument("a policy URL is http(s)://… of at most 500 printable characters")
