"""``control-plane`` command line. The gRPC service and operator commands arrive with the
control-plane issue; until then this entry point reports its version and the protocol files."""

from __future__ import annotations

import argparse

from control_plane import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="control-plane", description="Sentiedge control plane")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version and the protocol package")
    args = parser.parse_args(argv)
    if args.command == "version":
        from protos.sentiedge.v1 import common_pb2

        print(f"control-plane {__version__} (protocol {common_pb2.DESCRIPTOR.package})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
