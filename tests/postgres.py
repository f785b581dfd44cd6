"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, start it on
a free loopback port, create a fresh database per test. The server binaries come from the
system (``make install`` installs the ``postgresql`` package where they are missing)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def find(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"))
    return candidates[-1] if candidates else None


class Postgres:
    def __init__(self) -> None:
        initdb, self.pg_ctl = find("initdb"), find("pg_ctl")
        if not initdb or not self.pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: run `make install`, "
                               "which installs the postgresql package")
        self.base = Path(tempfile.mkdtemp(prefix="sentiedge-pg-"))
        self.base.chmod(0o755)
        # PostgreSQL refuses to run as root: use an unprivileged account then.
        self.prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.base, "nobody")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.base / "data"
        self._run([initdb, "-D", str(self.data), "-U", "sentiedge", "--auth=trust", "-E", "UTF8"])
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.base / "log"), "-w", "start", "-o",
                   f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"])

    def _run(self, args: list[str]) -> None:
        out = subprocess.run(self.prefix + args, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {out.stderr or out.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://sentiedge@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
