"""The aspect figures on the labelled clause set (``tests/data/aspect_clauses.csv``):
``python -m edge_node.aspects.evaluate [--bundle DIR] [--clauses FILE] [--fit]``.

Each clause is analysed as a one-clause text, as the edge analyses it: its topic from
:class:`~edge_node.aspects.matching.TopicIndex` over the starter topic set, its polarity the
answer :func:`~edge_node.aspects.analyzer.clause_answers` gives it. Printed per part
(``tune``: what the matching numbers were fitted on; ``test``: held out):

* topic detection: per topic precision, recall and F1 over the clauses (a clause labelled with
  another topic or none counts against a topic predicted for it), and their macro average over
  the topics; and how many ``none`` clauses were given a topic;
* aspect polarity accuracy: over the clauses with a topic and a positive or negative label,
  of the predicted label (on every such clause, and on those whose topic was found).

``--fit`` searches the three matching numbers on the tuning part only and prints the best.
Not used by serving.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_node.aspects.analyzer import clause_answers
from edge_node.aspects.matching import KEYWORD_BONUS, THRESHOLD, TOP_K, TopicIndex
from sentiedge_core import BUNDLE_DIR
from sentiedge_core.inference import SentimentModel
from sentiedge_core.topics import TopicSet, starter

CLAUSES = Path(__file__).resolve().parents[2] / "tests" / "data" / "aspect_clauses.csv"


@dataclass(frozen=True)
class Clause:
    source: str
    part: str
    topic: str  # a topic's name or "none"
    polarity: str  # positive, negative or neutral
    text: str


def load(path: Path = CLAUSES) -> list[Clause]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return [Clause(r["source"], r["part"], r["topic"], r["polarity"], r["text"]) for r in rows]


def macro_f1(gold: list[str], predicted: list[str | None], topics: list[str]) -> tuple[float, dict]:
    """Macro-averaged F1 over ``topics`` (``none`` is not a topic) and each topic's (P, R, F1)."""
    per = {}
    for name in topics:
        tp = sum(p == name and g == name for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == name and g != name for g, p in zip(gold, predicted, strict=True))
        fn = sum(p != name and g == name for g, p in zip(gold, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per[name] = (precision, recall, 2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean([f for _, _, f in per.values()])), per


@dataclass
class Figures:
    n: int
    macro_f1: float
    per_topic: dict
    none_given_topic: tuple[int, int]
    polarity: tuple[int, int]  # right, of clauses with a topic and a polar label
    polarity_found: tuple[int, int]  # the same, of those whose topic was found


def figures(clauses: list[Clause], predicted: list[str | None], labels: list[str], topics: list[str]) -> Figures:
    gold = [c.topic for c in clauses]
    score, per = macro_f1(gold, predicted, topics)
    nones = [p for c, p in zip(clauses, predicted, strict=True) if c.topic == "none"]
    polar = [(c, p, label) for c, p, label in zip(clauses, predicted, labels, strict=True)
             if c.topic != "none" and c.polarity in ("positive", "negative")]
    found = [(c, label) for c, p, label in polar if p == c.topic]
    return Figures(n=len(clauses), macro_f1=score, per_topic=per,
                   none_given_topic=(sum(p is not None for p in nones), len(nones)),
                   polarity=(sum(label == c.polarity for c, _, label in polar), len(polar)),
                   polarity_found=(sum(label == c.polarity for c, label in found), len(found)))


class Evaluation:
    """A bundle, the starter topics and the clause set, with each clause's vector and label computed once."""

    def __init__(self, model: SentimentModel, clauses: list[Clause]) -> None:
        self.model = model
        self.clauses = clauses
        self.topic_set = TopicSet(tenant="evaluation", version=1, topics=starter())
        self.topics = [t.name for t in self.topic_set.topics]
        answers = [clause_answers(model, [c.text]) for c in clauses]  # one per run, as served
        self.vectors = np.vstack([vectors for vectors, _, _ in answers])
        self.labels = [model.result(float(p[0]), "aspect").label for _, p, _ in answers]
        self._embedded: dict[str, np.ndarray] = {}

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._embedded]
        for text in missing:
            self._embedded[text] = self.model.transformer_stage.lower_features([text])[0]
        return np.vstack([self._embedded[t] for t in texts])

    def index(self, threshold: float = THRESHOLD, keyword_bonus: float = KEYWORD_BONUS, top_k: int = TOP_K):
        return TopicIndex(self.topic_set, self._embed, threshold=threshold, keyword_bonus=keyword_bonus, top_k=top_k)

    def predicted(self, index: TopicIndex, rows: list[int]) -> list[str | None]:
        return index.assign([self.clauses[i].text for i in rows], self.vectors[rows])

    def part(self, name: str) -> list[int]:
        return [i for i, c in enumerate(self.clauses) if c.part == name]

    def measure(self, part: str, index: TopicIndex | None = None) -> Figures:
        rows = self.part(part)
        return figures([self.clauses[i] for i in rows], self.predicted(index or self.index(), rows),
                       [self.labels[i] for i in rows], self.topics)

    def fit(self) -> tuple[float, float, int, float]:
        """The (threshold, keyword bonus, top k) with the best macro-F1 on the tuning part."""
        rows = self.part("tune")
        gold = [self.clauses[i].topic for i in rows]
        texts = [self.clauses[i].text for i in rows]
        best = (-1.0, THRESHOLD, KEYWORD_BONUS, TOP_K)
        for top_k in (1, 2, 3, 5):
            index = self.index(top_k=top_k)
            for bonus in np.arange(0.0, 0.51, 0.05):
                index.keyword_bonus = float(bonus)
                scores = index.scores(texts, self.vectors[rows])
                top = scores.argmax(axis=1)
                values = scores[np.arange(len(rows)), top]
                for threshold in np.arange(0.40, 0.95, 0.005):
                    predicted = [index.names[t] if v >= threshold else None for t, v in zip(top, values, strict=True)]
                    score = macro_f1(gold, predicted, self.topics)[0]
                    if score > best[0] + 1e-9:
                        best = (score, round(float(threshold), 3), round(float(bonus), 2), top_k)
        return best[1], best[2], best[3], best[0]


def report(name: str, f: Figures) -> str:
    lines = [f"{name}: {f.n} clauses; topic macro-F1 {f.macro_f1:.3f}; none clauses given a topic "
             f"{f.none_given_topic[0]}/{f.none_given_topic[1]}; polarity accuracy {f.polarity[0] / f.polarity[1]:.3f} "
             f"({f.polarity[0]}/{f.polarity[1]}), on clauses whose topic was found "
             f"{f.polarity_found[0] / max(1, f.polarity_found[1]):.3f} ({f.polarity_found[0]}/{f.polarity_found[1]})"]
    lines += [f"  {topic:12s} P {p:.2f}  R {r:.2f}  F1 {f1:.2f}" for topic, (p, r, f1) in f.per_topic.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_node.aspects.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR, help="model bundle (default: the shipped one)")
    parser.add_argument("--clauses", type=Path, default=CLAUSES, help="labelled clause set (CSV)")
    parser.add_argument("--fit", action="store_true", help="search the matching numbers on the tuning part")
    args = parser.parse_args(argv)
    if not args.clauses.is_file():
        print(f"no clause set at {args.clauses}", file=sys.stderr)
        return 2
    model = SentimentModel(args.bundle, threads=1)
    run = Evaluation(model, load(args.clauses))
    print(f"bundle {model.name} {model.version}; matching: threshold {THRESHOLD}, keyword bonus {KEYWORD_BONUS}, "
          f"top {TOP_K} examples")
    index = None
    if args.fit:
        threshold, bonus, top_k, score = run.fit()
        print(f"fitted on tune: threshold {threshold}, keyword bonus {bonus}, top {top_k} (tune macro-F1 {score:.3f})")
        index = run.index(threshold, bonus, top_k)
    for part in ("tune", "test"):
        print(report(part, run.measure(part, index)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
