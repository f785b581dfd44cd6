"""Install LightFM 1.17 for bench/ranking.py's hybrid baseline (``make bench-ranking`` runs this).

LightFM's last release does not build under PEP 517: its setup.py sets an attribute on
``__builtins__``, which is a dict (not the module) when setuptools' build backend runs it, so
``pip install lightfm`` stops with ``AttributeError: 'dict' object has no attribute
'__LIGHTFM_SETUP__'`` (lyst/lightfm#687, open upstream). This fetches the source
distribution once into build/data, checks its sha256, changes that one line to set the flag on
the ``builtins`` module (what the line means) and installs from the patched tree. Nothing else in
the package is touched. Benchmark only: serving and the tests never import LightFM.

    python bench/install_lightfm.py            (exit 0 also when it is already installed)
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "1.17"
INDEX = "https://pypi.org/simple/lightfm/"  # PEP 503: the page links every file of every release
SHA256 = "2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8"
SDIST = ROOT / "build/data" / f"lightfm-{VERSION}.tar.gz"
BROKEN = "__builtins__.__LIGHTFM_SETUP__ = True"
FIXED = "import builtins; builtins.__LIGHTFM_SETUP__ = True  # patched: lyst/lightfm#687"


def installed() -> bool:
    try:
        from importlib.metadata import version

        return version("lightfm") == VERSION
    except Exception:
        return False


def _download() -> bytes:
    with urllib.request.urlopen(INDEX, timeout=60) as response:
        page = response.read().decode()
    links = re.findall(rf'href="([^"#]*/lightfm-{re.escape(VERSION)}\.tar\.gz)', page)
    if not links:
        raise SystemExit(f"install_lightfm: {INDEX} lists no lightfm-{VERSION}.tar.gz; not installed")
    url = links[0] if links[0].startswith("http") else urllib.parse.urljoin(INDEX, links[0])
    print(f"downloading {url}", flush=True)
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def fetch() -> Path:
    if not SDIST.exists():
        SDIST.parent.mkdir(parents=True, exist_ok=True)
        try:
            blob = _download()
        except (OSError, http.client.HTTPException) as exc:  # urllib's errors; a transfer cut short
            raise SystemExit(f"install_lightfm: could not download LightFM {VERSION} ({exc}); not installed") from None
        if hashlib.sha256(blob).hexdigest() != SHA256:
            raise SystemExit("install_lightfm: the downloaded sdist does not have the expected sha256; not installed")
        partial = SDIST.with_name(SDIST.name + ".part")  # never a truncated file under the final name
        partial.write_bytes(blob)
        os.replace(partial, SDIST)
    elif hashlib.sha256(SDIST.read_bytes()).hexdigest() != SHA256:
        raise SystemExit(f"install_lightfm: {SDIST} does not have the expected sha256 (delete it and rerun)")
    return SDIST


def patch(tree: Path) -> None:
    setup = tree / "setup.py"
    text = setup.read_text()
    if BROKEN not in text:
        raise SystemExit(f"install_lightfm: {setup} has no line {BROKEN!r} to patch; not installed")
    setup.write_text(text.replace(BROKEN, FIXED, 1))


def main() -> int:
    if installed():
        return 0
    sdist = fetch()
    work = ROOT / "build" / f"lightfm-{VERSION}-patched"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+; the archive's sha256 was checked either way
                archive.extractall(work, filter="data")
            else:
                archive.extractall(work)
        tree = work / f"lightfm-{VERSION}"
        patch(tree)
        print(f"building LightFM {VERSION} from its patched sdist (a C compiler is needed)", flush=True)
        # No build isolation: the venv's own setuptools builds it (nothing more to download).
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", str(tree)],
                              capture_output=True, text=True)  # setuptools' warnings for its old setup.cfg
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"install_lightfm: pip could not build the patched LightFM {VERSION} (exit {done.returncode})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
