from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentiedge_core import BUNDLE_DIR

# SENTIEDGE_TEST_BUNDLE points the suite at a freshly built bundle before it is released.
BUNDLE = Path(os.environ.get("SENTIEDGE_TEST_BUNDLE", BUNDLE_DIR))
# Edges the suite spawns keep a small disk reserve (dozens of data dirs per run).
os.environ.setdefault("EDGE_DISK_RESERVE_MB", "1")


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    assert (BUNDLE / "manifest.json").is_file(), f"release bundle missing at {BUNDLE}"
    return BUNDLE


@pytest.fixture(scope="session")
def model(bundle_dir):
    from sentiedge_core.inference import SentimentModel

    return SentimentModel(bundle_dir, threads=2)


@pytest.fixture(scope="session")
def postgres():
    from tests.postgres import Postgres

    server = Postgres()
    yield server
    server.stop()
