"""Term counts kept per document version for ranking: the same counts, bounded."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from projections.term_counts import TermCounts
from projections.text_search import TOKEN_BYTES_MAX, document_tokens, split_words, tokenize


def test_counts_are_kept_per_version_and_a_version_without_text_is_none():
    calls = []

    def tokens_of(doc, field):
        calls.append(doc)
        return document_tokens(doc, field)

    counts = TermCounts("body", tokens_of, capacity=2)
    doc = {"body": "the cat saw the dog"}
    assert counts.of(b"k", 1, doc) == (Counter({"the": 2, "cat": 1, "saw": 1, "dog": 1}), 5)
    assert counts.of(b"k", 1, doc) == counts.of(b"k", 1, doc) and len(calls) == 1
    assert counts.of(b"k", 2, {"body": 3.0}) is None
    assert counts.of(b"k", 2, {"body": 3.0}) is None and len(calls) == 2
    counts.of(b"j", 1, {"body": ""})  # the oldest version leaves
    assert len(counts) == 2
    counts.of(b"k", 1, doc)
    assert len(calls) == 4


@given(st.text(max_size=60))
def test_tokens_are_the_words_whose_utf8_fits_the_limit(text):
    expected = [w for w in split_words(text) if len(w.encode()) <= TOKEN_BYTES_MAX]
    assert tokenize(text) == expected
    long_word = "é" * TOKEN_BYTES_MAX  # 2 bytes a character: over the limit
    assert tokenize(f"{text} {long_word}") == expected
