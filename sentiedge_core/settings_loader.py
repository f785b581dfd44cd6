"""Turn a frozen msgspec settings Struct into environment variables and CLI flags.

Each field ``foo_bar`` is read from ``<PREFIX>FOO_BAR`` and from ``--foo-bar``; a flag
beats the environment, which beats the default. Values are validated by msgspec, so a
bad value fails at start-up with the setting's name in the message.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


def env_name(prefix: str, field: str) -> str:
    return f"{prefix}{field.upper()}"


def add_flags(parser: argparse.ArgumentParser, cls: type[msgspec.Struct], prefix: str,
              help_text: Mapping[str, str]) -> None:
    defaults = cls()
    for field in msgspec.structs.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        parser.add_argument(flag, dest=field.name, default=None, metavar=field.name.upper(),
                            help=f"{help_text.get(field.name, '')} "
                                 f"(env {env_name(prefix, field.name)}; default {default})")


def load(cls: type[T], prefix: str, environ: Mapping[str, str], flags: Mapping[str, object] | None = None,
         error: type[Exception] | None = None) -> T:
    """Build settings from defaults, then ``environ``, then non-None ``flags``; a bad value
    raises ``error`` (the calling service's config error) naming the variable."""
    from sentiedge_core.errors import ConfigError

    error = error or ConfigError
    raw: dict[str, object] = {}
    for field in msgspec.structs.fields(cls):
        value: object = environ.get(env_name(prefix, field.name))
        if flags is not None and flags.get(field.name) is not None:
            value = flags[field.name]
        if value is not None:
            raw[field.name] = value
    try:
        # str_values lets "8" become 8 and "true" become True, as env vars and flags are strings.
        return msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise error(f"invalid setting: {_with_env_names(str(exc), prefix)}") from exc


def _with_env_names(message: str, prefix: str) -> str:
    # msgspec says "... - at `$.fast_max_batch`"; name the variable a user would set.
    if "`$." in message:
        head, _, rest = message.partition("`$.")
        field = rest.split("`", 1)[0]
        if head.startswith("Expected `bool`"):  # say which words are accepted
            head = "Expected true or false (or 1 / 0) - at "
        return f"{head}{env_name(prefix, field)} / --{field.replace('_', '-')}"
    return message


def markdown(cls: type[msgspec.Struct], prefix: str, help_text: Mapping[str, str]) -> str:
    """The settings as a Markdown table: variable, flag, default, meaning — the same words
    ``--help`` prints, so the page never says something the program does not."""
    defaults = cls()
    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for field in msgspec.structs.fields(cls):
        default = getattr(defaults, field.name)
        shown = "(empty)" if default == "" else str(default).lower() if isinstance(default, bool) else str(default)
        meaning = help_text.get(field.name, "").replace("|", "\\|")
        rows.append(f"| `{env_name(prefix, field.name)}` | `--{field.name.replace('_', '-')}` | {shown} | {meaning} |")
    return "\n".join(rows) + "\n"
