"""The probe set: labelled texts the control plane keeps and no edge ever sees, so that a
model candidate built from edges' contributions is checked on something no edge could steer.

Golden examples are not enough: they are a handful of texts in the bundle itself, public to
every edge, and an attacker who shapes an adaptation update can keep them right while the
model gets worse everywhere else. The probe is one or more ``text,label`` CSVs (label 1 =
positive): by default the two labelled sets shipped with the package that no edge is sent,
``models/out_of_domain.csv`` (44 hand-written tweets, product, hotel and restaurant reviews)
and ``models/customer_validation.csv`` (160 short customer texts) — 204 texts, mostly short,
where an adapted head shows; or the operator's own via ``CP_ADAPT_PROBE`` (comma-separated
paths; a larger, private set of the deployment's own domain is better).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

_MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT = (_MODELS / "out_of_domain.csv", _MODELS / "customer_validation.csv")


@dataclass(frozen=True)
class Probe:
    path: str
    texts: tuple[str, ...]
    positive: tuple[bool, ...]

    @classmethod
    def load(cls, paths: str | Path | None = None) -> Probe:
        """``paths``: one path, or several separated by commas (default: the shipped sets)."""
        chosen = [Path(p.strip()) for p in str(paths).split(",") if p.strip()] if paths else list(DEFAULT)
        rows = []
        for path in chosen:
            with path.open(newline="", encoding="utf-8") as fh:
                found = [(r["text"], r["label"].strip() == "1") for r in csv.DictReader(fh) if r.get("text")]
            if not found:
                raise ValueError(f"the probe set {path} has no labelled texts (text,label)")
            rows += found
        return cls(path=",".join(map(str, chosen)), texts=tuple(t for t, _ in rows),
                   positive=tuple(p for _, p in rows))

    def correct(self, bundle: Path) -> int:
        """How many probe texts the bundle in ``bundle`` (a verified directory) labels right."""
        from sentiedge_core.inference import SentimentModel

        model = SentimentModel(bundle, threads=1, check_golden=False)  # golden examples: the registry's job
        positive = model.labels[1]
        results = model.score(list(self.texts))
        return sum((r.label == positive) == truth for r, truth in zip(results, self.positive, strict=False))

    def __len__(self) -> int:
        return len(self.texts)
