"""``control-plane apps …`` and the credential flags of ``control-plane nodes``: parsers,
calls and tables, kept apart from the rest of the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

from sentiedge_core.access import SCOPES


def add_parsers(commands, nodes) -> None:
    nodes.add_argument("--enroll", metavar="NODE_ID", help="a one-time enrollment token for a node (plain gRPC)")
    nodes.add_argument("--ttl", type=float, default=86400.0, help="enrollment token lifetime in seconds")
    nodes.add_argument("--revoke", metavar="NODE_ID", help="revoke a node's credential (its streams close)")
    nodes.add_argument("--quarantine", metavar="NODE_ID", help="leave a node's cohort aggregates out of merges")
    nodes.add_argument("--release", metavar="NODE_ID", help="take a quarantined node's aggregates back in")

    apps = commands.add_parser("apps", help="client apps: keys for browsers/apps, user-token keys, server keys")
    a = apps.add_subparsers(dest="action", required=True)
    add = a.add_parser("add", help="register an app; prints its client key and token signing key once")
    add.add_argument("name")
    add.add_argument("--tenant", default="", help="the brand whose users this app shares with its other apps "
                                                  "(default: the app is its own tenant)")
    add.add_argument("--origin", action="append", default=[], help="browser origin allowed (CORS); repeatable")
    add.add_argument("--alg", choices=("EdDSA", "ES256", "HS256"), default="EdDSA",
                     help="user-token signing: EdDSA (default) or ES256 key pair whose private key is printed once "
                          "and never stored; HS256 puts a secret that can mint tokens on every edge")
    add.add_argument("--public-key", type=Path, help="register the backend's own public key (PEM, --alg EdDSA or "
                                                     "ES256) instead of making a pair")
    add.add_argument("--policy-version", default="", help="the app's current privacy policy version (recorded with "
                                                          "choices made on the preference page)")
    add.add_argument("--policy-url", default="", help="where the app's privacy policy is read")
    a.add_parser("list", help="apps, tenants, origins and server keys (never the keys themselves)")
    rotate = a.add_parser("rotate", help="new client key and signing key; the old ones end after --grace")
    rotate.add_argument("name")
    rotate.add_argument("--grace", type=float, default=0.0, help="seconds the old key and secret keep working")
    configure = a.add_parser("configure", help="change an app's browser origins or privacy policy")
    configure.add_argument("name")
    configure.add_argument("--origin", action="append", default=None,
                           help="browser origin allowed (CORS, the preference page's frame-ancestors); repeatable; "
                                "replaces the app's list")
    configure.add_argument("--no-origins", action="store_true", help="allow no browser origin")
    configure.add_argument("--policy-version", default=None, help="the app's current privacy policy version")
    configure.add_argument("--policy-url", default=None, help="where the app's privacy policy is read")
    revoke = a.add_parser("revoke", help="revoke an app (every key), or one of its server keys")
    revoke.add_argument("name")
    revoke.add_argument("--server-key", default="", metavar="KEY_NAME",
                        help="revoke only this server key (default: the whole app)")
    server = a.add_parser("server-key", help="a secret key for the app's backend, with scopes; printed once")
    server.add_argument("name")
    server.add_argument("key_name")
    server.add_argument("--scope", action="append", required=True, choices=SCOPES,
                        help="what the key may do; repeatable")
    token = a.add_parser("token", help="mint a user token for development (the app's backend mints real ones)")
    token.add_argument("name")
    token.add_argument("user")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until the token expires")
    token.add_argument("--consent", action="append", default=[], metavar="PURPOSE",
                       help="grant this purpose in the token's signed consent claim; repeatable")
    token.add_argument("--policy-version", default="dev", help="the consent policy version the token names")
    token.add_argument("--private-key", type=Path, default=None,
                       help="the app's private key (PEM, as `apps add` printed it): mint here, for EdDSA/ES256 apps")


async def call(args, channel, metadata):
    from protos.sentiedge.v1 import operator_pb2 as pb
    from protos.sentiedge.v1 import operator_pb2_grpc

    if args.command == "nodes":
        nodes = operator_pb2_grpc.NodesStub(channel)
        if args.enroll:
            return await nodes.Enroll(pb.EnrollNodeRequest(node_id=args.enroll, ttl_s=args.ttl), metadata=metadata)
        if args.revoke:
            return await nodes.Revoke(pb.RevokeNodeRequest(node_id=args.revoke), metadata=metadata)
        node = args.quarantine or args.release
        return await nodes.Quarantine(pb.QuarantineRequest(node_id=node, release=bool(args.release)),
                                      metadata=metadata)
    stub = operator_pb2_grpc.AppsStub(channel)
    if args.action == "add":
        key = args.public_key.read_text() if args.public_key else ""
        if args.alg == "HS256":
            print(f"warning: app {args.name!r} signs user tokens with HS256: every edge will hold its secret and could "
                  f"mint a token for any of its users (prefer the default EdDSA)", file=sys.stderr)
        return await stub.Add(pb.AddAppRequest(name=args.name, origins=args.origin, public_key=key, tenant=args.tenant,
                                               alg=args.alg, policy_version=args.policy_version,
                                               policy_url=args.policy_url), metadata=metadata)
    if args.action == "configure":
        request = pb.ConfigureAppRequest(name=args.name, set_origins=args.origin is not None or args.no_origins,
                                         origins=args.origin or [])
        if args.policy_version is not None:
            request.policy_version = args.policy_version
        if args.policy_url is not None:
            request.policy_url = args.policy_url
        return await stub.Configure(request, metadata=metadata)
    if args.action == "rotate":
        return await stub.Rotate(pb.RotateAppRequest(name=args.name, grace_s=args.grace), metadata=metadata)
    if args.action == "revoke":
        return await stub.Revoke(pb.RevokeAppRequest(name=args.name, server_key=args.server_key), metadata=metadata)
    if args.action == "server-key":
        return await stub.AddServerKey(pb.AddServerKeyRequest(name=args.name, key_name=args.key_name,
                                                              scopes=args.scope), metadata=metadata)
    if args.action == "token" and args.private_key is not None:
        return await _mint_locally(args, stub, pb, metadata)
    if args.action == "token":
        return await stub.Token(pb.AppTokenRequest(name=args.name, user_id=args.user, ttl_s=args.ttl,
                                                   consent=args.consent, policy_version=args.policy_version),
                                metadata=metadata)
    return await stub.List(pb.ListAppsRequest(), metadata=metadata)


async def _mint_locally(args, stub, pb, metadata):
    """A development token signed here with the app's private key (the control plane has none)."""
    import time

    from sentiedge_core.access import App, SigningKey, mint_token

    listed = await stub.List(pb.ListAppsRequest(), metadata=metadata)
    info = next((a for a in listed.apps if a.name == args.name), None)
    if info is None:
        raise SystemExit(f"control-plane: no app named {args.name!r} (control-plane apps list)")
    try:
        private = args.private_key.read_bytes()
    except OSError as exc:
        raise SystemExit(f"control-plane: cannot read --private-key {args.private_key}: {exc.strerror}") from None
    now = time.time()
    try:
        token = mint_token(App(app_id=info.app_id, name=info.name), SigningKey(kid=info.kid, alg=info.alg),
                           args.user, ttl_s=args.ttl, consent={p: True for p in args.consent} or None,
                           policy_version=args.policy_version, now=now, private_key=private)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"control-plane: --private-key {args.private_key} "
                         f"cannot sign {info.alg} tokens: {exc}") from None
    return pb.AppToken(token=token, expires_at=now + args.ttl)


def handles(args) -> bool:
    return args.command == "apps" or (args.command == "nodes" and any(
        getattr(args, f, None) for f in ("enroll", "revoke", "quarantine", "release")))


def table(args, d: dict) -> str:
    from control_plane.cli_commands import rows as _rows
    from control_plane.cli_commands import when as _when
    if args.command == "nodes" and "enrollment_token" in d:
        return (f"enrollment token for {d['node_id']} (one use, expires {_when(d['expires_at'])}):\n"
                f"  {d['enrollment_token']}\nstart the edge with EDGE_NODE_ID={d['node_id']} "
                f"EDGE_ENROLLMENT_TOKEN=<token>; it exchanges the token for a node secret kept in its data dir")
    if args.command == "nodes":
        return (f"{d['node_id']}: credential {d.get('credential') or '-'}, "
                f"{'QUARANTINED' if d.get('quarantined') else 'not quarantined'}, {d['state']}")
    if args.action == "list":
        rows = [[a["name"], a.get("tenant") or "-", a["app_id"], ",".join(a["origins"]) or "-",
                 f"{a['kid']} ({a.get('alg') or '-'})", a["client_keys"],
                 ",".join(f"{k['name']}({'+'.join(k['scopes'])})" + (" REVOKED" if k["revoked_at"] else "")
                          for k in a["server_keys"]) or "-", "REVOKED" if a["revoked_at"] else "active"]
                for a in d["apps"]]
        return _rows(["app", "tenant", "app id", "origins", "signing key", "client keys", "server keys", "state"], rows)
    if args.action == "token":
        return d["token"]
    lines = [f"app {d['name']} ({d['app_id']}), tenant {d.get('tenant') or '-'}"
             + (" REVOKED" if d["revoked_at"] else "")]
    if d.get("client_key"):
        lines.append(f"client key (public: browsers and apps send it as X-Client-Key):  {d['client_key']}")
        if d.get("signing_secret"):
            lines.append(f"signing secret (kid {d['kid']}, HS256; every edge holds it too):  {d['signing_secret']}")
        elif d.get("private_key"):
            lines.append(f"user-token private key (kid {d['kid']}, {d.get('alg')}; only for the app's backend, "
                         f"never stored here):\n{d['private_key'].rstrip()}")
        else:
            lines.append(f"user tokens: signed by the backend's own key (kid {d['kid']}, {d.get('alg')})")
        lines.append("(shown once)")
    if d.get("server_key"):
        lines += [f"server key (secret, for the app's backend: Authorization: Bearer ...):  {d['server_key']}",
                  "(shown once; stored hashed)"]
    if args.action == "configure":
        lines += [f"origins: {', '.join(d['origins']) or 'none'}",
                  f"privacy policy: {d.get('policy_version') or '-'} {d.get('policy_url') or ''}".rstrip()]
    return "\n".join(lines)
