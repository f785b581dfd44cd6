"""Who may call: client keys, user tokens and server keys checked as an attacker would try them."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_node.errors import Forbidden, RateLimited, Unauthorized
from sentiedge_core.access import App, AppSet, Gatekeeper, KeyDigest, ServerKey, SigningKey, digest, mint_token

ED = Ed25519PrivateKey.generate()
ED_PUBLIC = ED.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def app(name="shop", **extra) -> App:
    return App(app_id=f"app_{name}", name=name, origins=["https://shop.example"],
               client_keys=[KeyDigest(sha256=digest(f"ck_{name}"))],
               signing_keys=[SigningKey(kid=f"{name}-1", alg="HS256",
                                        secret=f"secret-of-{name}-0123456789abcdef-0123456789"),
                             SigningKey(kid=f"{name}-ed", alg="EdDSA", public_key=ED_PUBLIC)],
               server_keys=[ServerKey(name="backend", sha256=digest(f"sk_{name}"), scopes=["events:write"])], **extra)


@pytest.fixture
def gate():
    g = Gatekeeper()
    g.set_apps(AppSet(version=1, apps=[app("shop"), app("other")]))
    return g


def token(a: App, user: str, **kwargs) -> str:
    return mint_token(a, a.signing_keys[0], user, **kwargs)


def refused(gate, exc, reason, *args):
    with pytest.raises(exc) as info:
        gate.admit(*args)
    assert info.value.code == reason, info.value.message
    return info.value


def test_client_key_is_required_and_must_be_known(gate):
    refused(gate, Unauthorized, "missing_client_key", None, None, "1.2.3.4")
    refused(gate, Unauthorized, "unknown_client_key", "ck_guess", None, "1.2.3.4")
    caller = gate.admit("ck_shop", None, "1.2.3.4")
    assert caller.app.name == "shop" and caller.user is None and caller.kind == "client_key"
    with pytest.raises(Unauthorized) as info:
        caller.act_for("alice", "users:read")  # anonymous: priors and sentiment only
    assert info.value.code == "user_token_required"


def test_user_token_acts_for_its_own_user_only(gate):
    caller = gate.admit("ck_shop", f"Bearer {token(app('shop'), 'alice')}", None)
    caller.act_for("alice", "users:read")
    with pytest.raises(Forbidden) as info:
        caller.act_for("bob", "users:read")
    assert info.value.code == "wrong_user"


def test_forged_expired_and_cross_app_tokens_are_refused(gate):
    shop = app("shop")
    refused(gate, Unauthorized, "token_expired", "ck_shop", f"Bearer {token(shop, 'alice', ttl_s=-3600)}", None)
    forged = jwt.encode({"sub": "alice", "aud": "app_shop", "exp": int(time.time()) + 60},
                        "wrong-secret-0123456789abcdef-0123456789",
                        algorithm="HS256", headers={"kid": "shop-1"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {forged}", None)
    refused(gate, Forbidden, "wrong_app", "ck_shop", f"Bearer {token(app('other'), 'alice')}", None)
    no_exp = jwt.encode({"sub": "alice", "aud": "app_shop"}, shop.signing_keys[0].secret, algorithm="HS256",
                        headers={"kid": "shop-1"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {no_exp}", None)
    refused(gate, Unauthorized, "invalid_token", "ck_shop", "Bearer not.a.jwt", None)
    refused(gate, Unauthorized, "invalid_authorization", "ck_shop", "Basic abc", None)
    # Algorithm confusion: an HS256 token "signed" with the EdDSA key's public PEM is refused.
    confused = jwt.encode({"sub": "alice", "aud": "app_shop", "exp": int(time.time()) + 60},
                          "x" * 48, algorithm="HS256", headers={"kid": "shop-ed"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {confused}", None)
    unsigned = jwt.encode({"sub": "alice", "aud": "app_shop", "exp": int(time.time()) + 60}, None,
                          algorithm="none", headers={"kid": "shop-1"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {unsigned}", None)


def test_eddsa_tokens_verify_with_the_registered_public_key(gate):
    shop = app("shop")
    good = mint_token(shop, shop.signing_keys[1], "alice", private_key=ED)
    assert gate.admit("ck_shop", f"Bearer {good}", None).user == "alice"
    other_key = Ed25519PrivateKey.generate()
    bad = mint_token(shop, shop.signing_keys[1], "alice", private_key=other_key)
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {bad}", None)


def test_server_keys_act_for_any_user_within_their_scopes(gate):
    caller = gate.admit("ck_shop", "Bearer sk_shop", None)
    caller.act_for("anyone", "events:write")
    with pytest.raises(Forbidden) as info:
        caller.act_for("anyone", "users:delete")
    assert info.value.code == "missing_scope"
    refused(gate, Forbidden, "wrong_app", "ck_shop", "Bearer sk_other", None)
    refused(gate, Unauthorized, "unknown_server_key", "ck_shop", "Bearer sk_guess", None)


def test_revocation_applies_at_once_even_to_cached_tokens(gate):
    shop = app("shop")
    header = f"Bearer {token(shop, 'alice')}"
    assert gate.admit("ck_shop", header, None).user == "alice"  # verified and cached
    gate.set_apps(AppSet(version=2, apps=[app("shop", revoked_at=time.time()), app("other")]))
    refused(gate, Unauthorized, "unknown_client_key", "ck_shop", header, None)
    gate.set_apps(AppSet(version=3, apps=[app("other")]))
    refused(gate, Unauthorized, "unknown_client_key", "ck_shop", None, None)


def test_a_rotated_client_key_works_until_its_grace_ends(gate):
    now = time.time()
    rotated = app("shop")
    rotated.client_keys = [KeyDigest(sha256=digest("ck_shop"), not_after=now + 60), KeyDigest(sha256=digest("ck_new"))]
    gate.set_apps(AppSet(version=2, apps=[rotated]))
    assert gate.admit("ck_shop", None, None, now).app.name == "shop"
    refused(gate, Unauthorized, "expired_client_key", "ck_shop", None, None, now + 61)
    assert gate.admit("ck_new", None, None, now + 61).app.name == "shop"


def test_rate_limits_per_address_and_per_key_answer_429_with_a_wait():
    gate = Gatekeeper(address_rate=1, address_burst=3, key_rate=100, key_burst=5)
    gate.set_apps(AppSet(apps=[app("shop")]))
    now = 1000.0
    for _ in range(3):
        gate.admit("ck_shop", None, "9.9.9.9", now)
    exc = refused(gate, RateLimited, "rate_limited", "ck_shop", None, "9.9.9.9", now)
    assert 0 < exc.retry_after <= 1
    gate.admit("ck_shop", None, "9.9.9.9", now + 1.01)  # refilled
    gate.admit("ck_shop", None, "8.8.8.8", now)  # another address has its own bucket
    # The app's key: 5 in all, whatever the address; a backend's server key skips the address limit.
    for _ in range(10):
        try:
            gate.admit("ck_shop", "Bearer sk_shop", "9.9.9.9", now + 2)
        except RateLimited as limited:
            assert "EDGE_RATE_LIMIT_PER_KEY" in limited.message
            break
    else:
        pytest.fail("the per-key limit never applied")


def test_token_consent_claims_are_checked_and_clamped_to_now(gate):
    shop = app("shop")
    future = time.time() + 86400
    good = token(shop, "alice", consent={"sentiment": True})
    assert gate.admit("ck_shop", f"Bearer {good}", None).consent.purposes == {"sentiment": True}
    claims = {"sub": "alice", "aud": "app_shop", "exp": int(time.time()) + 60,
              "consent": {"purposes": {"sentiment": True}, "policy_version": "v1", "at": future}}
    skewed = jwt.encode(claims, shop.signing_keys[0].secret, algorithm="HS256", headers={"kid": "shop-1"})
    assert gate.admit("ck_shop", f"Bearer {skewed}", None).consent.at <= time.time()
    claims["consent"]["purposes"] = {"everything": True}
    bad = jwt.encode(claims, shop.signing_keys[0].secret, algorithm="HS256", headers={"kid": "shop-1"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {bad}", None)


def test_the_token_cache_is_bounded():
    gate = Gatekeeper(token_cache=5)
    gate.set_apps(AppSet(apps=[app("shop")]))
    for i in range(50):
        gate.admit("ck_shop", f"Bearer {token(app('shop'), f'u{i}')}", None)
    assert len(gate._verified) == 5


def test_anonymous_client_key_traffic_cannot_spend_the_budget_of_signed_in_users():
    gate = Gatekeeper(key_rate=1, key_burst=5)
    shop = app("shop")
    gate.set_apps(AppSet(apps=[shop]))
    now = 1000.0
    for i in range(5):  # anyone holding the public client key, from many addresses
        gate.admit("ck_shop", None, f"10.0.0.{i}", now)
    refused(gate, RateLimited, "rate_limited", "ck_shop", None, "10.0.0.9", now)
    assert gate.admit("ck_shop", f"Bearer {token(shop, 'ann')}", "7.7.7.7", now).user == "ann"
    assert gate.admit("ck_shop", "Bearer sk_shop", None, now).kind == "server_key"
    for i in range(5):  # one signed-in user's token, spent from many addresses ...
        try:
            gate.admit("ck_shop", f"Bearer {token(shop, 'mallory')}", f"10.1.0.{i}", now)
        except RateLimited:
            break
    assert gate.admit("ck_shop", "Bearer sk_shop", None, now).kind == "server_key"  # ... never starves the backend


def test_callers_name_users_within_their_tenant():
    from sentiedge_core.privacy import Pseudonymizer, tenant_user

    shop, shop_ios, clinic = app("shop"), app("shop-ios", tenant="shop"), app("clinic")
    gate = Gatekeeper()
    gate.set_apps(AppSet(apps=[shop, shop_ios, clinic]))
    pseudonym = Pseudonymizer(b"k" * 32)
    named = {a.name: pseudonym(gate.admit(f"ck_{a.name}", f"Bearer {token(a, 'x')}", None).tenant_user("x"))
             for a in (shop, shop_ios, clinic)}
    assert named["shop"] == named["shop-ios"] != named["clinic"]  # a brand's apps share users; brands never do
    assert pseudonym(tenant_user("shop", "x")) != pseudonym("x")
    # A deployment from before tenants keeps its users' pseudonyms in the legacy tenant.
    gate.set_apps(AppSet(apps=[shop, clinic], legacy_tenant="shop"))
    assert gate.admit("ck_shop", "Bearer sk_shop", None).tenant_user("x") == "x"
    assert gate.admit("ck_clinic", "Bearer sk_clinic", None).tenant_user("x") != "x"


def test_es256_tokens_verify_and_a_key_of_another_algorithm_is_refused():
    from sentiedge_core.access import generate_key_pair

    private, public = generate_key_pair("ES256")
    shop = app("shop")
    shop.signing_keys = [SigningKey(kid="shop-es", alg="ES256", public_key=public)]
    gate = Gatekeeper()
    gate.set_apps(AppSet(apps=[shop]))
    good = mint_token(shop, shop.signing_keys[0], "ann", private_key=private.encode())
    assert gate.admit("ck_shop", f"Bearer {good}", None).user == "ann"
    forged = jwt.encode({"sub": "ann", "aud": "app_shop", "exp": int(time.time()) + 60}, ED, algorithm="EdDSA",
                        headers={"kid": "shop-es"})
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {forged}", None)


def test_a_token_cannot_name_a_user_of_another_tenant_through_control_characters():
    from sentiedge_core.privacy import tenant_user

    shop, clinic = app("shop"), app("clinic")
    gate = Gatekeeper()
    gate.set_apps(AppSet(apps=[shop, clinic], legacy_tenant="shop"))
    # The legacy tenant names users by their bare id: a sub shaped like "clinic<US>bob" would be
    # exactly the clinic's bob. Such a sub is refused wherever a token is verified.
    forged = token(shop, "clinic\x1fbob")
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {forged}", None)
    with pytest.raises(Unauthorized):
        gate.verify_user_token(shop, forged)
    assert gate.admit("ck_shop", f"Bearer {token(shop, 'bob')}", None).tenant_user("bob") \
        != tenant_user("clinic", "bob")
    refused(gate, Unauthorized, "invalid_token", "ck_shop", f"Bearer {token(shop, 'x' * 300)}", None)


def test_an_app_set_from_before_tenants_keeps_its_users_where_they_were():
    old = AppSet(apps=[app("shop"), app("shop-ios")])  # as persisted or filed before tenants
    gate = Gatekeeper()
    gate.set_apps(old)
    # Its apps shared one namespace: still so, under the bare-id pseudonyms the records carry.
    assert gate.admit("ck_shop", "Bearer sk_shop", None).tenant_user("ann") == "ann"
    assert gate.admit("ck_shop-ios", "Bearer sk_shop-ios", None).tenant_user("ann") == "ann"
    gate.set_apps(AppSet(apps=[app("shop", tenant="shop"), app("clinic", tenant="clinic")]))  # a set of today
    assert gate.admit("ck_clinic", "Bearer sk_clinic", None).tenant_user("ann") == "clinic\x1fann"
