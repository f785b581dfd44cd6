"""bench/install_lightfm.py changes exactly LightFM 1.17's one broken setup.py line, refuses a tree
without it (another release) rather than installing something it did not check, and a failed or
tampered download ends in one line with nothing left under the sdist's name."""

import builtins
import http.client

import pytest

from bench import install_lightfm


def test_the_broken_line_fails_as_setuptools_runs_it_and_the_patched_one_does_not(tmp_path, monkeypatch):
    monkeypatch.delattr(builtins, "__LIGHTFM_SETUP__", raising=False)
    with pytest.raises(AttributeError, match="__LIGHTFM_SETUP__"):  # lyst/lightfm#687: __builtins__ is a dict there
        exec(compile(install_lightfm.BROKEN, "setup.py", "exec"), {})
    setup = tmp_path / "setup.py"
    original = "import os\n\n# Import version even when extensions are not yet built\n" \
               f"{install_lightfm.BROKEN}\nfrom lightfm import __version__ as version  # NOQA\n"
    setup.write_text(original)
    install_lightfm.patch(tmp_path)
    assert setup.read_text() == original.replace(install_lightfm.BROKEN, install_lightfm.FIXED)
    monkeypatch.setattr(builtins, "__LIGHTFM_SETUP__", False, raising=False)  # undone after the test
    exec(compile(install_lightfm.FIXED, "setup.py", "exec"), {})  # as setuptools' backend runs it
    assert builtins.__LIGHTFM_SETUP__ is True


def test_a_setup_py_without_the_line_is_refused(tmp_path):
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    with pytest.raises(SystemExit, match="no line"):
        install_lightfm.patch(tmp_path)


def test_a_download_cut_short_or_with_another_checksum_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(install_lightfm, "SDIST", tmp_path / "lightfm-1.17.tar.gz")

    def cut_short() -> bytes:
        raise http.client.IncompleteRead(b"partial")

    monkeypatch.setattr(install_lightfm, "_download", cut_short)
    with pytest.raises(SystemExit, match="could not download"):
        install_lightfm.fetch()
    monkeypatch.setattr(install_lightfm, "_download", lambda: b"not the sdist")
    with pytest.raises(SystemExit, match="expected sha256"):
        install_lightfm.fetch()
    assert list(tmp_path.iterdir()) == []  # nothing saved under the sdist's name, nor half of it
