"""Text → model inputs, shared by serving and by ``models.build``.

Both cascade stages take token ids produced here; keeping the one implementation
means a model can never be trained on features the edge computes differently.

* :class:`FastEncoder` — WordPiece unigrams plus hashed bigrams for the
  embedding-bag first stage ("fastText" style).
* :class:`WindowEncoder` — BERT-style windows for the transformer stage; texts
  longer than one window are split into evenly spaced, overlapping windows whose
  logits the engine averages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import emoji
import numpy as np
from tokenizers import Tokenizer

_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# Emoticons standing alone (so "https://" keeps its ":/") become the word a reader sees in them.
EMOTICONS = {
    ":)": "smiling", ":-)": "smiling", ":]": "smiling", "=)": "smiling", ":D": "laughing", ":-D": "laughing",
    "xD": "laughing", "XD": "laughing", ";)": "winking", ";-)": "winking", ":(": "sad", ":-(": "sad", ":[": "sad",
    ":'(": "crying", ":/": "unsure", ":-/": "unsure", ":|": "unimpressed", ":P": "playful", ":p": "playful",
    "<3": "love", "</3": "heartbroken",
}
# Where emoji live in Unicode: texts without such a character skip the (slower) emoji pass.
_MAYBE_EMOJI = re.compile("[\u00a9\u00ae\u203c-\u3299\U0001f000-\U0001faff]")
_EMOTICON = re.compile(r"(?<!\S)(" + "|".join(re.escape(e) for e in sorted(EMOTICONS, key=len, reverse=True))
                       + r")(?=[\s.,!?]|$)")
# Large odd multiplier (Knuth) so neighbouring unigram ids spread over the buckets.
_HASH_MULTIPLIER = np.uint64(2654435761)


def normalize(text: str) -> str:
    """Collapse HTML line breaks and runs of whitespace, and spell out emoji and emoticons
    ("😍" → "smiling face with heart-eyes", ":(" → "sad") so both stages' tokenizers see
    words they know instead of unknown symbols; nothing else is altered."""
    text = _HTML_BREAK.sub(" ", text)
    if not text.isascii() and _MAYBE_EMOJI.search(text):
        text = emoji.replace_emoji(text, replace=_emoji_words)
    if ":" in text or ";" in text or "<" in text or "=" in text or "x" in text or "X" in text:
        text = _EMOTICON.sub(lambda m: f" {EMOTICONS[m.group(1)]} ", text)
    return _SPACES.sub(" ", text).strip()


def _emoji_words(symbol: str, data: dict) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


def _load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@dataclass(frozen=True)
class FastBatch:
    ids: np.ndarray  # int64 [batch, width]; 0 pads (its embedding row is zero)
    counts: np.ndarray  # float32 [batch, 1]; number of real features per text


class FastEncoder:
    """Unigram WordPiece ids followed by bigram ids hashed into ``buckets`` slots."""

    def __init__(self, tokenizer_path: Path, *, buckets: int, max_tokens: int) -> None:
        self.tokenizer = _load_tokenizer(tokenizer_path)
        self.vocab_size = self.tokenizer.get_vocab_size()
        self.buckets = buckets
        self.max_tokens = max_tokens

    @property
    def num_features(self) -> int:
        return self.vocab_size + self.buckets

    def features(self, texts: list[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch([normalize(t) for t in texts], add_special_tokens=False)
        out = []
        for enc in encodings:
            uni = np.asarray(enc.ids[: self.max_tokens], dtype=np.uint64)
            if uni.size == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            bi = (uni[:-1] * _HASH_MULTIPLIER + uni[1:]) % np.uint64(self.buckets) + np.uint64(self.vocab_size)
            out.append(np.concatenate([uni, bi]).astype(np.int64))
        return out

    def batch(self, texts: list[str]) -> FastBatch:
        feats = self.features(texts)
        width = max(1, max(f.size for f in feats))
        ids = np.zeros((len(feats), width), dtype=np.int64)
        counts = np.ones((len(feats), 1), dtype=np.float32)
        for row, f in enumerate(feats):
            ids[row, : f.size] = f
            counts[row, 0] = max(1, f.size)
        return FastBatch(ids=ids, counts=counts)


@dataclass(frozen=True)
class WindowBatch:
    input_ids: np.ndarray  # int64 [windows, width]
    attention_mask: np.ndarray  # int64 [windows, width]
    owners: np.ndarray  # int64 [windows]: index of the text each window came from
    num_texts: int

    def mean_over_owner(self, window_values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Average per-window rows back into one row per text. ``window_values`` may cover only
        some ``rows`` of the batch (texts an early exit answered are left out): a text with no
        window among them gets NaN."""
        owners = self.owners if rows is None else self.owners[rows]
        if self.num_texts == 1 and len(owners):  # the served case: one text per run
            return window_values.mean(0, keepdims=True, dtype=np.float64).astype(np.float32)
        sums = np.zeros((self.num_texts, window_values.shape[1]), dtype=np.float64)
        np.add.at(sums, owners, window_values)
        per_text = np.bincount(owners, minlength=self.num_texts).reshape(-1, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / per_text).astype(np.float32)


class WindowEncoder:
    """Split each text into at most ``max_windows`` windows of ``max_len`` tokens.

    A text that fits is one window. A longer one gets windows spread evenly from its
    first to its last token, so both the opening and the verdict at the end are seen.
    """

    def __init__(self, tokenizer_path: Path, *, max_len: int, max_windows: int) -> None:
        if max_len < 8 or max_windows < 1:
            raise ValueError("max_len must be >= 8 and max_windows >= 1")
        self.tokenizer = _load_tokenizer(tokenizer_path)
        self.max_len = max_len
        self.max_windows = max_windows
        self.cls_id = self._special("[CLS]")
        self.sep_id = self._special("[SEP]")
        self.pad_id = self._special("[PAD]")

    def _special(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token} token")
        return token_id

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch([normalize(t) for t in texts], add_special_tokens=False)
        return [enc.ids for enc in encodings]

    def windows_of(self, ids: list[int]) -> list[list[int]]:
        body = self.max_len - 2
        if len(ids) <= body:
            return [[self.cls_id, *ids, self.sep_id]]
        count = min(self.max_windows, math.ceil((len(ids) - body) / (body // 2)) + 1)
        starts = np.linspace(0, len(ids) - body, count).round().astype(int)
        return [[self.cls_id, *ids[s : s + body], self.sep_id] for s in starts]

    def pad(self, windows: list[list[int]], owners: list[int], num_texts: int) -> WindowBatch:
        width = max(len(w) for w in windows)
        input_ids = np.full((len(windows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            input_ids[row, : len(w)] = w
            mask[row, : len(w)] = 1
        return WindowBatch(input_ids, mask, np.asarray(owners, dtype=np.int64), num_texts)

    def batch(self, texts: list[str]) -> WindowBatch:
        windows: list[list[int]] = []
        owners: list[int] = []
        for index, ids in enumerate(self.token_ids(texts)):
            for w in self.windows_of(ids):
                windows.append(w)
                owners.append(index)
        return self.pad(windows, owners, len(texts))
