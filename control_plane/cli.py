"""``control-plane`` command line: ``serve``, and the operator commands over gRPC.

Operator commands talk to ``--target`` (``CP_TARGET``, default 127.0.0.1:50051) with a
token from ``--token``, ``CP_TOKEN`` or the data directory's ``admin.token``. Tables for
people by default; ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from control_plane import __version__, cli_access, cli_commands, cli_history, cli_models, cli_topics

cli_commands.COMMANDS.update(cli_models.COMMANDS)  # the model-quality loop's commands join the table
cli_commands.COMMANDS.update(cli_topics.COMMANDS)  # topics, trends and webhooks too
cli_commands.GROUPS.update(cli_topics.GROUPS)

def _parser() -> argparse.ArgumentParser:
    from control_plane.config import HELP, PREFIX, CpSettings
    from sentiedge_core import settings_loader
    from sentiedge_core.cli_parser import Parser

    parser = Parser(prog="control-plane", description="Sentiedge control plane")
    parser.add_argument("--target", default=os.environ.get("CP_TARGET", "127.0.0.1:50051"),
                        help="control plane address for operator commands (env CP_TARGET)")
    parser.add_argument("--token", default=os.environ.get("CP_TOKEN"), help="operator token (env CP_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--ca", default=os.environ.get("CP_CA"), help="CA certificate for mTLS (env CP_CA)")
    parser.add_argument("--cert", default=os.environ.get("CP_CERT"), help="operator client certificate (env CP_CERT)")
    parser.add_argument("--key", dest="client_key", default=os.environ.get("CP_KEY"),
                        help="operator client key (env CP_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version and the protocol package")
    serve = commands.add_parser("serve", help="run the control plane (gRPC)")
    settings_loader.add_flags(serve, CpSettings, PREFIX, HELP)

    groups: dict = {}
    parsers = cli_commands.add_parsers(commands, groups)  # every operator command, from the table
    keygen = groups["models"].add_parser("keygen", help="create an Ed25519 signing key (KEY) and its public key "
                                                        "(KEY.pub)")
    keygen.add_argument("key", type=Path)
    sign = groups["models"].add_parser("sign", help="sign a bundle directory with a private key (writes "
                                                    "signature.json)")
    sign.add_argument("path", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="the Ed25519 private key (from models keygen)")
    cli_access.add_parsers(commands, parsers["nodes"])
    cli_history.add_parsers(parsers["cohorts"])
    certs = commands.add_parser("certs", help="a development CA and certificates for mTLS")
    c = certs.add_subparsers(dest="action", required=True)
    cinit = c.add_parser("init", help="create the CA and the control plane's server certificate")
    cinit.add_argument("--dir", type=Path, default=Path("certs"),
                       help="where the CA and certificates go (default: certs)")
    cinit.add_argument("--host", action="append", default=[], help="extra host name or IP of the control plane")
    cissue = c.add_parser("issue", help="a client certificate for a node id (or an operator)")
    cissue.add_argument("identity")
    cissue.add_argument("--dir", type=Path, default=Path("certs"),
                        help="the CA directory from certs init (default: certs)")
    cissue.add_argument("--operator", action="store_true",
                        help="a certificate for an operator's CLI (prints CP_CA/CP_CERT/CP_KEY, not EDGE_TLS_*)")
    _global_flags_anywhere(parser)
    return parser


def _global_flags_anywhere(parser: argparse.ArgumentParser) -> None:
    """``control-plane nodes --json`` as well as ``control-plane --json nodes``: every command
    also takes the global options (a value given after the command wins), except where it
    has an option of the same name of its own (``models sign --key``)."""
    globals_ = [a for a in parser._actions if a.option_strings and a.dest != "help"]

    def commands(p: argparse.ArgumentParser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield sub
                    yield from commands(sub)

    for sub in commands(parser):
        taken = {o for a in sub._actions for o in a.option_strings}
        for action in globals_:
            if taken.isdisjoint(action.option_strings):
                kwargs = {"action": "store_true"} if isinstance(action, argparse._StoreTrueAction) else {}
                sub.add_argument(*action.option_strings, dest=action.dest, default=argparse.SUPPRESS,
                                 help=argparse.SUPPRESS, **kwargs)


def as_dict(message) -> dict:
    """The reply as JSON data, with 64-bit integers as numbers (protobuf's JSON mapping makes
    them strings, which scripts then have to convert)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    _integers(message, data)
    return data


_INT64 = {3, 4, 16, 18}  # FieldDescriptor.TYPE_INT64, TYPE_UINT64, TYPE_SFIXED64, TYPE_SINT64 (and fixed64 below)


def _integers(message, data: dict) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value, repeated = getattr(message, field.name), field.is_repeated
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            inner = field.message_type.fields_by_name["value"]
            if inner.message_type is not None:
                for key in value:
                    _integers(value[key], data[field.name][str(key)])
            elif inner.type in _INT64 or inner.type == inner.TYPE_FIXED64:
                data[field.name] = {k: int(v) for k, v in data[field.name].items()}
        elif field.message_type is not None:
            for item, part in (zip(value, data[field.name], strict=False) if repeated else [(value, data[field.name])]):
                _integers(item, part)
        elif field.type in _INT64 or field.type == field.TYPE_FIXED64:
            data[field.name] = [int(v) for v in data[field.name]] if repeated else int(data[field.name])


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not as a shutdown traceback
        return code
    except BrokenPipeError:  # `control-plane audit | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        from protos.sentiedge.v1 import sync_pb2

        print(f"control-plane {__version__} (protocol {sync_pb2.DESCRIPTOR.package})")
        return 0
    if args.command == "certs":
        from control_plane import certs as ca
        from control_plane.errors import CpError

        try:
            if args.action == "init":
                ca.init(args.dir, args.host)
                print(f"CA and server certificate in {args.dir}: ca.crt, control-plane.crt/.key\n"
                      f"control plane: CP_TLS_CERT={args.dir}/control-plane.crt "
                      f"CP_TLS_KEY={args.dir}/control-plane.key "
                      f"CP_TLS_CLIENT_CA={args.dir}/ca.crt")
            else:
                path = ca.issue(args.dir, args.identity)
                if args.operator:
                    print(f"{path} and {path.with_suffix('.key')}: for operator commands, CP_CA={args.dir}/ca.crt "
                          f"CP_CERT={path} CP_KEY={path.with_suffix('.key')} (or --ca, --cert, --key)")
                else:
                    print(f"{path} and {path.with_suffix('.key')}: for the edge {args.identity}, EDGE_TLS_CERT={path} "
                          f"EDGE_TLS_KEY={path.with_suffix('.key')} EDGE_TLS_CA={args.dir}/ca.crt\n"
                          "(an operator's certificate? issue it with --operator "
                          "for the CP_CA/CP_CERT/CP_KEY variables)")
        except CpError as exc:
            print(f"control-plane: {exc.message}", file=sys.stderr)
            return 1
        return 0
    if args.command == "models" and args.action in ("keygen", "sign"):
        return _signing(args)
    if args.command == "serve":
        from control_plane.config import load_settings
        from control_plane.errors import CpError
        from control_plane.server import serve as run_server

        try:
            settings = load_settings(flags=vars(args))
        except CpError as exc:
            print(f"control-plane: {exc.message}", file=sys.stderr)
            return 2
        logging.basicConfig(level=settings.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return asyncio.run(run_server(settings))
        except CpError as exc:  # cannot start: a store that will not open, a key that is not its own
            print(f"control-plane: error: {exc.message}", file=sys.stderr)
            return 2
    return asyncio.run(_operator(args))


def _signing(args) -> int:
    from sentiedge_core import signing
    from sentiedge_core.errors import SentiedgeError

    try:
        if args.action == "keygen":
            if args.key.exists():
                raise SystemExit(f"control-plane: {args.key} exists; not overwriting a key")
            public = signing.generate(args.key)
            print(f"private key {args.key} (keep it secret), public key {args.key.with_suffix('.pub')}\n"
                  f"key id {signing.key_id(public)}; give edges EDGE_TRUSTED_KEYS={signing.public_text(public)}")
        else:
            if not (args.path / "manifest.json").is_file():
                raise SystemExit(f"control-plane: {args.path} is not a bundle directory (no manifest.json)")
            from sentiedge_core.bundle import verify

            verify(args.path)  # never sign a bundle whose files do not match its manifest
            kid = signing.sign(args.path, signing.load_private(args.key))
            print(f"signed {args.path} with key {kid}")
    except SentiedgeError as exc:
        print(f"control-plane: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _token(args) -> str:
    if args.token:
        return args.token
    path = Path(os.environ.get("CP_DATA_DIR", "var/control-plane")) / "admin.token"
    if path.exists():
        return path.read_text().strip()
    raise SystemExit("control-plane: no operator token: pass --token, set CP_TOKEN, or run where CP_DATA_DIR "
                     "holds admin.token")


async def _operator(args) -> int:
    import grpc

    from protos.sentiedge.v1 import operator_pb2_grpc

    metadata = (("authorization", f"Bearer {_token(args)}"),)
    options = [("grpc.max_send_message_length", 8 << 20)]
    if args.ca:
        credentials = grpc.ssl_channel_credentials(
            Path(args.ca).read_bytes(), Path(args.client_key).read_bytes() if args.client_key else None,
            Path(args.cert).read_bytes() if args.cert else None)
        channel_cm = grpc.aio.secure_channel(args.target, credentials, options=options)
    else:
        channel_cm = grpc.aio.insecure_channel(args.target, options=options)
    async with channel_cm as channel:
        g = operator_pb2_grpc
        rpc = cli_commands.Rpc(models=g.ModelsStub(channel), privacy=g.PrivacyStub(channel),
                               nodes=g.NodesStub(channel), cohorts=g.CohortsStub(channel), admin=g.AdminStub(channel),
                               rules=g.RulesStub(channel), experiments=g.ExperimentsStub(channel),
                               topics=g.TopicsStub(channel), webhooks=g.WebhooksStub(channel), metadata=metadata)
        try:
            if cli_access.handles(args):
                reply = await cli_access.call(args, channel, metadata)
            elif cli_history.handles(args):
                reply = await cli_history.call(args, channel, metadata)
            else:
                reply = await cli_commands.COMMANDS[cli_commands.key_of(args)].call(args, rpc)
        except grpc.aio.AioRpcError as exc:
            print(f"control-plane: {exc.code().name}: {exc.details()}{_hint(args, exc)}", file=sys.stderr)
            return 1
    data = as_dict(reply)
    for warning in data.get("warnings", []) if isinstance(data.get("warnings"), list) else []:
        print(f"control-plane: warning: {warning}", file=sys.stderr)
    print(json.dumps(data, indent=2) if args.json else _table(args, data))
    return 0


def _hint(args, exc) -> str:
    """What to check when the call never reached the control plane."""
    import grpc

    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return ""
    details = f"{exc.details()} {exc.debug_error_string()}".lower()
    if "refused" in details or "name resolution" in details or "dns" in details:
        return (f"\nhint: nothing answers at {args.target}: is the control plane running there? "
                f"Set --target or CP_TARGET")
    if args.ca and not (args.cert and args.client_key):
        return ("\nhint: the TLS connection was closed: the control plane wants a client certificate; pass --cert "
                "and --key (CP_CERT, CP_KEY), issued with control-plane certs issue NAME --operator")
    if not args.ca:
        return ("\nhint: the connection was closed: if the control plane serves TLS, pass --ca (CP_CA), and --cert "
                "and --key (CP_CERT, CP_KEY) when it wants a client certificate")
    return "\nhint: the TLS handshake failed: check that --ca is the CA that issued the control plane's certificate"


def _table(args, d: dict) -> str:
    if cli_access.handles(args):
        return cli_access.table(args, d)
    if cli_history.handles(args):
        return cli_history.table(args, d)
    return cli_commands.COMMANDS[cli_commands.key_of(args)].render(args, d)


if __name__ == "__main__":
    raise SystemExit(main())
