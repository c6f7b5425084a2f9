"""A document version's term counts, kept for the next text search that ranks it.

A text search scores each candidate with BM25 over the candidate's tokens
(``engine.search``): the text is split, lower-cased and counted for every
candidate of every search, and popular documents are candidates again and
again. A version never changes, so its counts can be kept by (storage key,
version ts): a bounded table, oldest first out, shared by the threads that
search one index. A version without text (the field missing or not a string)
is remembered as such.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

# Versions kept per search index; a few hundred bytes each for short texts.
TERM_COUNTS_MAX = 20_000

TermCount = tuple[Counter[str], int]  # (count of each token, number of tokens)
_NO_TEXT = (Counter(), -1)


class TermCounts:
    """(storage key, version ts) -> the term counts of one index's field in that version."""

    def __init__(
        self,
        field_path: str,
        tokens_of: Callable[[dict | None, str], list[str] | None],
        capacity: int = TERM_COUNTS_MAX,
    ) -> None:
        self._field = field_path
        self._tokens_of = tokens_of
        self._capacity = capacity
        self._counts: dict[tuple[bytes, int], TermCount] = {}
        self._lock = threading.Lock()

    def of(self, key: bytes, version_ts: int, doc: dict) -> TermCount | None:
        """The counts of ``doc`` (the version of ``key`` written at ``version_ts``);
        None when its search field holds no text."""
        found = self._counts.get((key, version_ts))
        if found is None:
            tokens = self._tokens_of(doc, self._field)
            found = _NO_TEXT if tokens is None else (Counter(tokens), len(tokens))
            with self._lock:
                self._counts[(key, version_ts)] = found
                if len(self._counts) > self._capacity:
                    del self._counts[next(iter(self._counts))]
        return None if found is _NO_TEXT else found

    def __len__(self) -> int:
        return len(self._counts)
