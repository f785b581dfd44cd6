"""The command-line parser both CLIs use: a flag must be spelled out (``--pur`` is not
``--purposes``), in every subcommand, so a typo is an error instead of another flag."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` without prefix matching; its subcommands are built with the
    same class (argparse makes sub-parsers of the parent's type), so they inherit it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
