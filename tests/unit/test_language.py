"""Language scope (py3langid, offline) and the words emoji and emoticons stand for."""

import csv
from pathlib import Path

import pytest

from sentiedge_core.encoding import normalize
from sentiedge_core.language import LanguageGate, parse_languages

EVERYDAY = Path(__file__).resolve().parents[1] / "data" / "everyday_short.csv"


@pytest.mark.parametrize("text, language", [
    ("Die App stürzt ständig ab, sehr ärgerlich", "de"),
    ("アプリがすぐに落ちます。最悪です。", "ja"),
    ("C'est vraiment nul, je suis déçu", "fr"),
    ("Muy buen producto, lo recomiendo", "es"),
])
def test_texts_confidently_in_another_language_are_not_judged(text, language):
    found = LanguageGate(("en",)).unsupported(text)
    assert found is not None and found[0] == language and found[1] >= 0.8


def test_everyday_english_is_never_taken_for_another_language():
    gate = LanguageGate(("en",))
    with EVERYDAY.open() as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    assert len(texts) >= 100
    assert [t for t in texts if gate.unsupported(t)] == []
    assert gate.unsupported("ok") is None and gate.unsupported("thx!!") is None  # too short to tell


def test_the_movie_corpus_is_english_except_what_is_not():
    from models.data import load_corpus

    gate = LanguageGate(("en",))
    texts = load_corpus().validation.texts  # 2,672 reviews; one Rotten Tomatoes snippet is Portuguese
    flagged = [t for t in texts if gate.unsupported(t)]
    assert len(flagged) <= len(texts) // 500, flagged[:5]


def test_accepted_languages_and_any():
    assert parse_languages(" EN, de ,,") == ("de", "en")
    assert LanguageGate(("en", "de")).unsupported("Die App stürzt ständig ab, sehr ärgerlich") is None
    assert LanguageGate(("*",)).unsupported("アプリがすぐに落ちます。最悪です。") is None


@pytest.mark.parametrize("text, expected", [
    ("love it 😍👍", "love it smiling face with heart-eyes thumbs up"),
    ("five stars ⭐⭐⭐⭐⭐", "five stars star star star star star"),
    ("so sad :( never again", "so sad sad never again"),
    ("i <3 it :)", "i love it smiling"),
    ("ok :D!", "ok laughing !"),
    ("see https://example.org/a and C:/temp", "see https://example.org/a and C:/temp"),  # not emoticons
    ("café très bon<br/>merci", "café très bon merci"),
])
def test_emoji_and_emoticons_become_words_before_tokenizing(text, expected):
    assert normalize(text) == expected


FOREIGN = ["Die App stürzt ständig ab, sehr ärgerlich", "C'est vraiment nul, je suis déçu", "Muy buen producto",
           "Questo film è stato una delusione totale", "Ik vond het een prachtige film", "Não gostei nada do final",
           "Это был лучший фильм года", "アプリがすぐに落ちます。最悪です。", "这部电影非常好看",
           "Bardzo dobry produkt", "Çok güzel bir ürün, tavsiye ederim", "Hyvä tuote, suosittelen",
           "Ótimo", "Schön", "très bien 👍"]


def test_the_counted_letters_decide_as_the_full_count_did():
    """The gate stops counting letters once it has enough; every text of a real corpus (the movie
    snippets, everyday short texts, texts in other languages, texts at the bound) is
    judged exactly as the full count judged it."""
    from models.data import load_corpus

    with EVERYDAY.open() as fh:
        everyday = [row["text"] for row in csv.DictReader(fh)]
    snippets = load_corpus().test.only("rotten_tomatoes").texts
    # at the bound: 7 letters ("zły film", "こんにちは世界") and 8 ("Отличный") that the identifier is sure of
    bound = ["zły film", "こんにちは世界", "Отличный", "这部电影好", "abcdefgh", "1234567 a", "", "   ",
             "😍😍 ok ok ok"]
    texts = snippets + everyday + FOREIGN + bound
    assert len(snippets) >= 1000
    for accepted, confidence, letters in ((("en",), 0.8, 8), (("en", "de"), 0.5, 7), (("fr",), 0.8, 5)):
        gate = LanguageGate(accepted, min_confidence=confidence, min_letters=letters)
        uncounted = LanguageGate(accepted, min_confidence=confidence, min_letters=0)  # no letter bound at all
        for text in texts:
            before = uncounted.unsupported(text) if sum(ch.isalpha() for ch in text) >= letters else None
            assert gate.unsupported(text) == before, (text, accepted, letters)
