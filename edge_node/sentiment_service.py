"""Async sentiment scoring for the HTTP API: two micro-batched stages over one model.

Every text goes through the fast stage's batcher; only texts it is unsure of are
submitted to the transformer's batcher (and, with EDGE_DEEP_STAGE, the texts the deep stage
takes from a worker's job are embedded together after its transformer runs). Per stage, batch size and wait are separate
settings because batching pays very differently for a 3 MB embedding bag and a
6-layer transformer (see ``bench/inference.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from edge_node.batching import MicroBatcher
from edge_node.config import EdgeSettings
from sentiedge_core.deep import DeepStage
from sentiedge_core.encoding import normalize
from sentiedge_core.inference import Answers, FastVerdict, Sentiment, SentimentModel
from sentiedge_core.language import LanguageGate

R = TypeVar("R")


class SentimentService:
    def __init__(self, model: SentimentModel, settings: EdgeSettings,
                 on_batch: Callable[[str, int], None] | None = None,
                 on_layers: Callable[[list[int]], None] | None = None,
                 on_lower: Callable[[list[str], np.ndarray], None] | None = None,
                 deep: DeepStage | None = None) -> None:
        self.model = model
        self.deep = deep
        self.languages = LanguageGate.from_settings(settings)
        self._executor = ThreadPoolExecutor(max_workers=settings.inference_workers, thread_name_prefix="inference")

        def observe(stage: str) -> Callable[[int], None] | None:
            return None if on_batch is None else (lambda size: on_batch(stage, size))

        self._fast: MicroBatcher[str, FastVerdict] = MicroBatcher(
            model.fast, executor=self._executor, max_batch=settings.fast_max_batch,
            max_wait_s=settings.fast_max_wait_ms / 1000, workers=settings.inference_workers,
            size_of=len, on_batch=observe("fast"), min_queue=settings.fast_batch_min_queue)
        per_run, observed = settings.transformer_max_batch, observe("transformer")

        def escalate(pairs: list[tuple[str, FastVerdict]]) -> list[Sentiment]:
            """A worker's job: up to transformer_texts_per_job texts, in ONNX runs of per_run; the
            deep stage (when on) takes the job's texts it qualifies in one e5 call."""
            answers: list[Answers] = []
            for start in range(0, len(pairs), per_run):
                run = pairs[start:start + per_run]
                if observed is not None:
                    observed(len(run))
                answers.append(model.answers([t for t, _ in run], [v for _, v in run], on_layers, on_lower))
            return model.finish([t for t, _ in pairs], Answers.join(answers), deep)

        self._transformer: MicroBatcher[tuple[str, FastVerdict], Sentiment] = MicroBatcher(
            escalate, executor=self._executor, max_batch=max(per_run, settings.transformer_texts_per_job),
            max_wait_s=settings.transformer_max_wait_ms / 1000, workers=settings.inference_workers,
            size_of=lambda pair: len(pair[0]), share=True)

    async def start(self) -> None:
        self._fast.start()
        self._transformer.start()
        # Warm-up: the first ONNX runs allocate arenas; do it before traffic arrives (the deep stage's
        # metrics count served texts only).
        heard = self.deep.on_run if self.deep is not None else None
        if self.deep is not None:
            self.deep.on_run = None
        try:
            await self.score(["warm-up: a short neutral sentence."] * 2)
        finally:
            if self.deep is not None:
                self.deep.on_run = heard

    async def close(self) -> None:
        await self._fast.close()
        await self._transformer.close()
        self._executor.shutdown(wait=True)

    async def in_worker(self, fn: Callable[..., R], *args) -> R:
        """Run ``fn(*args)`` in one of the inference worker threads (other ONNX work of this model)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def score_one(self, text: str) -> Sentiment:
        foreign = self.languages.answer(text, self.model)
        if foreign is not None:
            return foreign
        text = normalize(text)
        verdict = await self._fast.submit(text)
        if not verdict.escalate:
            return self.model.finish_fast(verdict)
        return await self._transformer.submit((text, verdict))

    async def score(self, texts: list[str]) -> list[Sentiment]:
        return list(await asyncio.gather(*(self.score_one(t) for t in texts)))
