"""Runs a parsed query inside a transaction: index scan, own writes, filters, limits.

One executor serves the embedded Python API (``tx.query(...)``) and the
function runtime's ``queryStream``/``queryPage`` syscalls, because both compile
to the same ``QuerySpec``. The scan merges the snapshot's index entries with the
transaction's own pending writes, so a mutation reads its own writes. The read
set records exactly the key interval scanned, up to the last key consumed: a
later write beyond that point does not invalidate the query.

A ``Search`` source streams the relevance-ordered results of ``engine.search``
(at most ``SEARCH_RESULTS_MAX``); its read set is the search's terms and
filters, and its pagination cursors are positions in that order.

Pagination itself (cursors, end bounds, split hints) is ``engine.pagination``;
a paginated scan carries a ``ScanBudget`` that counts what it read and stops it
at ``maximumRowsRead``/``maximumBytesRead``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.errors import InvalidQueryError
from engine.filter_expression import matches
from engine.index_range import compile_range, index_key
from engine.query_spec import (
    FilterOp,
    FullTableScan,
    IndexRangeSource,
    LimitOp,
    QuerySpec,
    SearchSource,
)
from engine.read_context import ReadContext
from engine.schema import IndexDef
from engine.search import SEARCH_RESULTS_MAX, compile_search, text_search
from engine.values import value_size


def key_successor(key: bytes) -> bytes:
    """The next possible key after a complete index key."""
    return key + b"\x00"


@dataclass(frozen=True)
class Position:
    """Where a paginated query stopped: after ``key``, or at the end of its range."""

    key: bytes | None  # None = the end of the range


@dataclass
class ScanBudget:
    """What a paginated scan read (index rows, their bytes, their keys), and its limits.

    Rows and bytes count every document the index range yields, filtered out or
    not, as the reference counts them. The scan stops before the next row once
    ``rows_max`` rows or ``bytes_max`` bytes were read (so it always reads at
    least one row and makes progress); ``stopped`` then says rows were left.
    The keys are kept so a page can name a split point in its middle.
    """

    rows_max: int | None = None
    bytes_max: int | None = None
    rows_read: int = 0
    bytes_read: int = 0
    keys: list[bytes] = field(default_factory=list)
    stopped: bool = False

    def spent(self) -> bool:
        return (self.rows_max is not None and self.rows_read >= self.rows_max) or (
            self.bytes_max is not None and self.bytes_read >= self.bytes_max
        )

    def record(self, key: bytes, doc: dict) -> None:
        self.rows_read += 1
        self.bytes_read += value_size(doc)
        self.keys.append(key)


def resolve_index(
    tx: ReadContext, spec: QuerySpec
) -> tuple[str, IndexDef, bytes, bytes | None, bool]:
    """(index id, index, lo, hi, descending) for the query's source."""
    source = spec.source
    if isinstance(source, FullTableScan):
        table, index_name, ranges = source.table, "by_creation_time", ()
    elif isinstance(source, IndexRangeSource):
        table, index_name, ranges = source.table, source.index, source.ranges
    else:
        raise InvalidQueryError("Search queries are not supported yet.", code="SearchNotSupported")
    index = _find_index(tx, table, index_name)
    interval = compile_range(ranges, index.fields, f"{table}.{index_name}")
    return f"{table}.{index_name}", index, interval.lo, interval.hi, source.order == "desc"


def _find_index(tx: ReadContext, table: str, index_name: str) -> IndexDef:
    """The enabled index, or Convex's refusal (crates/indexing/src/index_registry.rs)."""
    schema = tx.snapshot_schema()
    for index in schema.index_defs(table):
        if index.name == index_name:
            return index
    name = f"{table}.{index_name}"
    if schema.staged_index(table, index_name) is not None:
        raise InvalidQueryError(
            f"Index {name} is currently staged and not available to query until it is enabled.",
            code="IndexStagedError",
        )
    raise InvalidQueryError(f"Index {name} not found.", code="IndexNotFound")


class QueryStream:
    """Yields a query's documents one at a time (``next`` returns None at the end)."""

    def __new__(cls, tx: ReadContext, spec: QuerySpec, **_: object) -> QueryStream:
        if cls is QueryStream and isinstance(spec.source, SearchSource):
            return object.__new__(SearchStream)
        return object.__new__(cls)

    def __init__(
        self,
        tx: ReadContext,
        spec: QuerySpec,
        *,
        after: Position | None = None,
        end: Position | None = None,
        budget: ScanBudget | None = None,
        wanted: int | None = None,
    ) -> None:
        """``wanted``: how many documents the caller takes at most, when it knows (a page);
        an index range reads lazily anyway, a search ranks only that many at first."""
        tx.count_index_range()
        self._tx = tx
        self.spec = spec
        self.budget = budget
        self.index_id, self._index, lo, hi, self.descending = resolve_index(tx, spec)
        self._lo, self._hi = lo, hi
        if after is not None and after.key is not None:
            if self.descending:
                self._hi = after.key if hi is None else min(hi, after.key)
            else:
                self._lo = max(lo, key_successor(after.key))
        if end is not None and end.key is not None:
            if self.descending:
                self._lo = max(self._lo, end.key)
            else:
                succ = key_successor(end.key)
                self._hi = succ if self._hi is None else min(self._hi, succ)
        self.last_key: bytes | None = None  # the last key scanned (filtered or not)
        self.exhausted = self._hi is not None and self._lo >= self._hi
        self._documents = self._pipeline()
        tx.register_stream(self)

    def next(self) -> dict | None:
        if self.exhausted:
            return None
        doc = next(self._documents, None)
        return doc

    def __iter__(self) -> Iterator[dict]:
        if not self.exhausted:
            yield from self._documents  # what ``next`` returns, one call fewer a row

    def record_read(self) -> None:
        """Add the scanned interval to the transaction's read set."""
        lo, hi = self._lo, self._hi
        if not self.exhausted:
            if self.last_key is None:
                return
            if self.descending:
                lo = self.last_key
            else:
                hi = key_successor(self.last_key)
        if hi is not None and lo >= hi:
            return
        self._tx.reads.add(self.index_id, lo, hi)

    def _pipeline(self) -> Iterator[dict]:
        docs: Iterator[dict] = self._scan()
        for op in self.spec.operators:
            if isinstance(op, FilterOp):
                docs = _filtered(docs, op)
            elif isinstance(op, LimitOp):
                docs = itertools.islice(docs, op.n)
        return docs

    def _scan(self) -> Iterator[dict]:
        budget, tx = self.budget, self._tx
        for key, skey in self._merged():
            if budget is not None and budget.spent():
                budget.stopped = True  # a row is left: the scan is not exhausted
                return
            doc = tx.read_document(skey)
            if doc is None:
                continue
            self.last_key = key
            if budget is not None:
                budget.record(key, doc)
            yield doc
        self.exhausted = True

    def _merged(self) -> Iterator[tuple[bytes, bytes]]:
        """(index key, storage key) of the range: the snapshot's entries and our own writes."""
        tx, lo, hi = self._tx, self._lo, self._hi
        own = list(tx.pending_writes_of(self._index.table))
        skip = {w.storage_key for w in own}
        mine = []
        for w in own:
            if w.value is None:
                continue
            key = index_key(self._index.fields, w.value)
            if key >= lo and (hi is None or key < hi):
                mine.append((key, w.storage_key))
        mine.sort(reverse=self.descending)
        stored = tx.snapshot.scan(self.index_id, lo, hi, self.descending)
        if skip:
            stored = ((key, skey) for key, skey in stored if skey not in skip)
        return heapq.merge(stored, mine, reverse=self.descending) if mine else stored


_SEARCH_FIRST_BATCH = 64
_RANK = 4  # bytes of a position (a rank in relevance order) in a search cursor


class SearchStream(QueryStream):
    """A ``Search`` source: documents in relevance order, fetched in growing batches."""

    def __init__(
        self,
        tx: ReadContext,
        spec: QuerySpec,
        *,
        after: Position | None = None,
        end: Position | None = None,
        budget: ScanBudget | None = None,
        wanted: int | None = None,
    ) -> None:
        tx.count_index_range()
        source = spec.source
        assert isinstance(source, SearchSource)
        self._tx = tx
        self.spec = spec
        self.budget = None  # search results are bounded by SEARCH_RESULTS_MAX instead
        self.index_id = f"{source.table}.{source.index}"
        self.descending = False
        self._compiled = compile_search(tx.snapshot_schema(), source)
        read = self._compiled.read()
        if read is not None:
            tx.reads.add_search(read)
        self._wanted = wanted
        self._start = 0 if after is None or after.key is None else _rank_of(after.key) + 1
        self._stop = SEARCH_RESULTS_MAX
        if end is not None and end.key is not None:
            self._stop = min(self._stop, _rank_of(end.key) + 1)
        self.last_key = None
        self.exhausted = self._start >= self._stop
        self._documents = self._pipeline()
        tx.register_stream(self)

    def record_read(self) -> None:
        """The search's terms and filters were recorded when it started."""

    def _first_batch(self) -> int:
        """How many results to rank at first: what a leading ``limit`` takes (``take(n)``,
        ``first()``) or the caller wants (a page), else ``_SEARCH_FIRST_BATCH``; more are
        ranked only when pulled."""
        first = _SEARCH_FIRST_BATCH
        operators = self.spec.operators
        if operators and isinstance(operators[0], LimitOp):
            first = min(first, operators[0].n)
        if self._wanted is not None:
            first = min(first, self._wanted)
        return max(1, first)

    def _scan(self) -> Iterator[dict]:
        rank, batch = self._start, min(self._stop, self._start + self._first_batch())
        while True:
            results = text_search(self._tx, self._compiled, batch)
            for _, doc in results[rank:]:
                self._tx.count_read(doc)
                self.last_key = rank.to_bytes(_RANK, "big")
                rank += 1
                yield doc
            if len(results) < batch or batch >= self._stop:
                break
            batch = self._stop
        self.exhausted = True


def _rank_of(key: bytes) -> int:
    if len(key) != _RANK:
        raise InvalidQueryError(
            "Invalid pagination cursor for a search query.", code="InvalidCursor"
        )
    return int.from_bytes(key, "big")


def _filtered(docs: Iterator[dict], op: FilterOp) -> Iterator[dict]:
    return (doc for doc in docs if matches(op.expr, doc))
