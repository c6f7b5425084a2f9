"""Read sets: the index key intervals a transaction or a query scanned.

One mechanism, two uses. The committer checks a transaction's read set against
the index keys written by the commits after its snapshot (OCC), and the
subscription matcher finds which live queries a new commit touches. Both ask
the same question: does this written ``(index_id, key)`` fall in an interval
that was read?

Key space: each index, named by a string ``index_id``, maps documents to
byte-string keys whose byte order is the value order. A read records half-open
intervals ``[lo, hi)`` of keys; ``hi=None`` means unbounded above and ``lo=b""``
is the bottom of the index. A point read of key ``k`` is ``[k, k + b"\\x00")``:
keys are complete encodings, so ``k + b"\\x00"`` is the successor of ``k``.

A ``ReadSet`` keeps, per index, its intervals sorted, disjoint and merged (two
intervals that overlap or touch become one), so ``contains`` is one bisect.
``ReadSetBuilder`` is the mutable side used while a function runs: adding is an
append, and normalisation happens once, in ``build``.

Text-search reads are the second field, ``searches``: per search read, the
index, its exact terms, the last term (matched as a prefix) and the ``Eq``
filter values. A commit reports, beside its written index keys, a
``SearchKey`` for the old and the new version of every document it wrote in a
table with a search index (its tokens and filter values); a search read is
touched by a version whose filter values all equal the read's and which holds
one of its terms, or a token starting with its prefix. ``first_conflict``,
``intersects`` and ``union`` consult both fields, and ``written`` sequences may
mix ``(index_id, key)`` pairs and ``SearchKey`` values.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from engine.errors import InvalidQueryError

#: Appended to a key to get its successor among all complete keys.
KEY_SUCCESSOR_SUFFIX = b"\x00"

_Pair = tuple[bytes, "bytes | None"]


def _check_bounds(lo: object, hi: object) -> None:
    if type(lo) is not bytes:
        raise InvalidQueryError(f"interval lower bound must be bytes, got {type(lo).__name__}")
    if hi is not None:
        if type(hi) is not bytes:
            raise InvalidQueryError(
                f"interval upper bound must be bytes or None, got {type(hi).__name__}"
            )
        if hi < lo:
            raise InvalidQueryError(f"interval is inverted: lo={lo!r} > hi={hi!r}")


def _check_index_id(index_id: object) -> None:
    if type(index_id) is not str or not index_id:
        raise InvalidQueryError(f"index id must be a non-empty string, got {index_id!r}")


@dataclass(frozen=True, slots=True)
class Interval:
    """Keys ``k`` with ``lo <= k < hi`` (``hi=None``: no upper bound)."""

    lo: bytes
    hi: bytes | None

    def __post_init__(self) -> None:
        _check_bounds(self.lo, self.hi)

    @classmethod
    def point(cls, key: bytes) -> Interval:
        """The interval holding exactly ``key``."""
        if type(key) is not bytes:
            raise InvalidQueryError(f"key must be bytes, got {type(key).__name__}")
        return cls(key, key + KEY_SUCCESSOR_SUFFIX)

    @property
    def is_point(self) -> bool:
        hi = self.hi
        return (
            hi is not None
            and len(hi) == len(self.lo) + 1
            and hi[-1] == 0
            and hi.startswith(self.lo)
        )

    @property
    def is_empty(self) -> bool:
        return self.hi is not None and self.hi == self.lo

    def contains(self, key: bytes) -> bool:
        return self.lo <= key and (self.hi is None or key < self.hi)


def _merge(pairs: list[_Pair]) -> tuple[Interval, ...]:
    """Sort, drop empty intervals, and merge the ones that overlap or touch."""
    pairs.sort(key=itemgetter(0))
    merged: list[Interval] = []
    cur_lo: bytes | None = None
    cur_hi: bytes | None = None
    for lo, hi in pairs:
        if hi is not None and hi == lo:
            continue
        if cur_lo is not None and (cur_hi is None or lo <= cur_hi):
            if cur_hi is not None and (hi is None or hi > cur_hi):
                cur_hi = hi
            continue
        if cur_lo is not None:
            merged.append(Interval(cur_lo, cur_hi))
        cur_lo, cur_hi = lo, hi
    if cur_lo is not None:
        merged.append(Interval(cur_lo, cur_hi))
    return tuple(merged)


def _check_normalized(index_id: str, intervals: tuple[Interval, ...]) -> None:
    if not intervals:
        raise InvalidQueryError(f"read set lists index {index_id!r} with no intervals")
    prev: Interval | None = None
    for interval in intervals:
        if type(interval) is not Interval:
            raise InvalidQueryError(f"read set entries must be Interval, got {interval!r}")
        if interval.is_empty:
            raise InvalidQueryError(f"read set holds an empty interval in {index_id!r}")
        if prev is not None and (prev.hi is None or interval.lo <= prev.hi):
            raise InvalidQueryError(
                f"read set intervals of {index_id!r} must be sorted, disjoint and merged; "
                "build read sets with ReadSetBuilder or ReadSet.of"
            )
        prev = interval


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One version of a document as a search index sees it (what a commit wrote)."""

    index_id: str
    tokens: frozenset[str]
    filters: tuple[tuple[str, bytes], ...]  # (field path, encoded value) of every filter field


@dataclass(frozen=True, slots=True)
class SearchRead:
    """A text search that was run: its exact terms, its prefix term, its Eq filters."""

    index_id: str
    terms: tuple[str, ...]  # sorted, distinct
    prefix: str | None
    filters: tuple[tuple[str, bytes], ...]  # sorted (field path, encoded value)

    def __post_init__(self) -> None:
        _check_index_id(self.index_id)
        if list(self.terms) != sorted(set(self.terms)):
            raise InvalidQueryError("search read terms must be sorted and distinct")
        if list(self.filters) != sorted(set(self.filters)):
            raise InvalidQueryError("search read filters must be sorted and distinct")

    def touched_by(self, version: SearchKey) -> bool:
        """Whether a written document version could change this search's result."""
        if version.index_id != self.index_id:
            return False
        if self.filters:
            values = dict(version.filters)
            if any(values.get(path) != value for path, value in self.filters):
                return False
        tokens = version.tokens
        if any(term in tokens for term in self.terms):
            return True
        prefix = self.prefix
        return prefix is not None and any(token.startswith(prefix) for token in tokens)


@dataclass(frozen=True, slots=True)
class ReadSet:
    """Per index, the sorted, disjoint, merged intervals that were read.

    ``indexes`` is sorted by index id; build one with ``ReadSetBuilder`` or
    ``ReadSet.of`` rather than by hand (the constructor checks the shape).
    """

    indexes: tuple[tuple[str, tuple[Interval, ...]], ...] = ()
    searches: tuple[SearchRead, ...] = ()
    _lookup: dict[str, tuple[tuple[bytes, ...], tuple[Interval, ...]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for read in self.searches:
            if type(read) is not SearchRead:
                raise InvalidQueryError(f"read set searches must be SearchRead, got {read!r}")
        if list(self.searches) != _sorted_searches(self.searches):
            raise InvalidQueryError("read set searches must be sorted, each once")
        prev_id: str | None = None
        for index_id, intervals in self.indexes:
            _check_index_id(index_id)
            if prev_id is not None and index_id <= prev_id:
                raise InvalidQueryError("read set indexes must be sorted by id, each once")
            _check_normalized(index_id, intervals)
            prev_id = index_id
        object.__setattr__(self, "_lookup", _lookup_of(self.indexes))

    @classmethod
    def empty(cls) -> ReadSet:
        return _EMPTY

    @classmethod
    def of(cls, reads: Iterable[tuple[str, Interval]]) -> ReadSet:
        """A read set from any ``(index_id, interval)`` pairs, in any order."""
        builder = ReadSetBuilder()
        for index_id, interval in reads:
            if type(interval) is not Interval:
                raise InvalidQueryError(f"expected an Interval, got {interval!r}")
            builder.add(index_id, interval.lo, interval.hi)
        return builder.build()

    def contains(self, index_id: str, key: bytes) -> bool:
        """Whether ``key`` of ``index_id`` lies in an interval that was read."""
        entry = self._lookup.get(index_id)
        if entry is None:
            return False
        los, intervals = entry
        i = bisect_right(los, key) - 1
        if i < 0:
            return False
        hi = intervals[i].hi
        return hi is None or key < hi

    def first_conflict(
        self, written: Iterable[tuple[str, bytes] | SearchKey]
    ) -> tuple[str, bytes] | None:
        """The first written key this read set covers, for error messages.

        A written ``SearchKey`` that touches a search read is reported as
        ``(index_id, b"")``.
        """
        searches = self.searches
        for item in written:
            if type(item) is SearchKey:
                if searches and any(read.touched_by(item) for read in searches):
                    return (item.index_id, b"")
                continue
            index_id, key = item  # type: ignore[misc]
            if self.contains(index_id, key):
                return (index_id, key)
        return None

    def intersects(self, written: Iterable[tuple[str, bytes] | SearchKey]) -> bool:
        """Whether any written key falls in this read set."""
        return self.first_conflict(written) is not None

    def union(self, other: ReadSet) -> ReadSet:
        if not other:
            return self
        if not self:
            return other
        builder = ReadSetBuilder()
        for read_set in (self, other):
            for index_id, interval in read_set:
                builder.add(index_id, interval.lo, interval.hi)
            for read in read_set.searches:
                builder.add_search(read)
        return builder.build()

    def interval_count(self) -> int:
        return sum(len(intervals) for _, intervals in self.indexes)

    def index_ids(self) -> tuple[str, ...]:
        return tuple(index_id for index_id, _ in self.indexes)

    def intervals(self, index_id: str) -> tuple[Interval, ...]:
        entry = self._lookup.get(index_id)
        return () if entry is None else entry[1]

    def __iter__(self) -> Iterator[tuple[str, Interval]]:
        for index_id, intervals in self.indexes:
            for interval in intervals:
                yield index_id, interval

    def __bool__(self) -> bool:
        return bool(self.indexes) or bool(self.searches)


def _lookup_of(
    indexes: tuple[tuple[str, tuple[Interval, ...]], ...],
) -> dict[str, tuple[tuple[bytes, ...], tuple[Interval, ...]]]:
    return {index_id: (tuple(i.lo for i in ivs), ivs) for index_id, ivs in indexes}


def _sorted_searches(reads: Iterable[SearchRead]) -> list[SearchRead]:
    unique = {(r.index_id, r.terms, r.prefix or "", r.prefix is None, r.filters): r for r in reads}
    return [unique[k] for k in sorted(unique)]


def _trusted(
    indexes: tuple[tuple[str, tuple[Interval, ...]], ...],
    searches: tuple[SearchRead, ...] = (),
) -> ReadSet:
    """A ReadSet from intervals this module just normalised: skips the O(n) shape check."""
    read_set = object.__new__(ReadSet)
    object.__setattr__(read_set, "indexes", indexes)
    object.__setattr__(read_set, "searches", searches)
    object.__setattr__(read_set, "_lookup", _lookup_of(indexes))
    return read_set


_EMPTY = ReadSet()


class ReadSetBuilder:
    """Collects reads while a transaction runs; ``build`` normalises once.

    Bounds are checked on ``add`` (cheap, and the error points at the caller);
    sorting and merging wait for ``build``. Empty intervals (``lo == hi``) are
    accepted and dropped.
    """

    __slots__ = ("_pairs", "_count", "_searches")

    def __init__(self) -> None:
        self._pairs: dict[str, list[_Pair]] = {}
        self._count = 0
        self._searches: list[SearchRead] = []

    def add_search(self, read: SearchRead) -> None:
        """Record that a text search ran (its terms and filters, not its results)."""
        if type(read) is not SearchRead:
            raise InvalidQueryError(f"expected a SearchRead, got {read!r}")
        self._searches.append(read)

    def add(self, index_id: str, lo: bytes, hi: bytes | None) -> None:
        """Record that keys ``[lo, hi)`` of ``index_id`` were scanned."""
        pairs = self._pairs.get(index_id)
        if pairs is None:
            _check_index_id(index_id)
            pairs = self._pairs[index_id] = []
        _check_bounds(lo, hi)
        pairs.append((lo, hi))
        self._count += 1

    def add_point(self, index_id: str, key: bytes) -> None:
        """Record that exactly ``key`` of ``index_id`` was read (present or not)."""
        if type(key) is not bytes:
            raise InvalidQueryError(f"key must be bytes, got {type(key).__name__}")
        pairs = self._pairs.get(index_id)
        if pairs is None:
            _check_index_id(index_id)
            pairs = self._pairs[index_id] = []
        pairs.append((key, key + KEY_SUCCESSOR_SUFFIX))
        self._count += 1

    def __len__(self) -> int:
        """Intervals added so far, before merging (what a per-transaction limit counts)."""
        return self._count

    def build(self) -> ReadSet:
        if not self._pairs and not self._searches:
            return _EMPTY
        indexes = []
        for index_id in sorted(self._pairs):
            merged = _merge(list(self._pairs[index_id]))
            if merged:
                indexes.append((index_id, merged))
        searches = tuple(_sorted_searches(self._searches))
        if not indexes and not searches:
            return _EMPTY
        return _trusted(tuple(indexes), searches)
