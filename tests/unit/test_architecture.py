"""The package seams hold (import-linter contracts in pyproject.toml): the services never
import each other, the shared core imports neither service nor a transport, serving never
imports the training code, and domain modules import no HTTP framework or gRPC."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_no_service_module_names_the_other():
    """The plain-text form of the first contract, as an operator would grep for it."""
    for package, other in (("control_plane", "edge_node"), ("edge_node", "control_plane"),
                           ("sentiedge_core", "edge_node"), ("sentiedge_core", "control_plane")):
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                assert not stripped.startswith((f"from {other}", f"import {other}")), f"{path}: {line}"
