import asyncio
import subprocess
import sys

import pytest

from edge_node.config import EdgeSettings
from edge_node.sentiment_service import SentimentService
from models.data import load_corpus


@pytest.mark.parametrize("texts_per_job", [1, 4])
def test_micro_batched_service_agrees_with_the_synchronous_engine(model, texts_per_job):
    """A worker may take several escalated texts at once (EDGE_TRANSFORMER_TEXTS_PER_JOB), but
    each is its own ONNX run: the scores are exactly what the synchronous engine gives."""
    texts = load_corpus().test.only("rotten_tomatoes").texts[:120]
    batches: list[tuple[str, int]] = []

    async def main():
        service = SentimentService(model, EdgeSettings(inference_workers=2, transformer_texts_per_job=texts_per_job),
                                   on_batch=lambda stage, size: batches.append((stage, size)))
        await service.start()
        try:
            return await service.score(texts)
        finally:
            await service.close()

    served = asyncio.run(main())
    direct = model.score(texts)
    assert [r.label for r in served] == [r.label for r in direct]
    assert [r.stage for r in served] == [r.stage for r in direct]
    assert all(abs(a.score - b.score) < 1e-6 for a, b in zip(served, direct, strict=False))
    # 120 concurrent callers must share fast-stage runs; the transformer runs one text each.
    fast_sizes = [size for stage, size in batches if stage == "fast"]
    assert max(fast_sizes) > 1 and sum(fast_sizes) >= len(texts)
    assert all(size == 1 for stage, size in batches if stage == "transformer")


def test_serving_never_imports_the_training_stack():
    code = ("import sys, edge_node.http.app, edge_node.cli, sentiedge_core.inference, models.evaluate;"
            "bad = [m for m in ('torch', 'transformers', 'onnx') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
