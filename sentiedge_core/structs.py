"""The base of every record a service stores (msgpack-encoded msgspec Structs)."""

from __future__ import annotations

import msgspec


class Stored(msgspec.Struct, kw_only=True):
    """Base of every stored record: never forbids unknown fields, only grows with defaulted ones."""
