"""Who is calling: client apps, their keys and their users' tokens, verified at the edge.

* Every ``/v1`` request names its app with a **client key** (``X-Client-Key``). Client keys
  are public (browsers and mobile apps carry them): they identify an app, they prove nothing
  about a user. Anonymous keyed requests get sentiment and cohort/global priors only.
* A **user token** (``Authorization: Bearer <JWT>``) proves the user: ``sub`` is the user id,
  ``aud`` the app id, ``exp`` is required and ``kid`` picks the app's key: a public key (EdDSA,
  the default, or ES256) whose private half only the app's backend holds, or — an explicit
  per-app opt-in — an HS256 secret that every edge then holds too. It may carry the user's
  consent as signed claims (see :class:`TokenConsent`).
* Every app belongs to a **tenant** (a brand: its web, iOS and backend apps share users; by
  default an app is its own tenant). A caller reaches only its tenant's users: handlers name
  the user by :meth:`Caller.tenant_user`, which the pseudonym is keyed on, so the same user id
  in two tenants is two people whose records never meet.
* A **server key** (``Authorization: Bearer sk_…``), for the app's backend, acts for any user
  of its app within its scopes.

Everything is checked locally against the app set the edge holds (from the control plane,
or from a file for a standalone edge): no network per request. A verified token is cached
(bounded, until its ``exp``) so a hot user pays for one signature check, not one per request;
any change to the app set (a revocation) empties the cache at once.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict

import jwt
import msgspec

from sentiedge_core.errors import Forbidden, RateLimited, Unauthorized
from sentiedge_core.privacy import PURPOSES, tenant_user
from sentiedge_core.structs import Stored

SCOPES = ("events:write", "users:read", "consent:write", "users:delete", "labels:write", "sentiment", "users:alias")
MAX_TOKEN_CHARS = 8192
MAX_SUB_CHARS = 256
LEEWAY_S = 30.0  # clock skew between the app's backend and the edge
ALGORITHMS = ("EdDSA", "ES256", "HS256")  # asymmetric first: HS256 puts a minting key on every edge
ASYMMETRIC = ("EdDSA", "ES256")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyDigest(Stored, kw_only=True):
    sha256: str
    not_after: float = 0.0


class SigningKey(Stored, kw_only=True):
    kid: str
    alg: str  # EdDSA or ES256 (public_key, PEM), or HS256 (secret)
    secret: str = ""
    public_key: str = ""
    not_after: float = 0.0

    @property
    def material(self) -> str:
        return self.secret if self.alg == "HS256" else self.public_key


class ServerKey(Stored, kw_only=True):
    name: str
    sha256: str
    scopes: list[str] = []
    revoked_at: float = 0.0


class App(Stored, kw_only=True):
    app_id: str
    name: str
    origins: list[str] = []
    client_keys: list[KeyDigest] = []
    signing_keys: list[SigningKey] = []
    server_keys: list[ServerKey] = []
    revoked_at: float = 0.0
    tenant: str = ""  # empty: the app is its own tenant (named after the app)
    policy_version: str = ""  # the app's current privacy policy, recorded with consent given on its pages
    policy_url: str = ""

    @property
    def tenant_id(self) -> str:
        return self.tenant or self.name

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


class AppSet(Stored, kw_only=True):
    version: int = 0
    apps: list[App] = []
    # The tenant whose users keep the bare-id pseudonyms of the release before tenants.
    legacy_tenant: str = ""

    def with_tenants(self) -> AppSet:
        """A set from before tenants (no app names one, none is legacy) — an edge's persisted set
        or an old apps file — had its apps share one user namespace: they become one tenant, the
        legacy tenant named after the first app, whose users keep their bare-id pseudonyms (as
        the control plane migrates its store). Any other set is returned as it is."""
        if self.legacy_tenant or not self.apps or any(a.tenant for a in self.apps):
            return self
        tenant = self.apps[0].name
        return msgspec.structs.replace(self, legacy_tenant=tenant,
                                       apps=[msgspec.structs.replace(a, tenant=tenant) for a in self.apps])


class TokenConsent(msgspec.Struct, kw_only=True, frozen=True):
    """Consent carried in a user token (claim ``consent``), signed by the app's backend:
    ``{"purposes": {"sentiment": true, ...}, "policy_version": "v3", "at": <unix seconds>}``."""

    purposes: dict[str, bool]
    policy_version: str
    at: float


class Caller(msgspec.Struct, kw_only=True, frozen=True):
    app: App
    user: str | None = None  # set by a user token
    scopes: frozenset[str] = frozenset()  # set by a server key
    consent: TokenConsent | None = None
    token: str = ""
    legacy_tenant: str = ""

    @property
    def tenant(self) -> str:
        return self.app.tenant_id

    def tenant_user(self, user_id: str) -> str:
        """The user as this edge's records name it: scoped to the caller's tenant."""
        return tenant_user(self.tenant, user_id, self.legacy_tenant)

    @property
    def kind(self) -> str:
        return "user_token" if self.user is not None else ("server_key" if self.scopes else "client_key")

    def act_for(self, user_id: str, scope: str) -> None:
        """Refuse unless this caller may touch ``user_id``'s data for ``scope``."""
        if self.user is not None:
            if self.user != user_id:
                raise Forbidden("the user token is for another user than the one this request names",
                                reason="wrong_user", field="user_id")
            return
        if self.scopes:
            if scope not in self.scopes:
                raise Forbidden(f"the server key lacks the {scope!r} scope", reason="missing_scope")
            return
        raise Unauthorized("this request touches a user's data: send 'Authorization: Bearer <user token>' "
                           "(a JWT for that user) or a server key with the right scope",
                           reason="user_token_required")

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            if self.scopes:
                raise Forbidden(f"the server key lacks the {scope!r} scope", reason="missing_scope")
            raise Unauthorized(f"this route needs the app's server key with the {scope!r} scope "
                               f"('Authorization: Bearer sk_...')", reason="server_key_required")


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class RateLimiter:
    """Token buckets per key, bounded in number (the least recently seen are forgotten)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0 when allowed, else the seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            if now > bucket.at:  # a clock that steps back refills nothing
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
                bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class Gatekeeper:
    def __init__(self, *, key_rate: float = 0.0, key_burst: float = 0.0, address_rate: float = 0.0,
                 address_burst: float = 0.0, token_cache: int = 10_000, on_refused=None) -> None:
        self.apps = AppSet()
        self._by_client_key: dict[str, tuple[App, float]] = {}
        self._by_server_key: dict[str, tuple[App, ServerKey]] = {}
        self._by_kid: dict[str, tuple[App, SigningKey]] = {}
        self._verified: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._token_cache = token_cache
        self.key_limit = RateLimiter(key_rate, key_burst or key_rate * 2)
        self.address_limit = RateLimiter(address_rate, address_burst or address_rate * 2)
        self.on_refused = on_refused or (lambda reason: None)
        self._origins: frozenset[str] = frozenset()
        self._consent_applied: OrderedDict[str, None] = OrderedDict()

    # --- the app set ----------------------------------------------------------------------
    def set_apps(self, apps: AppSet) -> None:
        apps = apps.with_tenants()
        by_client, by_server, by_kid = {}, {}, {}
        for app in apps.apps:
            if app.revoked_at:
                continue
            for key in app.client_keys:
                by_client[key.sha256] = (app, key.not_after)
            for server_key in app.server_keys:
                if not server_key.revoked_at:
                    by_server[server_key.sha256] = (app, server_key)
            for signing in app.signing_keys:
                by_kid[signing.kid] = (app, signing)
        self.apps = apps
        self._by_client_key, self._by_server_key, self._by_kid = by_client, by_server, by_kid
        self._origins = frozenset(o for app in apps.apps if not app.revoked_at for o in app.origins)
        self._verified.clear()  # a revoked key or app stops working now, not when its tokens expire

    def origin_known(self, origin: str) -> bool:
        """Whether any active app lists this browser origin (CORS preflights carry no key)."""
        return "*" in self._origins or origin in self._origins

    def first_use(self, token: str) -> bool:
        """True once per token (bounded memory): its consent claims are applied on first use."""
        if token in self._consent_applied:
            self._consent_applied.move_to_end(token)
            return False
        self._consent_applied[token] = None
        if len(self._consent_applied) > self._token_cache:
            self._consent_applied.popitem(last=False)
        return True

    def verify_user_token(self, app: App, token: str, now: float | None = None) -> Caller:
        """The user a token proves, for ``app`` only: a second token in a body (an anonymous id
        being linked) or one a page carries in its URL or form (the preference center)."""
        try:
            return self._user_token(app, token, time.time() if now is None else now)
        except (Unauthorized, Forbidden) as exc:
            self.on_refused(exc.code)
            raise

    # --- admission ------------------------------------------------------------------------
    def admit(self, client_key: str | None, authorization: str | None, address: str | None,
              now: float | None = None) -> Caller:
        """The verified caller, or a refusal. Per-address limits apply to everyone but an app's
        backend (a valid server key, limited per key only); per-key limits to every app."""
        now = time.time() if now is None else now
        try:
            try:
                caller = self._verify(client_key, authorization, now)
            except (Unauthorized, Forbidden):
                self._address_limit(address, now)  # refused callers still spend their address's budget
                raise
            if not caller.scopes:
                self._address_limit(address, now)
            # Signed-in users and the app's backend draw on a budget of their own, so anyone
            # holding the public client key cannot spend it for them.
            # (the app's backend apart from its signed-in users: one user's token cannot starve it).
            budget = caller.app.app_id if caller.kind == "client_key" else f"{caller.app.app_id}|{caller.kind}"
            if (wait := self.key_limit.take(budget, now)):
                raise RateLimited(f"too many requests for this client key; retry in {math.ceil(wait)} s "
                                  f"(EDGE_RATE_LIMIT_PER_KEY)", retry_after=wait)
            return caller
        except (Unauthorized, Forbidden, RateLimited) as exc:
            self.on_refused(exc.code)
            raise

    def _address_limit(self, address: str | None, now: float) -> None:
        if address and (wait := self.address_limit.take(address, now)):
            raise RateLimited(f"too many requests from {address}; retry in {math.ceil(wait)} s "
                              f"(EDGE_RATE_LIMIT_PER_ADDRESS)", retry_after=wait)

    def _verify(self, client_key: str | None, authorization: str | None, now: float) -> Caller:
        app = self._app(client_key, now)
        if not authorization:
            return Caller(app=app, legacy_tenant=self.apps.legacy_tenant)
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized("Authorization must be 'Bearer <user token>' or 'Bearer <server key>'",
                               reason="invalid_authorization")
        credential = credential.strip()
        if credential.startswith("sk_"):
            return self._server_key(app, credential)
        return self._user_token(app, credential, now)

    def _app(self, client_key: str | None, now: float) -> App:
        if not client_key:
            raise Unauthorized("every /v1 request needs the app's client key in the X-Client-Key header",
                               reason="missing_client_key")
        if not self.apps.apps:
            raise Unauthorized("this edge knows no apps yet (register one: control-plane apps add; "
                               "standalone: EDGE_APPS_FILE)", reason="unknown_client_key")
        found = self._by_client_key.get(digest(client_key[:256]))
        if found is None:
            raise Unauthorized("unknown or revoked client key", reason="unknown_client_key")
        app, not_after = found
        if not_after and now > not_after:
            raise Unauthorized("this client key was rotated and its grace period is over", reason="expired_client_key")
        return app

    def _server_key(self, app: App, key: str) -> Caller:
        found = self._by_server_key.get(digest(key[:256]))
        if found is None:
            raise Unauthorized("unknown or revoked server key", reason="unknown_server_key")
        key_app, server_key = found
        if key_app.app_id != app.app_id:
            raise Forbidden("the server key belongs to another app than the client key", reason="wrong_app")
        return Caller(app=app, scopes=frozenset(server_key.scopes), legacy_tenant=self.apps.legacy_tenant)

    def _user_token(self, app: App, token: str, now: float) -> Caller:
        cached = self._verified.get(token)
        if cached is not None and cached[1] + LEEWAY_S > now:
            self._verified.move_to_end(token)
            caller = cached[0]
            if caller.app.app_id != app.app_id:
                raise Forbidden("the user token is for another app than the client key", reason="wrong_app")
            return caller
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized(f"the user token is longer than {MAX_TOKEN_CHARS} characters", reason="invalid_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the user token is not a JWT: {exc}", reason="invalid_token") from None
        found = self._by_kid.get(str(header.get("kid", "")))
        if found is None:
            raise Unauthorized("the user token's kid names no active signing key (unknown, rotated out or revoked)",
                               reason="invalid_token")
        key_app, signing = found
        if key_app.app_id != app.app_id:
            raise Forbidden("the user token is for another app than the client key", reason="wrong_app")
        if signing.not_after and now > signing.not_after + LEEWAY_S:
            raise Unauthorized("the user token was signed with a key rotated out", reason="invalid_token")
        if header.get("alg") != signing.alg:  # no algorithm confusion: the key decides
            raise Unauthorized(f"the user token is signed with {header.get('alg')!r}; key {signing.kid!r} is "
                               f"{signing.alg}", reason="invalid_token")
        try:
            claims = jwt.decode(token, signing.material,
                                algorithms=[signing.alg], audience=app.app_id, leeway=LEEWAY_S,
                                options={"require": ["exp", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the user token has expired", reason="token_expired") from None
        except jwt.InvalidAudienceError:
            raise Forbidden("the user token is for another app (aud)", reason="wrong_app") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the user token is invalid: {exc}", reason="invalid_token") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise Unauthorized("the user token's sub must be the user id", reason="invalid_token")
        # A user id never holds control characters (they separate a tenant from its user id in
        # what pseudonyms are keyed on) and is a bounded string, as on every route.
        if len(sub) > MAX_SUB_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in sub):
            raise Unauthorized(f"the user token's sub must be at most {MAX_SUB_CHARS} characters without control "
                               f"characters", reason="invalid_token")
        caller = Caller(app=app, user=sub, consent=_consent_claim(claims.get("consent"), now), token=token,
                        legacy_tenant=self.apps.legacy_tenant)
        self._verified[token] = (caller, float(claims["exp"]))
        if len(self._verified) > self._token_cache:
            self._verified.popitem(last=False)
        return caller


def _consent_claim(value, now: float) -> TokenConsent | None:
    if value is None:
        return None
    try:
        consent = msgspec.convert(value, TokenConsent)
    except msgspec.ValidationError as exc:
        raise Unauthorized(f"the user token's consent claim is malformed: {exc}", reason="invalid_token") from None
    unknown = sorted(set(consent.purposes) - set(PURPOSES))
    if unknown:
        raise Unauthorized(f"the user token's consent names unknown purpose {unknown[0]!r}", reason="invalid_token")
    if not consent.policy_version.strip():
        raise Unauthorized("the user token's consent claim needs a policy_version", reason="invalid_token")
    # A choice cannot be from the future: clamp, so a skewed clock cannot outrank later choices.
    return msgspec.structs.replace(consent, at=min(consent.at, now))


def generate_key_pair(alg: str) -> tuple[str, str]:
    """A new (private, public) PEM pair for EdDSA (Ed25519) or ES256 (P-256) user tokens."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    private = ed25519.Ed25519PrivateKey.generate() if alg == "EdDSA" else ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


def check_public_key(alg: str, text: str) -> str:
    """The PEM of a public key for ``alg``, or ValueError saying what is wrong."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise ValueError(f"public key is not PEM: {exc}") from None
    if alg == "EdDSA" and not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("an EdDSA public key must be Ed25519")
    if alg == "ES256" and not (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"):
        raise ValueError("an ES256 public key must be on the P-256 curve")
    return text.strip() + "\n"


def mint_token(app: App, signing: SigningKey, user_id: str, *, ttl_s: float = 3600.0,
               consent: dict[str, bool] | None = None, policy_version: str = "dev", now: float | None = None,
               private_key=None) -> str:
    """A user token for development and tests (the app's backend mints real ones)."""
    now = time.time() if now is None else now
    claims: dict = {"sub": user_id, "aud": app.app_id, "iat": int(now), "exp": int(now + ttl_s)}
    if consent:
        claims["consent"] = {"purposes": consent, "policy_version": policy_version, "at": now}
    key = signing.secret if signing.alg == "HS256" else private_key
    if key is None:
        raise ValueError(f"signing key {signing.kid!r} is {signing.alg}: minting needs its private key")
    return jwt.encode(claims, key, algorithm=signing.alg, headers={"kid": signing.kid})
