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
"""

from __future__ import annotations

import base64
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

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
    fingerprint,
)
from engine.read_context import ReadContext
from engine.schema import IndexDef
from engine.search import SEARCH_RESULTS_MAX, compile_search, text_search

_CURSOR_VERSION = 1
_AT_KEY = 0
_AT_END = 1


def key_successor(key: bytes) -> bytes:
    """The next possible key after a complete index key."""
    return key + b"\x00"


@dataclass(frozen=True)
class Position:
    """Where a paginated query stopped: after ``key``, or at the end of its range."""

    key: bytes | None  # None = the end of the range


def encode_cursor(spec_fingerprint: bytes, position: Position) -> str:
    head = bytes([_CURSOR_VERSION]) + spec_fingerprint[:8]
    body = bytes([_AT_END]) if position.key is None else bytes([_AT_KEY]) + position.key
    return base64.urlsafe_b64encode(head + body).decode()


def decode_cursor(cursor: str, spec_fingerprint: bytes) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidQueryError("Invalid pagination cursor.", code="InvalidCursor") from exc
    if len(raw) < 10 or raw[0] != _CURSOR_VERSION or raw[9] not in (_AT_KEY, _AT_END):
        raise InvalidQueryError("Invalid pagination cursor.", code="InvalidCursor")
    if raw[1:9] != spec_fingerprint[:8]:
        raise InvalidQueryError(
            "This cursor belongs to a different query; pass a cursor returned for this query.",
            code="InvalidCursor",
        )
    return Position(None if raw[9] == _AT_END else raw[10:])


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
    for index in tx.snapshot_schema().index_defs(table):
        if index.name == index_name:
            return index
    raise InvalidQueryError(f'Index "{table}.{index_name}" not found.', code="IndexNotFound")


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
    ) -> None:
        tx.count_index_range()
        self._tx = tx
        self.spec = spec
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
        while (doc := self.next()) is not None:
            yield doc

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
        for key, doc in self._merged():
            self.last_key = key
            yield doc
        self.exhausted = True

    def _merged(self) -> Iterator[tuple[bytes, dict]]:
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
        stored = (
            (key, skey)
            for key, skey in tx.snapshot.scan(self.index_id, lo, hi, self.descending)
            if skey not in skip
        )
        merged = heapq.merge(stored, mine, reverse=self.descending) if mine else stored
        for key, skey in merged:
            doc = tx.read_document(skey)
            if doc is not None:
                yield key, doc


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
    ) -> None:
        tx.count_index_range()
        source = spec.source
        assert isinstance(source, SearchSource)
        self._tx = tx
        self.spec = spec
        self.index_id = f"{source.table}.{source.index}"
        self.descending = False
        self._compiled = compile_search(tx.snapshot_schema(), source)
        read = self._compiled.read()
        if read is not None:
            tx.reads.add_search(read)
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

    def _scan(self) -> Iterator[dict]:
        rank, batch = self._start, min(self._stop, self._start + _SEARCH_FIRST_BATCH)
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


@dataclass(frozen=True)
class PageResult:
    page: list[dict]
    continue_cursor: str
    is_done: bool
    split_cursor: str | None = None
    page_status: str | None = None


def paginate(
    tx: ReadContext,
    spec: QuerySpec,
    cursor: str | None,
    page_size: int,
    *,
    end_cursor: str | None = None,
    maximum_rows_read: int | None = None,
) -> PageResult:
    """One page of a query, with Convex's cursor semantics (start exclusive, end inclusive)."""
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size <= 0:
        raise InvalidQueryError(
            "Pagination needs a positive page size (numItems).", code="NoDocumentsForPagination"
        )
    if page_size > tx.limits.page_size_max:
        raise InvalidQueryError(
            f"Page size {page_size} is larger than {tx.limits.page_size_max}.",
            code="PageSizeTooLarge",
        )
    if maximum_rows_read is not None and maximum_rows_read <= 0:
        raise InvalidQueryError("maximumRowsRead must be positive.", code="InvalidPaginationLimit")
    fp = fingerprint(spec)
    after = None if cursor is None else decode_cursor(cursor, fp)
    end = None if end_cursor is None else decode_cursor(end_cursor, fp)
    if after is not None and after.key is None:
        return PageResult([], encode_cursor(fp, after), True)
    stream = QueryStream(tx, spec, after=after, end=end)
    page: list[dict] = []
    start_read = tx.documents_read
    while end is not None or len(page) < page_size:
        if maximum_rows_read is not None and tx.documents_read - start_read >= maximum_rows_read:
            break
        doc = stream.next()
        if doc is None:
            break
        page.append(doc)
    done = stream.exhausted and (end is None or end.key is None)
    if stream.exhausted:
        position = end if end is not None else Position(None)
    else:
        position = Position(stream.last_key)
    return PageResult(page, encode_cursor(fp, position), done)
