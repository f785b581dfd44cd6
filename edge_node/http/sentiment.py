"""``POST /v1/sentiment``'s use of the node, shared by the documented route (edge_node.http.app)
and the front path that answers its happy path before the framework (edge_node.http.fast_path)."""

from __future__ import annotations

from typing import cast

from edge_node.config import EdgeSettings
from edge_node.errors import InvalidInput, LimitExceeded
from edge_node.http.schemas import ItemError, SentimentResponse
from sentiedge_core.access import Caller
from sentiedge_core.inference import Sentiment

FAILED = "sentiedge.sentiment_failed"


def check_texts(texts: list[str], settings: EdgeSettings) -> None:
    """Refuse the whole batch for what bounds the work (count, length); blank texts are
    answered per item (see score_texts)."""
    if not texts:
        raise InvalidInput("texts must hold at least one text", field="texts")
    if len(texts) > settings.max_texts_per_request:
        raise LimitExceeded(f"texts holds {len(texts)} items; the limit is {settings.max_texts_per_request} "
                            f"(EDGE_MAX_TEXTS_PER_REQUEST)", field="texts")
    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise LimitExceeded(f"texts[{i}] has {len(text)} characters; the limit is {settings.max_text_chars} "
                                f"(EDGE_MAX_TEXT_CHARS)", field=f"texts[{i}]")


async def score_texts(node, caller: Caller, texts: list[str], scope) -> SentimentResponse:
    """The answer to a request's texts. A failure is met once: the front path keeps it in the
    request's scope and the route, which then answers the request, raises the same (no text is
    scored twice, no refusal counted twice)."""
    failed = scope.get(FAILED)
    if failed is not None:
        raise failed
    try:
        return await _score(node, caller, texts)
    except Exception as exc:
        scope[FAILED] = exc
        raise


async def _score(node, caller: Caller, texts: list[str]) -> SentimentResponse:
    if caller.scopes:
        caller.require_scope("sentiment")
    check_texts(texts, node.settings)
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if not blank:
        results = await node.serving.score(texts, tenant=caller.tenant)
        return SentimentResponse(results=cast("list[Sentiment | None]", results))
    if len(blank) == len(texts):
        raise InvalidInput("every text is empty or only whitespace; nothing to score", field="texts")
    scored = iter(await node.serving.score([t for t in texts if t.strip()], tenant=caller.tenant))
    return SentimentResponse(
        results=[None if not text.strip() else next(scored) for text in texts],
        errors=[ItemError(index=i, error="empty_text", message=f"texts[{i}] is empty or only whitespace: not scored")
                for i in blank])
