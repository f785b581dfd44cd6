"""The repository stands on its own: no document or docstring points outside it, to the
design notes it was built from or to the tracker's issue numbers."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|STYLE\.md|\(issue \d+\)|\bissue \d+\)|Goals? \(issue")


def test_no_file_points_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        if not name.endswith((".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".service", "Makefile", ".proto")):
            continue
        if name == "tests/unit/test_repository.py":
            continue
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
