"""The audit log, with floods of refusals folded: a caller hammering with a bad token or
credential writes one row, then one summary row per minute saying how many more were refused,
instead of a row per call (which an attacker could use to fill the disk)."""

from __future__ import annotations

from control_plane.store import Store

FOLD_S = 60.0
MAX_FOLDED = 10_000  # distinct (who, action, detail) refusals tracked at once


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._folded: dict[tuple[str, str, str], list[float]] = {}  # key -> [window start, refused since]

    def write(self, now: float, who: str, action: str, detail: str, ok: bool) -> None:
        if ok:
            self.store.audit(now, who, action, detail, ok)
            return
        key = (who, action, detail)
        entry = self._folded.get(key)
        if entry is not None and now - entry[0] < FOLD_S:
            entry[1] += 1
            return
        if entry is not None and entry[1]:
            self.store.audit(now, who, action, f"{detail} (and {int(entry[1])} more refused in the last "
                                                f"{int(now - entry[0])} s)", False)
        else:
            self.store.audit(now, who, action, detail, False)
        if len(self._folded) >= MAX_FOLDED:
            self._folded = {k: v for k, v in self._folded.items() if now - v[0] < FOLD_S}
            if len(self._folded) >= MAX_FOLDED:
                return
        self._folded[key] = [now, 0]
