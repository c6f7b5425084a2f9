"""The subscription matcher: which live queries does a commit touch?

Every live query keeps the read set of its last run. A commit writes index
keys (for each written document and each index of its table, the key of the
old and of the new version); ``match`` returns the subscriptions whose read
sets hold any of them. It must cost about O(keys x log(subscriptions) +
matches), never a scan of all subscriptions.

Design, per index:

- Point reads (``[k, k + b"\\x00")``, by far the most common: every ``get``)
  live in a dict ``key -> subscribers``; a written key is one dict lookup.
- Range reads are stored once per distinct ``(lo, hi)`` with the set of its
  subscribers, so a thousand clients running the same query cost one interval.
  Distinct ranges live in a few static levels plus a small pending buffer
  (the logarithmic method): a new range goes to the buffer; a full buffer is
  built into a level, merging smaller levels into it while the last level is
  at most twice its size. Levels thus at least double in size, so there are
  O(log n) of them and each range is rebuilt O(log n) times, amortised.
- A level sorts its ranges by ``lo``. The ranges holding a key are those with
  ``lo <= key`` (a prefix, one bisect) and ``hi > key``. The upper bounds are
  ranked (``None`` ranks highest) and a sparse table answers "maximum rank in
  positions [a, b)" in O(1); reporting every range of the prefix whose rank
  clears the key's threshold takes one query per match plus one, so a level
  costs O(log n + matches). The table takes 8 x n x log2(n) bytes: about
  14 MB for 100k distinct ranges in one index.
- Removing a subscription only empties subscriber sets; an empty range stays
  in its level (dead: a query may visit it, but its set is empty) until its level
  is merged, or until the dead outnumber the live, when all levels are rebuilt.

Search reads (``ReadSet.searches``) are matched per search index by an
inverted map: exact term -> subscriptions, and prefix term -> subscriptions.
A written version's token ``t`` finds the exact readers with one lookup and the
prefix readers with one lookup per leading substring of ``t`` (tokens are at
most 32 bytes, so at most 32 lookups); the candidates are then checked against
their filters. No subscription is visited unless it shares a term with the
document.

Plain data structure: no locks, the caller serialises access.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Hashable, Iterable
from operator import itemgetter

import numpy as np

from engine.read_set import ReadSet, SearchKey, SearchRead

#: New distinct ranges buffered (and scanned linearly) before a level is built.
PENDING_RANGES_MAX = 16

_Entry = tuple[bytes, "bytes | None", set]


class _Level:
    """A static set of ranges, sorted by ``lo``, answering stabbing queries."""

    __slots__ = ("entries", "_los", "_his_sorted", "_shift", "_mask", "_table")

    def __init__(self, entries: list[_Entry]) -> None:
        entries.sort(key=itemgetter(0))
        self.entries = entries
        self._los = [e[0] for e in entries]
        his_sorted = sorted({e[1] for e in entries if e[1] is not None})
        top = len(his_sorted)
        rank = {hi: i for i, hi in enumerate(his_sorted)}
        self._his_sorted = his_sorted
        # One int carries both the rank of hi and the position, so a max gives both.
        n = len(entries)
        self._shift = max(n.bit_length(), 1)
        self._mask = (1 << self._shift) - 1
        packed = np.fromiter(
            ((top if e[1] is None else rank[e[1]]) for e in entries), dtype=np.int64, count=n
        )
        packed = (packed << self._shift) | np.arange(n, dtype=np.int64)
        # Row j holds the maximum of each window of 2**j positions; 8 bytes an entry.
        table = [array("q", packed.tobytes())]
        width = 1
        while 2 * width <= n:
            packed = np.maximum(packed[:-width], packed[width:])
            table.append(array("q", packed.tobytes()))
            width *= 2
        self._table = table

    def __len__(self) -> int:
        return len(self.entries)

    def stab(self, key: bytes, out: set) -> None:
        """Add to ``out`` the subscribers of every range here holding ``key``."""
        end = bisect_right(self._los, key)
        if end == 0:
            return
        threshold = bisect_right(self._his_sorted, key) << self._shift
        table, entries, mask = self._table, self.entries, self._mask
        todo = [(0, end)]
        while todo:
            a, b = todo.pop()
            j = (b - a).bit_length() - 1
            row = table[j]
            best = row[a]
            other = row[b - (1 << j)]
            if other > best:
                best = other
            if best < threshold:
                continue
            i = best & mask
            out |= entries[i][2]
            if a < i:
                todo.append((a, i))
            if i + 1 < b:
                todo.append((i + 1, b))

    def live_entries(self) -> list[_Entry]:
        return [e for e in self.entries if e[2]]


class _IndexSubscriptions:
    """The reads of every live subscription in one index."""

    __slots__ = ("points", "ranges", "pending", "levels", "dead", "rebuilds", "_pending_max")

    def __init__(self, pending_max: int) -> None:
        self.points: dict[bytes, set] = {}
        self.ranges: dict[tuple[bytes, bytes | None], set] = {}
        self.pending: list[_Entry] = []
        self.levels: list[_Level] = []
        self.dead = 0  # emptied ranges still stored in pending or levels
        self.rebuilds = 0
        self._pending_max = pending_max

    def add(self, lo: bytes, hi: bytes | None, sub_id: Hashable, point: bool) -> None:
        if point:
            subs = self.points.get(lo)
            if subs is None:
                subs = self.points[lo] = set()
            subs.add(sub_id)
            return
        subs = self.ranges.get((lo, hi))
        if subs is not None:
            subs.add(sub_id)
            return
        subs = self.ranges[(lo, hi)] = {sub_id}
        self.pending.append((lo, hi, subs))
        if len(self.pending) > self._pending_max:
            self._flush()

    def remove(self, lo: bytes, hi: bytes | None, sub_id: Hashable, point: bool) -> None:
        if point:
            subs = self.points[lo]
            subs.discard(sub_id)
            if not subs:
                del self.points[lo]
            return
        subs = self.ranges[(lo, hi)]
        subs.discard(sub_id)
        if not subs:
            # The emptied set stays referenced from pending or a level; a later
            # add of the same range gets a fresh set, so this one stays empty.
            del self.ranges[(lo, hi)]
            self.dead += 1
            if self.dead > max(self._pending_max, len(self.ranges)):
                self._compact()

    def is_empty(self) -> bool:
        return not self.points and not self.ranges

    def stored(self) -> int:
        """Ranges held in pending and levels, live or dead."""
        return len(self.pending) + sum(len(level) for level in self.levels)

    def stab(self, key: bytes, out: set) -> None:
        subs = self.points.get(key)
        if subs:
            out |= subs
        for lo, hi, subs in self.pending:
            if lo <= key and (hi is None or key < hi):
                out |= subs
        for level in self.levels:
            level.stab(key, out)

    def _flush(self) -> None:
        """Build the pending ranges into a level, merging the small levels into it."""
        entries = [e for e in self.pending if e[2]]
        stored = len(self.pending)
        self.pending = []
        while self.levels and len(self.levels[-1]) <= 2 * max(len(entries), 1):
            level = self.levels.pop()
            stored += len(level)
            entries.extend(level.live_entries())
        self.dead -= stored - len(entries)
        if entries:
            self.levels.append(_Level(entries))
            self.rebuilds += 1

    def _compact(self) -> None:
        """Drop every dead range: rebuild all levels into one."""
        entries = [e for e in self.pending if e[2]]
        for level in self.levels:
            entries.extend(level.live_entries())
        self.pending = []
        self.levels = [_Level(entries)] if entries else []
        self.dead = 0
        self.rebuilds += 1


class _SearchSubscriptions:
    """The search reads of every live subscription in one search index."""

    __slots__ = ("exact", "prefixes", "reads")

    def __init__(self) -> None:
        self.exact: dict[str, set] = {}
        self.prefixes: dict[str, set] = {}
        self.reads: dict[Hashable, list[SearchRead]] = {}

    def add(self, sub_id: Hashable, read: SearchRead) -> None:
        self.reads.setdefault(sub_id, []).append(read)
        for term in read.terms:
            self.exact.setdefault(term, set()).add(sub_id)
        if read.prefix is not None:
            self.prefixes.setdefault(read.prefix, set()).add(sub_id)

    def remove(self, sub_id: Hashable) -> None:
        for read in self.reads.pop(sub_id, ()):
            for term in read.terms:
                _discard(self.exact, term, sub_id)
            if read.prefix is not None:
                _discard(self.prefixes, read.prefix, sub_id)

    def is_empty(self) -> bool:
        return not self.reads

    def stab(self, version: SearchKey, out: set) -> None:
        candidates: set = set()
        exact, prefixes = self.exact, self.prefixes
        for token in version.tokens:
            subs = exact.get(token)
            if subs:
                candidates |= subs
            if prefixes:
                for end in range(1, len(token) + 1):
                    subs = prefixes.get(token[:end])
                    if subs:
                        candidates |= subs
        for sub_id in candidates - out:
            if any(read.touched_by(version) for read in self.reads[sub_id]):
                out.add(sub_id)


def _discard(table: dict[str, set], key: str, sub_id: Hashable) -> None:
    subs = table.get(key)
    if subs is not None:
        subs.discard(sub_id)
        if not subs:
            del table[key]


class SubscriptionMatcher:
    """Live read sets, indexed so a commit finds the subscriptions it touches.

    ``sub_id`` is any hashable. ``pending_max`` tunes how many new distinct
    ranges per index wait in a linearly scanned buffer before a level is built.
    """

    def __init__(self, *, pending_max: int = PENDING_RANGES_MAX) -> None:
        if pending_max < 1:
            raise ValueError(f"pending_max must be at least 1, got {pending_max}")
        self._pending_max = pending_max
        self._read_sets: dict[Hashable, ReadSet] = {}
        self._indexes: dict[str, _IndexSubscriptions] = {}
        self._searches: dict[str, _SearchSubscriptions] = {}
        self._intervals = 0
        self._rebuilds_retired = 0  # rebuilds of indexes dropped since

    def add(self, sub_id: Hashable, read_set: ReadSet) -> None:
        """Start matching ``read_set`` for ``sub_id``; ``sub_id`` must be new."""
        if not isinstance(read_set, ReadSet):
            raise TypeError(f"expected a ReadSet, got {type(read_set).__name__}")
        if sub_id in self._read_sets:
            raise ValueError(f"subscription {sub_id!r} already exists; use replace")
        self._read_sets[sub_id] = read_set
        for index_id, intervals in read_set.indexes:
            index = self._indexes.get(index_id)
            if index is None:
                index = self._indexes[index_id] = _IndexSubscriptions(self._pending_max)
            for interval in intervals:
                index.add(interval.lo, interval.hi, sub_id, interval.is_point)
            self._intervals += len(intervals)
        for read in read_set.searches:
            searches = self._searches.get(read.index_id)
            if searches is None:
                searches = self._searches[read.index_id] = _SearchSubscriptions()
            searches.add(sub_id, read)

    def remove(self, sub_id: Hashable) -> None:
        """Stop matching ``sub_id``; raises ``KeyError`` if it is unknown."""
        read_set = self._read_sets.pop(sub_id)
        for index_id, intervals in read_set.indexes:
            index = self._indexes[index_id]
            for interval in intervals:
                index.remove(interval.lo, interval.hi, sub_id, interval.is_point)
            self._intervals -= len(intervals)
            if index.is_empty():
                self._rebuilds_retired += index.rebuilds
                del self._indexes[index_id]
        for index_id in {read.index_id for read in read_set.searches}:
            searches = self._searches[index_id]
            searches.remove(sub_id)
            if searches.is_empty():
                del self._searches[index_id]

    def replace(self, sub_id: Hashable, read_set: ReadSet) -> None:
        """Swap in the read set of a re-run (adds ``sub_id`` if it is not live)."""
        if not isinstance(read_set, ReadSet):
            raise TypeError(f"expected a ReadSet, got {type(read_set).__name__}")
        old = self._read_sets.get(sub_id)
        if old is not None:
            if old == read_set:
                return
            self.remove(sub_id)
        self.add(sub_id, read_set)

    def read_set(self, sub_id: Hashable) -> ReadSet:
        """The read set ``sub_id`` is matched with; raises ``KeyError`` if unknown."""
        return self._read_sets[sub_id]

    def match(self, written: Iterable[tuple[str, bytes] | SearchKey]) -> set:
        """The ids of the subscriptions whose read sets hold any written key.

        ``written`` holds ``(index_id, key)`` pairs and, for search indexes,
        ``SearchKey`` versions (see ``engine.read_set``).
        """
        out: set = set()
        indexes, searches = self._indexes, self._searches
        for item in set(written):
            if type(item) is SearchKey:
                found = searches.get(item.index_id)
                if found is not None:
                    found.stab(item, out)
                continue
            index_id, key = item  # type: ignore[misc]
            index = indexes.get(index_id)
            if index is not None:
                index.stab(key, out)
        return out

    def __len__(self) -> int:
        return len(self._read_sets)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._read_sets

    def statistics(self) -> dict[str, int]:
        """Sizes for benchmarks and the dashboard."""
        indexes = self._indexes.values()
        return {
            "subscriptions": len(self._read_sets),
            "intervals": self._intervals,
            "indexes": len(self._indexes),
            "point_keys": sum(len(i.points) for i in indexes),
            "distinct_ranges": sum(len(i.ranges) for i in indexes),
            "dead_ranges": sum(i.dead for i in indexes),
            "stored_ranges": sum(i.stored() for i in indexes),
            "pending_ranges": sum(len(i.pending) for i in indexes),
            "levels": sum(len(i.levels) for i in indexes),
            "rebuilds": self._rebuilds_retired + sum(i.rebuilds for i in indexes),
            "search_indexes": len(self._searches),
            "search_terms": sum(len(s.exact) + len(s.prefixes) for s in self._searches.values()),
        }
