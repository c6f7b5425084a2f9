"""The embedded query builder: ``tx.query(table).with_index(...).filter(...).collect()``.

It mirrors the Convex JavaScript builder and compiles to the same ``QuerySpec``
the function runtime sends, so both run through one executor. A full-text
search is ``with_search_index("search_body", lambda q: q.search("body", "hello
hi").eq("channel", "#general"))``: results come in relevance order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import InvalidQueryError
from engine.pagination import PageResult, paginate
from engine.query_builders import build_filter, build_range
from engine.query_executor import QueryStream
from engine.query_spec import (
    FilterOp,
    FullTableScan,
    IndexRangeSource,
    LimitOp,
    QuerySpec,
    SearchFilter,
    SearchSource,
)
from engine.read_context import ReadContext
from engine.values import UNSET, check_value


class SearchFilterBuilder:
    """``q.search(field, text)`` once, then any ``.eq(filter_field, value)``."""

    def __init__(self) -> None:
        self.filters: list[SearchFilter] = []
        self._used = False

    def _chain(self, item: SearchFilter) -> SearchFilterBuilder:
        if self._used:
            raise InvalidQueryError("A search filter builder may be chained from only once.")
        self._used = True
        nxt = SearchFilterBuilder()
        nxt.filters = [*self.filters, item]
        return nxt

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        if self.filters:
            raise InvalidQueryError("search(field, text) must come first, and only once.")
        if not isinstance(field, str) or not isinstance(text, str):
            raise InvalidQueryError("search(field, text) takes a field path and a string.")
        return self._chain(SearchFilter("Search", field, text))

    def eq(self, field: str, value: Any) -> SearchFilterBuilder:
        if not self.filters:
            raise InvalidQueryError("search(field, text) must come before eq(...).")
        if not isinstance(field, str):
            raise InvalidQueryError("eq(field, value) takes a field path.")
        if value is not UNSET:
            check_value(value)
        return self._chain(SearchFilter("Eq", field, value))


class TableQuery:
    def __init__(self, tx: ReadContext, table: str) -> None:
        self._tx = tx
        self._table = table
        self._index: str | None = None
        self._ranges: tuple = ()
        self._order: str | None = None
        self._operators: list[Any] = []
        self._search: tuple[SearchFilter, ...] | None = None

    def with_search_index(self, name: str, fn: Callable[[Any], Any]) -> TableQuery:
        """A full-text search over the search index ``name``, in relevance order."""
        if self._index is not None:
            raise InvalidQueryError("with_index/with_search_index may be called once per query.")
        built = fn(SearchFilterBuilder())
        if not isinstance(built, SearchFilterBuilder) or not built.filters:
            raise InvalidQueryError(
                "with_search_index needs a function returning q.search(field, text)..."
            )
        self._index = name
        self._search = tuple(built.filters)
        return self

    def with_index(self, name: str, fn: Callable[[Any], Any] | None = None) -> TableQuery:
        if self._index is not None:
            raise InvalidQueryError("with_index may be called once per query.")
        self._index = name
        self._ranges = build_range(fn) if fn is not None else ()
        return self

    def order(self, order: str) -> TableQuery:
        if order not in ("asc", "desc"):
            raise InvalidQueryError(f'order must be "asc" or "desc", got {order!r}.')
        if self._order is not None:
            raise InvalidQueryError("order may be called once per query.")
        self._order = order
        return self

    def filter(self, fn: Callable[[Any], Any]) -> TableQuery:
        self._operators.append(FilterOp(build_filter(fn)))
        return self

    def limit(self, n: int) -> TableQuery:
        self._operators.append(LimitOp(n))
        return self

    def spec(self) -> QuerySpec:
        order = self._order or "asc"
        if self._search is not None and self._index is not None:
            if self._order is not None:
                raise InvalidQueryError(
                    "Search queries are in relevance order; order() cannot be used with them."
                )
            return QuerySpec(
                SearchSource(self._table, self._index, self._search), tuple(self._operators)
            )
        if self._index is None:
            source: Any = FullTableScan(self._table, order)
        else:
            source = IndexRangeSource(self._table, self._index, self._ranges, order)
        return QuerySpec(source, tuple(self._operators))

    def stream(self) -> QueryStream:
        return QueryStream(self._tx, self.spec())

    def collect(self) -> list[dict]:
        return list(self.stream())

    def take(self, n: int) -> list[dict]:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidQueryError(f"take expects a non-negative integer, got {n!r}.")
        return list(self.limit(n).stream())

    def first(self) -> dict | None:
        found = self.take(1)
        return found[0] if found else None

    def unique(self) -> dict | None:
        found = self.take(2)
        if len(found) > 1:
            raise InvalidQueryError(
                f"unique() query returned more than one result from table {self._table}: "
                f"[{found[0]['_id']}, {found[1]['_id']}, ...]",
                code="UniqueQueryMultipleResults",
            )
        return found[0] if found else None

    def paginate(
        self,
        cursor: str | None,
        num_items: int,
        *,
        end_cursor: str | None = None,
        maximum_rows_read: int | None = None,
        maximum_bytes_read: int | None = None,
    ) -> PageResult:
        """One page (``engine.pagination``): ``num_items`` after ``cursor``, or with
        ``end_cursor`` every document up to it."""
        return paginate(
            self._tx,
            self.spec(),
            cursor,
            num_items,
            end_cursor=end_cursor,
            maximum_rows_read=maximum_rows_read,
            maximum_bytes_read=maximum_bytes_read,
        )
