"""``control-plane apps …`` and the credential flags of ``control-plane nodes``: parsers,
calls and tables, kept apart from the rest of the CLI."""

from __future__ import annotations

from pathlib import Path

from sentiedge_core.access import SCOPES


def add_parsers(commands, nodes) -> None:
    nodes.add_argument("--enroll", metavar="NODE_ID", help="a one-time enrollment token for a node (plain gRPC)")
    nodes.add_argument("--ttl", type=float, default=86400.0, help="enrollment token lifetime in seconds")
    nodes.add_argument("--revoke", metavar="NODE_ID", help="revoke a node's credential (its streams close)")
    nodes.add_argument("--quarantine", metavar="NODE_ID", help="leave a node's cohort aggregates out of merges")
    nodes.add_argument("--release", metavar="NODE_ID", help="take a quarantined node's aggregates back in")

    apps = commands.add_parser("apps", help="client apps: keys for browsers/apps, user-token secrets, server keys")
    a = apps.add_subparsers(dest="action", required=True)
    add = a.add_parser("add", help="register an app; prints its client key and signing secret once")
    add.add_argument("name")
    add.add_argument("--origin", action="append", default=[], help="browser origin allowed (CORS); repeatable")
    add.add_argument("--public-key", type=Path, help="Ed25519 public key (PEM) for EdDSA user tokens")
    a.add_parser("list", help="apps, origins and server keys (never the keys themselves)")
    rotate = a.add_parser("rotate", help="new client key and signing secret; the old ones end after --grace")
    rotate.add_argument("name")
    rotate.add_argument("--grace", type=float, default=0.0, help="seconds the old key and secret keep working")
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


async def call(args, channel, metadata):
    from protos.sentiedge.v1 import operator_pb2 as pb
    from protos.sentiedge.v1 import operator_pb2_grpc

    if args.command == "nodes":
        stub = operator_pb2_grpc.NodesStub(channel)
        if args.enroll:
            return await stub.Enroll(pb.EnrollNodeRequest(node_id=args.enroll, ttl_s=args.ttl), metadata=metadata)
        if args.revoke:
            return await stub.Revoke(pb.RevokeNodeRequest(node_id=args.revoke), metadata=metadata)
        node = args.quarantine or args.release
        return await stub.Quarantine(pb.QuarantineRequest(node_id=node, release=bool(args.release)),
                                     metadata=metadata)
    stub = operator_pb2_grpc.AppsStub(channel)
    if args.action == "add":
        key = args.public_key.read_text() if args.public_key else ""
        return await stub.Add(pb.AddAppRequest(name=args.name, origins=args.origin, public_key=key), metadata=metadata)
    if args.action == "rotate":
        return await stub.Rotate(pb.RotateAppRequest(name=args.name, grace_s=args.grace), metadata=metadata)
    if args.action == "revoke":
        return await stub.Revoke(pb.RevokeAppRequest(name=args.name, server_key=args.server_key), metadata=metadata)
    if args.action == "server-key":
        return await stub.AddServerKey(pb.AddServerKeyRequest(name=args.name, key_name=args.key_name,
                                                              scopes=args.scope), metadata=metadata)
    if args.action == "token":
        return await stub.Token(pb.AppTokenRequest(name=args.name, user_id=args.user, ttl_s=args.ttl,
                                                   consent=args.consent, policy_version=args.policy_version),
                                metadata=metadata)
    return await stub.List(pb.ListAppsRequest(), metadata=metadata)


def handles(args) -> bool:
    return args.command == "apps" or (args.command == "nodes" and any(
        getattr(args, f, None) for f in ("enroll", "revoke", "quarantine", "release")))


def table(args, d: dict) -> str:
    from control_plane.cli_commands import rows as _rows, when as _when
    if args.command == "nodes" and "enrollment_token" in d:
        return (f"enrollment token for {d['node_id']} (one use, expires {_when(d['expires_at'])}):\n"
                f"  {d['enrollment_token']}\nstart the edge with EDGE_NODE_ID={d['node_id']} "
                f"EDGE_ENROLLMENT_TOKEN=<token>; it exchanges the token for a node secret kept in its data dir")
    if args.command == "nodes":
        return (f"{d['node_id']}: credential {d.get('credential') or '-'}, "
                f"{'QUARANTINED' if d.get('quarantined') else 'not quarantined'}, {d['state']}")
    if args.action == "list":
        rows = [[a["name"], a["app_id"], ",".join(a["origins"]) or "-", a["kid"], a["client_keys"],
                 ",".join(f"{k['name']}({'+'.join(k['scopes'])})" + (" REVOKED" if k["revoked_at"] else "")
                          for k in a["server_keys"]) or "-", "REVOKED" if a["revoked_at"] else "active"]
                for a in d["apps"]]
        return _rows(["app", "app id", "origins", "signing kid", "client keys", "server keys", "state"], rows)
    if args.action == "token":
        return d["token"]
    lines = [f"app {d['name']} ({d['app_id']})" + (" REVOKED" if d["revoked_at"] else "")]
    if d.get("client_key"):
        lines += [f"client key (public: browsers and apps send it as X-Client-Key):  {d['client_key']}",
                  f"signing secret (kid {d['kid']}, HS256; keep it on the app's backend):  {d['signing_secret']}",
                  "(shown once)"]
    if d.get("server_key"):
        lines += [f"server key (secret, for the app's backend: Authorization: Bearer ...):  {d['server_key']}",
                  "(shown once; stored hashed)"]
    return "\n".join(lines)
