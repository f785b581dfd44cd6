"""Regenerate the Python code of every ``.proto`` under ``protos/``: ``python -m protos.generate``.

Run from anywhere; output lands beside each ``.proto``. ``--out DIR`` writes elsewhere
(the drift test generates into a temporary directory and compares).
Generator: grpcio-tools 1.85.1 (pinned in pyproject's ``test`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def proto_files() -> list[Path]:
    return sorted((ROOT / "protos").rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in out.rglob("*_pb2*.py*") if "protos" in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protos.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    written = generate(args.out)
    print(f"generated {len(written)} files from {len(proto_files())} .proto files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
