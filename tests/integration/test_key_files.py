"""Data files are private (0700 directories, 0600 files) and a store only opens with the
pseudonym key it was written with: the real edge node and control plane, on real disk."""

import stat

import pytest

from control_plane.config import load_settings as cp_settings
from control_plane.errors import ConfigError as CpConfigError
from control_plane.state import ControlPlane
from edge_node.config import load_settings
from edge_node.errors import ConfigError
from edge_node.wiring import build, preflight


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def edge(model, data_dir, key=""):
    node = build(load_settings({"EDGE_DATA_DIR": str(data_dir), "EDGE_PSEUDONYM_KEY": key}), model)
    subject = node.privacy.pseudonymize("alice")
    node.store.close()
    return subject


def test_edge_files_are_private_and_a_generated_key_lives_outside_the_store(model, tmp_path):
    data = tmp_path / "edge"
    first = edge(model, data)
    assert mode(data) == 0o700 and mode(data / "store") == 0o700
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        if (data / "store" / name).exists():
            assert mode(data / "store" / name) == 0o600, name
    assert mode(data / "pseudonym.key") == 0o600 and mode(data / "dev-app.json") == 0o600
    key = (data / "pseudonym.key").read_bytes().strip()
    assert key not in (data / "store" / "cache.db").read_bytes()  # not inside the database
    assert edge(model, data) == first  # the same key after a restart: users stay who they were


def test_an_edge_refuses_a_key_that_is_not_its_stores(model, tmp_path):
    data = tmp_path / "edge"
    first = edge(model, data, key="k" * 32)
    with pytest.raises(ConfigError, match="none is set now"):  # restarted without EDGE_PSEUDONYM_KEY
        edge(model, data)
    assert not (data / "pseudonym.key").exists()  # nothing generated in passing
    with pytest.raises(ConfigError, match="does not match"):
        edge(model, data, key="x" * 32)
    with pytest.raises(ConfigError, match="does not match"):
        preflight(load_settings({"EDGE_DATA_DIR": str(data), "EDGE_PSEUDONYM_KEY": "x" * 32}))
    assert edge(model, data, key="k" * 32) == first
    # And the other way round: a store with a generated key refuses a configured one.
    other = tmp_path / "other"
    edge(model, other)
    with pytest.raises(ConfigError, match="does not match"):
        edge(model, other, key="k" * 32)


def control_plane(data_dir, key=""):
    cp = ControlPlane(cp_settings({"CP_DATA_DIR": str(data_dir), "CP_PSEUDONYM_KEY": key,
                                   "CP_ADMIN_TOKENS": "t:12345678"}))
    subject = cp.ledger.pseudonymize("alice")
    cp.store.close()
    return subject


def test_control_plane_files_are_private_and_its_key_is_checked(tmp_path):
    data = tmp_path / "cp"
    first = control_plane(data)
    assert mode(data) == 0o700 and mode(data / "control-plane.db") == 0o600
    assert mode(data / "pseudonym.key") == 0o600
    assert control_plane(data) == first
    with pytest.raises(CpConfigError, match="does not match"):
        control_plane(data, key="k" * 32)
    configured = tmp_path / "configured"
    control_plane(configured, key="k" * 32)
    with pytest.raises(CpConfigError, match="none is set now"):
        control_plane(configured)


def test_the_commands_refuse_a_wrong_key_in_one_line(model, tmp_path):
    import os
    import subprocess
    import sys

    edge(model, tmp_path / "edge", key="k" * 32)
    control_plane(tmp_path / "cp", key="k" * 32)
    env = {**os.environ, "EDGE_DATA_DIR": str(tmp_path / "edge"), "CP_DATA_DIR": str(tmp_path / "cp"),
           "EDGE_PSEUDONYM_KEY": "x" * 32, "CP_ADMIN_TOKENS": "t:12345678"}
    bin_dir = os.path.dirname(sys.executable)
    for command in (["edge-node", "serve", "--port", "1"], ["control-plane", "serve", "--port", "1"]):
        done = subprocess.run([os.path.join(bin_dir, command[0]), *command[1:]], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and ("does not match" in done.stderr or "none is set" in done.stderr)
