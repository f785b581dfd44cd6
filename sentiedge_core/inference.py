"""The sentiment model an edge serves: a verified bundle, its two stages and the cascade.

:meth:`SentimentModel.score` is the synchronous path (CLI, evaluation, build); the HTTP
service (the edge's batching) gathers concurrent callers into the same
:meth:`fast` / :meth:`escalated` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np

from sentiedge_core import cascade
from sentiedge_core.bundle import ExitSpec, Manifest, safe_member, verify
from sentiedge_core.deep import DeepStage
from sentiedge_core.errors import BundleError
from sentiedge_core.stages import NEUTRAL_LABELS, Exit, FastStage, TransformerStage, read_head, read_neutral, session
from sentiedge_core.topics import Aspect


class Sentiment(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    label: Annotated[str, msgspec.Meta(description=(
        "negative, positive, or neutral (a model with a neutral class: its manifest's label_set); "
        "unsupported_language for a text in a language the model does not judge"))]
    score: Annotated[float, msgspec.Meta(description=(
        "2·P(positive) − 1, in [-1, 1]; a neutral text keeps the score the two-way model gives it"))]
    confidence: Annotated[float, msgspec.Meta(description=(
        "probability of the returned label: in [0.5, 1] for negative and positive, above 1/3 for neutral"))]
    stage: str  # which stage answered: "fast", "transformer", "deep" (EDGE_DEEP_STAGE), or "language" (not judged)
    model: str
    version: str
    sample_id: str | None = None  # set when this prediction was sampled for review (POST /v1/labels)
    language: str | None = None  # set when the text is in a language the model does not judge
    aspects: tuple[Aspect, ...] = ()  # one per topic of the caller's tenant found in the text (edge_node.aspects)
    aspects_truncated: Annotated[bool, msgspec.Meta(description=(
        "true where the caller's tenant has topics but this text was not analysed for them: the "
        "request's clause budget (EDGE_ASPECT_MAX_CLAUSES_PER_REQUEST) was spent on the texts before "
        "it; the text is scored as a whole all the same"))] = False


UNSUPPORTED = "unsupported_language"
NEUTRAL = NEUTRAL_LABELS[1]  # served by bundles with a neutral head (1.6+)


class FastVerdict(msgspec.Struct, frozen=True):
    """What the first stage knows about one text; enough to finish or escalate it."""

    margin: float
    tokens: int
    escalate: bool


@dataclass
class Answers:
    """The transformer's answers for escalated texts, before they become results."""

    p: np.ndarray  # the cascade's P(positive)
    ran_to_end: np.ndarray  # bool: the whole encoder ran (no early exit answered)
    neutral: np.ndarray  # bool: a neutral head calls the text neutral
    neutral_p: np.ndarray  # its P(neutral), NaN where none judged

    @staticmethod
    def join(parts: list[Answers]) -> Answers:
        return Answers(*(np.concatenate([getattr(a, f) for a in parts]) for f in ("p", "ran_to_end", "neutral",
                                                                                   "neutral_p")))


class SentimentModel:
    def __init__(self, root: Path, *, threads: int = 1, check_golden: bool = True) -> None:
        self.root = Path(root)
        self.manifest: Manifest = verify(self.root)
        fast = self.manifest.stage("fast")
        transformer = self.manifest.stage("transformer")
        try:
            head = read_head(safe_member(self.root, transformer.head)) if transformer.head else None
            self.fast_stage = FastStage(self.root / fast.model, self.root / fast.tokenizer,
                                        buckets=fast.buckets, max_tokens=fast.max_tokens, threads=threads)
            self.transformer_stage = TransformerStage(
                self.root / transformer.model, self.root / transformer.tokenizer,
                max_len=transformer.max_len, max_windows=transformer.max_windows, threads=threads,
                head=head,
                exits=[self._exit(e, threads) for e in transformer.exits])
            # read after the stage has checked its head against the graph's pooled output
            neutral = (read_neutral(safe_member(self.root, transformer.neutral), head.dimension)
                       if transformer.neutral and head is not None else None)
            self.transformer_stage.neutral = neutral
        except BundleError:
            raise
        except Exception as exc:  # onnxruntime / tokenizers raise their own types
            raise BundleError(f"bundle {self.root}: cannot load a stage: {exc}") from exc
        self.labels = self.manifest.labels
        exit_neutral = any(e.neutral for e in transformer.exits)
        if exit_neutral and not transformer.neutral:
            raise BundleError(f"bundle {self.root}: an exit's neutral head needs the transformer's own neutral head")
        if transformer.neutral and (neutral is None or tuple(self.manifest.label_set) != NEUTRAL_LABELS):
            raise BundleError(f"bundle {self.root}: a neutral head needs the transformer's head file and "
                              f"label_set {list(NEUTRAL_LABELS)}")
        self.neutral_label = NEUTRAL if neutral is not None else None
        self._negation = cascade.negation_pattern(self.manifest.cascade.negation_cues)
        if check_golden:
            self.check_golden()

    def _exit(self, spec: ExitSpec, threads: int) -> Exit:
        head = read_head(safe_member(self.root, spec.head))
        neutral = read_neutral(safe_member(self.root, spec.neutral), head.dimension) if spec.neutral else None
        return Exit(layer=spec.layer, head=head, temperature=spec.temperature,
                    multi_window_temperature=spec.multi_window_temperature, confidence=spec.confidence,
                    rest=session(safe_member(self.root, spec.rest), threads), neutral=neutral)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def negated(self, texts: list[str]) -> np.ndarray | None:
        """Which texts hold one of the bundle's negation cues (None: the bundle names none)."""
        if self._negation is None:
            return None
        return np.asarray([self._negation.search(t) is not None for t in texts], dtype=bool)

    def fast(self, texts: list[str]) -> list[FastVerdict]:
        margins, tokens = self.fast_stage.margins(texts)
        escalate = cascade.escalate(margins, tokens, self.manifest.cascade, self.negated(texts))
        return [FastVerdict(float(m), int(t), bool(e)) for m, t, e in zip(margins, tokens, escalate, strict=False)]

    @property
    def label_set(self) -> list[str]:
        """Every label this model returns."""
        return list(self.manifest.label_set or self.labels)

    def result(self, p_positive: float, stage: str, neutral: float | None = None) -> Sentiment:
        """``neutral``: the neutral head's probability where it calls the text neutral."""
        positive = p_positive >= 0.5
        if neutral is not None and self.neutral_label is not None:
            label, confidence = self.neutral_label, neutral
        else:
            label = self.labels[1] if positive else self.labels[0]
            confidence = max(p_positive, 1.0 - p_positive)
        return Sentiment(label=label, score=round(2.0 * p_positive - 1.0, 6), confidence=round(confidence, 6),
                         stage=stage, model=self.name, version=self.version)

    def finish_fast(self, verdict: FastVerdict) -> Sentiment:
        p = cascade.route_fast_probability(np.asarray([verdict.margin]), np.asarray([verdict.tokens]),
                                           self.manifest.cascade)
        return self.result(float(p[0]), "fast")

    def answers(self, texts: list[str], verdicts: list[FastVerdict],
                on_layers: Callable[[list[int]], None] | None = None,
                on_lower: Callable[[list[str], np.ndarray], None] | None = None) -> Answers:
        """The transformer's answers for escalated texts; ``on_layers`` hears how many encoder layers
        each text ran (fewer where an early exit answered it), ``on_lower`` the texts' lower-layer
        features (:meth:`~sentiedge_core.stages.TransformerStage.lower_features`, from the same run)."""
        decision = self.transformer_stage.decide(texts, want_lower=on_lower is not None)
        if on_layers is not None:
            on_layers([int(n) for n in decision.layers])
        if on_lower is not None and decision.lower is not None:
            on_lower(texts, decision.lower)
        fast_margins = np.asarray([v.margin for v in verdicts])
        tokens = np.asarray([v.tokens for v in verdicts])
        p = cascade.answered(fast_margins, decision.margins, decision.exit_p, tokens, self.manifest.cascade)
        return Answers(np.asarray(p, np.float64), ~np.isnan(decision.margins), decision.neutral, decision.neutral_p)

    def finish(self, texts: list[str], answers: Answers, deep: DeepStage | None = None) -> list[Sentiment]:
        """Results for escalated texts; with ``deep`` (EDGE_DEEP_STAGE) the texts it takes are re-scored
        by it, in one call, and say ``stage: "deep"``."""
        p, went_deep = answers.p, np.zeros(len(texts), dtype=bool)
        if deep is not None:
            p, went_deep = deep.refine(texts, answers.p, answers.ran_to_end)
        return [self.result(float(x), "deep" if d else "transformer", float(n) if is_n else None)
                for x, d, is_n, n in zip(p, went_deep, answers.neutral, answers.neutral_p, strict=True)]

    def escalated(self, texts: list[str], verdicts: list[FastVerdict],
                  on_layers: Callable[[list[int]], None] | None = None,
                  on_lower: Callable[[list[str], np.ndarray], None] | None = None,
                  deep: DeepStage | None = None) -> list[Sentiment]:
        """The transformer's answers (:meth:`answers`) as results (:meth:`finish`)."""
        return self.finish(texts, self.answers(texts, verdicts, on_layers, on_lower), deep)

    def score(self, texts: list[str], batch_size: int = 32, deep: DeepStage | None = None) -> list[Sentiment]:
        """Score texts synchronously; order is preserved.

        The fast stage runs in length-sorted batches. The transformer runs one text per
        call, as the HTTP service does by default: dynamic int8 quantizes activations per
        run, so batching would let a borderline text's label depend on its neighbours, and
        batching does not speed that stage up on CPU (see bench/inference.py)."""
        results: list[Sentiment | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pending: list[tuple[int, FastVerdict]] = []
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            for index, verdict in zip(chunk, self.fast([texts[i] for i in chunk]), strict=False):
                if verdict.escalate:
                    pending.append((index, verdict))
                else:
                    results[index] = self.finish_fast(verdict)
        answers = [self.answers([texts[i]], [v]) for i, v in pending]
        for start in range(0, len(pending), batch_size):  # the deep stage (if on): one e5 call per batch
            indices = [i for i, _ in pending[start:start + batch_size]]
            finished = self.finish([texts[i] for i in indices], Answers.join(answers[start:start + batch_size]), deep)
            for index, r in zip(indices, finished, strict=True):
                results[index] = r
        return results  # type: ignore[return-value]  # every slot is filled by now

    def check_golden(self, deep: DeepStage | None = None) -> None:
        """Refuse a bundle whose golden examples do not come out as the manifest says (with ``deep``:
        with the deep stage on)."""
        if not self.manifest.golden:
            raise BundleError(f"bundle {self.name} {self.version} has no golden examples to check")
        got = self.score([g.text for g in self.manifest.golden], deep=deep)
        wrong = [(g, r) for g, r in zip(self.manifest.golden, got, strict=False) if r.label != g.label]
        if wrong:
            g, r = wrong[0]
            raise BundleError(f"bundle {self.name} {self.version} fails {len(wrong)} golden example(s)"
                              f"{' with the deep stage on' if deep is not None else ''}, "
                              f"e.g. {g.text[:60]!r}: expected {g.label}, got {r.label}")
