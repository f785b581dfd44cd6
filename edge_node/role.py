"""Which worker of a node this process is (``edge-node serve --workers N``, edge_node.workers)."""

from __future__ import annotations

import msgspec


class Role(msgspec.Struct, frozen=True):
    """Which worker of how many this process is (the default: the only one)."""

    index: int = 0
    count: int = 1

    @property
    def leader(self) -> bool:
        return self.index == 0

    @property
    def shared(self) -> bool:
        return self.count > 1


SOLE = Role()  # the only process serving its node
