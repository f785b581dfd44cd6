"""A text cut into clauses: sentences (``.``, ``!``, ``?``, ``;``, line breaks), and each sentence
again before a contrast word ("The serum is lovely | but the box was crushed"), where one topic
often ends and another begins. Bounded: at most ``max_clauses`` clauses (the first ones)."""

from __future__ import annotations

import re

# A sentence ends at ., !, ? or ; followed by a space or the end, and at a line break ("$ 39.99" stays whole).
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
# Contrast words that start a new clause: "A, but B", "A; however B", "A although B", "A, yet B".
_CONTRAST = re.compile(r",?\s+(?=(?:but|however|although|though|whereas|except that)\b)|,\s+(?=yet\s)",
                       re.IGNORECASE)
_WORD = re.compile(r"\w")


def split(text: str, max_clauses: int) -> list[str]:
    """The text's clauses in order (blank or punctuation-only pieces dropped), at most ``max_clauses``."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text):
        for clause in _CONTRAST.split(sentence):
            clause = clause.strip()
            if _WORD.search(clause):
                out.append(clause)
                if len(out) == max_clauses:
                    return out
    return out
