"""bench/install_lightfm.py changes exactly LightFM 1.17's one broken setup.py line, and refuses a tree
without it (another release) rather than installing something it did not check."""

import pytest

from bench import install_lightfm


def test_the_patch_sets_the_flag_on_the_builtins_module_and_touches_nothing_else(tmp_path):
    setup = tmp_path / "setup.py"
    original = "import os\n\n# Import version even when extensions are not yet built\n" \
               f"{install_lightfm.BROKEN}\nfrom lightfm import __version__ as version  # NOQA\n"
    setup.write_text(original)
    install_lightfm.patch(tmp_path)
    patched = setup.read_text()
    assert install_lightfm.BROKEN not in patched
    assert patched == original.replace(install_lightfm.BROKEN, install_lightfm.FIXED)
    namespace: dict = {}
    exec(compile(install_lightfm.FIXED, "setup.py", "exec"), namespace)  # as setuptools' backend runs it
    import builtins

    assert builtins.__LIGHTFM_SETUP__ is True
    del builtins.__LIGHTFM_SETUP__


def test_a_setup_py_without_the_line_is_refused(tmp_path):
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    with pytest.raises(SystemExit, match="no line"):
        install_lightfm.patch(tmp_path)
