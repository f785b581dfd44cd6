"""Fixtures the control-plane store tests share: every store test runs on SQLite and on a real
PostgreSQL."""

import pytest

from control_plane.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """Opens a Store on one backend; the same database every time it is called in a test."""
    if request.param == "sqlite":
        return lambda: Store(tmp_path)
    url = request.getfixturevalue("postgres").new_database()
    return lambda: Store(tmp_path, url)


@pytest.fixture
def store(backend):
    s = backend()
    yield s
    s.close()
