"""Both command lines take flags only as spelled out: a shortened or mistyped flag is an error
(exit 2, naming it), never silently another flag, in every subcommand."""

import pytest

from control_plane.cli import main as control_plane
from edge_node.cli import main as edge_node


@pytest.mark.parametrize("cli, argv, flag", [
    (control_plane, ["privacy", "list", "--lim", "3"], "--lim"),
    (control_plane, ["nodes", "--tok", "x"], "--tok"),
    (control_plane, ["certs", "init", "--ho", "cp.example"], "--ho"),
    (edge_node, ["score", "--fil", "texts.csv"], "--fil"),
    (edge_node, ["batch", "x.csv", "--out", "out", "--work", "2"], "--work"),
])
def test_an_abbreviated_flag_is_refused(cli, argv, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # were a flag taken for another, nothing lands in the checkout
    with pytest.raises(SystemExit) as exit_:
        cli(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {flag}" in err
