"""Texts scored as the edge scores them, outside the HTTP service: the language gate
(``EDGE_LANGUAGES``), then the cascade (and the deep stage where given), in chunks of
``batch_size`` in the texts' order.

``edge-node score`` and ``edge-node batch`` (on every Dask worker) both call :func:`judge`,
so a backfill labels a text exactly as the CLI does, except that with ``EDGE_DEEP_STAGE`` on
``score`` (like the API) adds the deep stage and ``batch`` keeps the cascade alone. A blank text is answered the way
``POST /v1/sentiment`` answers it: no result (``None``), the caller reports ``empty_text``.
"""

from __future__ import annotations

from collections.abc import Callable

from sentiedge_core.deep import DeepStage
from sentiedge_core.inference import Sentiment

EMPTY_TEXT = "empty_text"


def judge(model, gate, texts: list[str], *, batch_size: int = 64,
          progress: Callable[[int], None] | None = None, deep: DeepStage | None = None) -> list[Sentiment | None]:
    """One answer per text, in order; ``None`` for a blank text (not scored). ``deep``: the deep stage
    (EDGE_DEEP_STAGE) re-scores the texts it takes."""
    results: list[Sentiment | None] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        skipped = [not t.strip() for t in chunk]
        foreign = [None if s else gate.answer(t, model) for t, s in zip(chunk, skipped, strict=False)]
        wanted = [t for t, f, s in zip(chunk, foreign, skipped, strict=False) if f is None and not s]
        judged = iter(model.score(wanted, batch_size=batch_size, deep=deep) if wanted else [])
        results.extend(None if s else next(judged) if f is None else f for f, s in zip(foreign, skipped, strict=False))
        if progress is not None:
            progress(len(chunk))
    return results
