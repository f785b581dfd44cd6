"""What the container images contain: each Dockerfile's build stage copies a set of paths and
builds a wheel from them. Build that wheel from exactly that set, install it alone in a fresh
virtual environment (its dependencies borrowed from the test environment, never this source
tree), and start both commands from it. A package the image forgets fails here, not in a
crash-looping container."""

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))


def build_stage_copies(dockerfile: Path) -> list[str]:
    """The sources the first (build) stage copies from the build context."""
    copies, stage = [], 0
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            stage += 1
        elif stage == 1 and line.startswith("COPY ") and "--from" not in line:
            copies += line.split()[1:-1]
    return copies


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.stem)
def test_the_image_wheel_holds_every_package_both_commands_need(dockerfile, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for source in build_stage_copies(dockerfile):
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, context / source)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(context)], check=True, cwd=tmp_path, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = next(venv.glob("lib/python*/site-packages"))
    # The dependencies come from the test environment's site-packages as a plain path: its .pth
    # files (the editable install of this tree among them) are not run, so nothing here can
    # reach this source tree.
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", *map(str, wheels.glob("*.whl"))], check=True, timeout=300)
    run = tmp_path / "run"  # not the source tree: only the installed wheel can be imported
    run.mkdir()
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for command in ("edge-node", "control-plane"):
        answer = subprocess.run([str(venv / "bin" / command), "--help"], capture_output=True, text=True,
                                cwd=run, timeout=120, env=clean)
        assert answer.returncode == 0 and "usage:" in answer.stdout, answer.stderr
    probe = ("import edge_node.http.app, edge_node.workers, control_plane.server, sentiedge_core.inference; "
             "print(sentiedge_core.__file__)")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=run,
                           timeout=120, env=clean)
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and str(venv) in where.stdout
    scored = subprocess.run([str(venv / "bin" / "edge-node"), "score", "what a lovely surprise"],
                            capture_output=True, text=True, cwd=run, timeout=180, env=clean)
    assert scored.returncode == 0 and re.search(r"positive", scored.stdout), scored.stderr
