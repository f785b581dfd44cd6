"""The two cascade stages as ONNX Runtime sessions. Each returns raw logit margins
(positive minus negative logit); calibration and routing live in :mod:`sentiedge_core.cascade`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort

from sentiedge_core.encoding import FastEncoder, WindowBatch, WindowEncoder
from sentiedge_core.errors import BundleError


def session(model_path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class FastStage:
    """Embedding bag over WordPiece unigrams and hashed bigrams: ~0.1 ms a text."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, buckets: int, max_tokens: int, threads: int = 1):
        self.encoder = FastEncoder(tokenizer_path, buckets=buckets, max_tokens=max_tokens)
        self.session = session(model_path, threads)

    def margins(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Logit margins and each text's token count (which decides its route)."""
        batch = self.encoder.batch(texts)
        logits = self.session.run(["logits"], {"ids": batch.ids, "counts": batch.counts})[0]
        features = np.count_nonzero(batch.ids, axis=1)
        tokens = np.where(features > 0, (features + 1) // 2, 0)
        return (logits[:, 1] - logits[:, 0]).astype(np.float32), tokens


class Head(msgspec.Struct, frozen=True):
    """The transformer stage's classification layer, kept beside the encoder (bundle schema 1.3+):
    ``logits = weights · pooled + bias``, one row per label. Federated adaptation
    (:mod:`sentiedge_core.adaptation`) retrains only this and the cascade's stackers."""

    weights: list[list[float]]
    bias: list[float]

    @property
    def dimension(self) -> int:
        return len(self.weights[0])

    def margin_parameters(self) -> tuple[np.ndarray, float]:
        """The positive-minus-negative direction and offset: all a two-label margin depends on."""
        w = np.asarray(self.weights, dtype=np.float64)
        return w[1] - w[0], float(self.bias[1] - self.bias[0])


def read_head(path: Path) -> Head:
    try:
        head = msgspec.json.decode(path.read_bytes(), type=Head)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BundleError(f"{path.name}: not a readable classification head: {exc}") from exc
    dims = {len(row) for row in head.weights}
    if len(head.weights) != 2 or len(head.bias) != 2 or len(dims) != 1 or 0 in dims:
        raise BundleError(f"{path.name}: a head needs 2 rows of equal, non-zero width and 2 biases")
    if not np.isfinite(np.asarray(head.weights)).all() or not np.isfinite(np.asarray(head.bias)).all():
        raise BundleError(f"{path.name}: the head holds a non-finite number")
    return head


NEUTRAL_LABELS = ("negative", "neutral", "positive")  # the rows of a neutral head, in order


class NeutralHead(msgspec.Struct, frozen=True):
    """The neutral class (bundle 1.6+): ``softmax((weights · pooled + bias) / temperature)`` over
    negative, neutral, positive, read from the same pooled output as the binary head. It only
    decides whether a text is neutral; the score stays the binary cascade's."""

    weights: list[list[float]]
    bias: list[float]
    temperature: float = 1.0

    def probabilities(self, pooled: np.ndarray) -> np.ndarray:
        z = (np.asarray(pooled, np.float64) @ np.asarray(self.weights).T + np.asarray(self.bias)) / self.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def judge(self, pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``pooled``: whether the neutral row wins, and P(neutral) (NaN rows, texts
        not run to the end: never neutral, NaN)."""
        pooled = np.asarray(pooled, np.float64)
        finite = np.isfinite(pooled).all(axis=1)
        neutral, p = np.zeros(len(pooled), dtype=bool), np.full(len(pooled), np.nan)
        if finite.any():
            probs = self.probabilities(pooled[finite])
            neutral[finite], p[finite] = probs.argmax(axis=1) == 1, probs[:, 1]
        return neutral, p

    def is_neutral(self, pooled: np.ndarray) -> np.ndarray:
        return self.judge(pooled)[0]


def read_neutral(path: Path, dimension: int) -> NeutralHead:
    try:
        head = msgspec.json.decode(path.read_bytes(), type=NeutralHead)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BundleError(f"{path.name}: not a readable neutral head: {exc}") from exc
    w, b = np.asarray(head.weights, np.float64), np.asarray(head.bias, np.float64)
    if w.shape != (3, dimension) or b.shape != (3,):
        raise BundleError(f"{path.name}: a neutral head needs 3 rows of width {dimension} and 3 biases")
    if not (np.isfinite(w).all() and np.isfinite(b).all() and np.isfinite(head.temperature) and head.temperature > 0):
        raise BundleError(f"{path.name}: the neutral head holds a non-finite number or a non-positive temperature")
    return head


@dataclass
class Exit:
    """An early exit as loaded (:class:`sentiedge_core.bundle.ExitSpec`): its head over the
    mean-pooled hidden states, its calibration and the graph that goes on from it."""

    layer: int
    head: Head
    temperature: float  # texts of one window
    multi_window_temperature: float  # texts of several
    confidence: float
    rest: ort.InferenceSession | None = None  # None: only its probabilities are wanted (fitting)
    neutral: NeutralHead | None = None  # judges which texts this exit answers are neutral (1.7+)

    def __post_init__(self) -> None:
        self._direction, self._offset = self.head.margin_parameters()

    def probability(self, features: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """P(positive) from mean-pooled hidden states [n, width] of texts of ``windows`` windows."""
        margin = np.asarray(features, np.float64) @ self._direction + self._offset
        temperature = np.where(np.asarray(windows) > 1, self.multi_window_temperature, self.temperature)
        return 1.0 / (1.0 + np.exp(-np.clip(margin / temperature, -60, 60)))


@dataclass
class Pass:
    """One run of the transformer stage over some texts."""

    pooled: np.ndarray  # [n, dimension]; NaN rows for texts answered at an exit
    exit_p: np.ndarray  # P(positive) for texts answered at an exit, NaN for the others
    exit_layer: np.ndarray  # layers run before the exit that answered each text; 0 = none did
    windows: np.ndarray  # windows each text was cut into
    exit_features: list[np.ndarray] = field(default_factory=list)  # per exit [n, width] (keep_features)
    # P(neutral) from the neutral head of the exit that answered a text, where that exit has one
    # and calls it neutral; NaN for every other text
    exit_neutral_p: np.ndarray | None = None


@dataclass
class Decision:
    """The transformer stage's answer for some texts, as served."""

    margins: np.ndarray  # the head's margin for texts run to the end, NaN for the others
    exit_p: np.ndarray  # P(positive) for texts an exit answered, NaN for the others
    layers: np.ndarray  # encoder layers each text ran
    neutral: np.ndarray  # bool: the neutral head (or the answering exit's) calls the text neutral
    neutral_p: np.ndarray  # the neutral head's P(neutral), NaN where it did not judge
    lower: np.ndarray | None = None  # lower-layer features (TransformerStage.lower_features), if asked for


def token_weights(batch: WindowBatch) -> np.ndarray:
    """[windows, width] weights of a masked mean over each window's tokens."""
    weights = batch.attention_mask.astype(np.float32)
    return weights / weights.sum(1, keepdims=True)


GRAPH_INPUTS = {"input_ids", "attention_mask", "hidden_in"}
CARRIED = "carried_"  # outputs of the first graph by this prefix are handed on to the later ones


class TransformerStage:
    """Fine-tuned MiniLM; a long text's margin is the mean over its windows.

    With a ``head`` the ONNX graph ends at the pooled encoder output (``pooled``) and the
    classification layer is applied here; a text's pooled vector is the mean over its
    windows (the head is linear, so this equals the mean of the windows' logits).
    Without one (bundles before 1.3) the graph returns ``logits`` itself.

    With ``exits`` (1.5+) the encoder is cut into pieces: the first graph ends at ``hidden``,
    each exit reads the mean-pooled hidden states and answers the texts it is confident
    about, and its ``rest`` graph carries the others on (the last one to ``pooled``). A text
    that runs to the end gets exactly the margin the uncut encoder would give."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, max_len: int, max_windows: int, threads: int = 1,
                 head: Head | None = None, exits: list[Exit] | None = None, layers: int = 6,
                 neutral: NeutralHead | None = None):
        self.encoder = WindowEncoder(tokenizer_path, max_len=max_len, max_windows=max_windows)
        self.session = session(model_path, threads)
        self.head = head
        self.exits = list(exits or [])
        self.neutral = neutral
        self.layers = layers  # the encoder's depth (MiniLM-L6), reported for texts run to the end
        self._inputs: dict[int, list[str]] = {}  # each graph's input names, by id of its session
        if (self.exits or neutral is not None) and head is None:
            raise BundleError("early exits and a neutral head need the transformer's head outside its graph")
        if head is not None:
            self._carried = [o.name for o in self.session.get_outputs() if o.name.startswith(CARRIED)]
            graphs = [(model_path.name, self.session),
                      *((f"the rest after layer {e.layer}", e.rest) for e in self.exits)]
            for index, (name, graph) in enumerate(graphs):
                last = index == len(graphs) - 1
                self._check_graph(name, graph, "pooled" if last else "hidden",
                                  head.dimension if last else self.exits[index].head.dimension,
                                  first=index == 0, carried=self._carried)
            self._direction, self._offset = head.margin_parameters()

    @staticmethod
    def _check_graph(name: str, graph: ort.InferenceSession, output: str, width: int, *, first: bool,
                     carried: list[str]) -> None:
        outputs = {o.name: o.shape for o in graph.get_outputs()}
        if output not in outputs or outputs[output][-1] != width:
            raise BundleError(f"{name} has no {output!r} output of width {width}")
        inputs = {i.name for i in graph.get_inputs()}
        if not inputs <= GRAPH_INPUTS | set(carried) or ("hidden_in" in inputs) == first:
            raise BundleError(f"{name} takes {sorted(inputs)}; expected input_ids/attention_mask"
                              + ("" if first else f" or hidden_in and {carried or 'nothing else'}"))

    def _run(self, graph: ort.InferenceSession, outputs: list[str], batch: WindowBatch, rows: np.ndarray,
             hidden: np.ndarray | None = None, carried: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        names = self._inputs.get(id(graph))
        if names is None:
            names = self._inputs[id(graph)] = [i.name for i in graph.get_inputs()]
        whole = len(rows) == len(batch.owners)
        feed = {"input_ids": batch.input_ids if whole else batch.input_ids[rows],
                "attention_mask": batch.attention_mask if whole else batch.attention_mask[rows], "hidden_in": hidden}
        if carried:
            feed.update({k: v if whole else v[rows] for k, v in carried.items() if k in names})
        return graph.run(outputs, {name: feed[name] for name in names})

    def forward(self, texts: list[str], *, early: bool = True, keep_features: bool = False,
                only: Callable[[np.ndarray], np.ndarray] | None = None) -> Pass:
        """Run the stage. ``early=False`` runs every text to the end but still records which exit
        would have answered it (and with what), as the served path would. ``only`` (with exits and
        ``early``) hears the first exit's features [n, width] and says which texts go on past it
        (a boolean per text): the others stop there, unanswered (pooled NaN) unless that exit fired."""
        if self.head is None:
            raise BundleError("this bundle's transformer has no separate head, so no pooled output")
        batch = self.encoder.batch(texts)
        n = batch.num_texts
        rows = np.arange(len(batch.owners))
        exit_p, exit_layer = np.full(n, np.nan), np.zeros(n, dtype=np.int64)
        exit_neutral_p = np.full(n, np.nan)
        features: list[np.ndarray] = []
        windows = np.bincount(batch.owners, minlength=n)
        if not self.exits:
            (pooled,) = self._run(self.session, ["pooled"], batch, rows)
            return Pass(batch.mean_over_owner(pooled), exit_p, exit_layer, windows, features)
        values, *handed_on = self._run(self.session, ["hidden", *self._carried], batch, rows)
        carried = dict(zip(self._carried, handed_on, strict=False))
        weights = token_weights(batch)
        wanted = np.ones(n, dtype=bool)
        for index, ex in enumerate(self.exits):
            pooled_hidden = batch.mean_over_owner(np.einsum("wtd,wt->wd", values, weights[rows]), rows)
            if keep_features:
                features.append(pooled_hidden)
            running = ~np.isnan(pooled_hidden[:, 0])
            p = ex.probability(np.where(running[:, None], pooled_hidden, 0.0), windows)
            fire = (exit_layer == 0) & running & (np.maximum(p, 1 - p) >= ex.confidence)
            exit_p[fire], exit_layer[fire] = p[fire], ex.layer
            if ex.neutral is not None and fire.any():
                is_neutral, p_neutral = ex.neutral.judge(pooled_hidden[fire])
                exit_neutral_p[np.flatnonzero(fire)[is_neutral]] = p_neutral[is_neutral]
            if index == 0 and only is not None:
                wanted = np.asarray(only(pooled_hidden), dtype=bool)
            if early:
                keep = (exit_layer[batch.owners[rows]] == 0) & wanted[batch.owners[rows]]
                rows, values = rows[keep], values[keep]
            if not rows.size:
                return Pass(np.full((n, self.head.dimension), np.nan, np.float32), exit_p, exit_layer, windows,
                            features, exit_neutral_p)
            last = index == len(self.exits) - 1
            (values,) = self._run(ex.rest, ["pooled" if last else "hidden"], batch, rows, values, carried)
        return Pass(batch.mean_over_owner(values, rows), exit_p, exit_layer, windows, features, exit_neutral_p)

    def lower_features(self, texts: list[str]) -> np.ndarray:
        """Each text's hidden states after the first exit's layer, mean-pooled [n, width] (what that
        exit's head reads; ``forward(..., keep_features=True).exit_features[0]`` for the same texts).
        The fine-tuned top layers mostly say how a text feels; these lower ones still say what it is
        about (edge_node.aspects matches topics on them). Without exits: the pooled output."""
        if not self.exits:
            return self.pooled(texts)
        batch = self.encoder.batch(texts)
        (values,) = self._run(self.session, ["hidden"], batch, np.arange(len(batch.owners)))
        return batch.mean_over_owner(np.einsum("wtd,wt->wd", values, token_weights(batch)))

    def pooled(self, texts: list[str]) -> np.ndarray:
        """Each text's pooled encoder output [n, dimension] (what the head reads), exits ignored."""
        return self.forward(texts, early=False).pooled

    def margins_of(self, pooled: np.ndarray) -> np.ndarray:
        return (np.asarray(pooled, np.float64) @ self._direction + self._offset).astype(np.float32)

    def margins(self, texts: list[str]) -> np.ndarray:
        """The head's margins with every text run to the end (exits ignored)."""
        if self.head is not None:
            return self.margins_of(self.pooled(texts))
        batch = self.encoder.batch(texts)
        (logits,) = self._run(self.session, ["logits"], batch, np.arange(len(batch.owners)))
        logits = batch.mean_over_owner(logits)
        return (logits[:, 1] - logits[:, 0]).astype(np.float32)

    def decide(self, texts: list[str], *, want_lower: bool = False) -> Decision:
        """As served: the head's margin for texts run to the end (NaN for the others),
        P(positive) for texts an exit answered (NaN for the others), the layers each text
        ran (the exit's, or the whole encoder's: ``layers``) and, where the bundle has a neutral
        head, which texts it calls neutral. ``want_lower``: also the texts' :meth:`lower_features`
        from the same run (computed on the way: no extra work; None without a head)."""
        n = len(texts)
        if self.head is None:
            none = np.full(n, np.nan)
            return Decision(self.margins(texts), none, np.full(n, self.layers), np.zeros(n, dtype=bool), none)
        run = self.forward(texts, keep_features=want_lower and bool(self.exits))
        layers = np.where(run.exit_layer > 0, run.exit_layer, self.layers)
        if self.neutral is not None:
            neutral, neutral_p = self.neutral.judge(run.pooled)
        else:
            neutral, neutral_p = np.zeros(n, dtype=bool), np.full(n, np.nan)
        if run.exit_neutral_p is not None:  # texts an exit answered: that exit's neutral head, if any
            at_exit = ~np.isnan(run.exit_neutral_p)
            neutral, neutral_p = neutral | at_exit, np.where(at_exit, run.exit_neutral_p, neutral_p)
        lower = (run.exit_features[0] if self.exits else run.pooled) if want_lower else None
        return Decision(self.margins_of(run.pooled), run.exit_p, layers, neutral, neutral_p, lower)
