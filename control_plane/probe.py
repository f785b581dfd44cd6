"""The probe set: labelled texts the control plane keeps and no edge ever sees, so that a
model candidate built from edges' contributions is checked on something no edge could steer.

Golden examples are not enough: they are a handful of texts in the bundle itself, public to
every edge, and an attacker who shapes an adaptation update can keep them right while the
model gets worse everywhere else. The probe is a ``text,label`` CSV (label 1 = positive): by
default ``models/out_of_domain.csv`` (44 hand-written tweets, product, hotel and restaurant
reviews, shipped with the package; no release fitted on them, they are only reported), or
the operator's own via ``CP_ADAPT_PROBE`` (a larger, private set of the deployment's own
domain is better: 44 texts see a change of one text as 2.3 points).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "out_of_domain.csv"


@dataclass(frozen=True)
class Probe:
    path: str
    texts: tuple[str, ...]
    positive: tuple[bool, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Probe:
        path = Path(path) if path else DEFAULT
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [(r["text"], r["label"].strip() == "1") for r in csv.DictReader(fh) if r.get("text")]
        if not rows:
            raise ValueError(f"the probe set {path} has no labelled texts (text,label)")
        return cls(path=str(path), texts=tuple(t for t, _ in rows), positive=tuple(p for _, p in rows))

    def correct(self, bundle: Path) -> int:
        """How many probe texts the bundle in ``bundle`` (a verified directory) labels right."""
        from sentiedge_core.inference import SentimentModel

        model = SentimentModel(bundle, threads=1, check_golden=False)  # golden examples: the registry's job
        positive = model.labels[1]
        return sum((r.label == positive) == truth for r, truth in zip(model.score(list(self.texts)), self.positive))

    def __len__(self) -> int:
        return len(self.texts)
