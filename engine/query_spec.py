"""Parsed queries: the ``query`` argument of queryStream/queryPage as plain data.

The JSON (function-runtime §4.1), as the npm package sends it:

    {"source": <Source>, "operators": [{"filter": <Expr>} | {"limit": <int >= 0>}, ...]}

    Source = {"type": "FullTableScan", "tableName": "t", "order": "asc" | "desc" | null}
           | {"type": "IndexRange", "indexName": "t.i", "range": [<RangeExpr>...],
              "order": "asc" | "desc" | null}
           | {"type": "Search", "indexName": "t.i", "filters": [<SearchFilter>...]}

Operators apply in order, at most ``LIMITS.query_operators_max`` of them. A
null or missing order is ascending. Unknown extra keys are ignored, as the
reference does. ``fingerprint`` hashes the canonical JSON so a pagination
cursor can be bound to the query that produced it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from engine.errors import InvalidQueryError, LimitExceededError
from engine.filter_expression import (
    Expr,
    maybe_value_from_json,
    maybe_value_to_json,
    parse_expression,
    parse_field_path,
    to_json,
)
from engine.index_range import RangeExpr, parse_range_json, ranges_to_json
from engine.key_encoding import encode_value
from engine.limits import LIMITS
from engine.values import is_identifier

ORDERS = ("asc", "desc")


@dataclass(frozen=True, slots=True)
class FullTableScan:
    """Every document of ``table`` in ``by_creation_time`` order."""

    table: str
    order: str = "asc"


@dataclass(frozen=True, slots=True)
class IndexRangeSource:
    """The documents of ``table`` inside ``ranges`` of its index ``index``."""

    table: str
    index: str
    ranges: tuple[RangeExpr, ...] = ()
    order: str = "asc"


@dataclass(frozen=True, eq=False, slots=True)
class SearchFilter:
    """``Search`` (value = the query text) or ``Eq`` on a filter field (value may be UNSET)."""

    kind: str  # "Search" or "Eq"
    field_path: str
    value: Any

    def _key(self) -> tuple[str, str, bytes]:
        return (self.kind, self.field_path, encode_value(self.value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchFilter):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True, slots=True)
class SearchSource:
    """A full-text search: relevance order only, so no ``order``."""

    table: str
    index: str
    filters: tuple[SearchFilter, ...]


Source: TypeAlias = FullTableScan | IndexRangeSource | SearchSource


@dataclass(frozen=True, slots=True)
class FilterOp:
    expr: Expr


@dataclass(frozen=True, slots=True)
class LimitOp:
    n: int


Operator: TypeAlias = FilterOp | LimitOp


@dataclass(frozen=True, slots=True)
class QuerySpec:
    source: Source
    operators: tuple[Operator, ...] = ()


# --- parsing ------------------------------------------------------------------


def _invalid(path: str, why: str, code: str | None = None) -> InvalidQueryError:
    return InvalidQueryError(f"Invalid query at {path}: {why}", code=code)


def _kind(obj: object) -> str:
    return "null" if obj is None else type(obj).__name__


def _require(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _invalid(path, f"missing {key!r}")
    return obj[key]


def parse_query(obj: Any) -> QuerySpec:
    """A ``QuerySpec`` from the query JSON; every error names the part that is wrong."""
    if type(obj) is not dict:
        raise _invalid("query", f"expected an object with source and operators, got {_kind(obj)}")
    source = _parse_source(_require(obj, "source", "query"), "query.source")
    operators = _require(obj, "operators", "query")
    if type(operators) is not list:
        raise _invalid("query.operators", f"expected a list, got {_kind(operators)}")
    if len(operators) > LIMITS.query_operators_max:
        raise LimitExceededError(
            f"A query has {len(operators)} operators, more than query_operators_max = "
            f"{LIMITS.query_operators_max}",
            code="TooManyQueryOperators",
        )
    ops = tuple(_parse_operator(op, f"query.operators[{i}]") for i, op in enumerate(operators))
    return QuerySpec(source, ops)


def _parse_order(obj: dict[str, Any], path: str) -> str:
    order = obj.get("order")
    if order is None:
        return "asc"
    if order not in ORDERS:
        raise _invalid(path + ".order", f'expected "asc", "desc" or null, got {order!r:.60}')
    return order


def _parse_table(name: object, path: str) -> str:
    if not is_identifier(name):
        raise _invalid(path, f"{name!r:.80} is not a valid table name", code="InvalidTableName")
    return name  # type: ignore[return-value]


def _parse_index_name(name: object, path: str) -> tuple[str, str]:
    parts = name.split(".") if type(name) is str else []
    if len(parts) != 2 or not all(map(is_identifier, parts)):
        raise _invalid(
            path,
            f'expected "<table>.<index>" of two identifiers, got {name!r:.80}',
            code="InvalidIndexName",
        )
    return parts[0], parts[1]


def _parse_source(obj: Any, path: str) -> Source:
    if type(obj) is not dict:
        raise _invalid(path, f"expected an object, got {_kind(obj)}")
    kind = obj.get("type")
    if kind == "FullTableScan":
        table = _parse_table(_require(obj, "tableName", path), path + ".tableName")
        return FullTableScan(table, _parse_order(obj, path))
    if kind == "IndexRange":
        table, index = _parse_index_name(_require(obj, "indexName", path), path + ".indexName")
        ranges = parse_range_json(_require(obj, "range", path), path=path + ".range")
        return IndexRangeSource(table, index, ranges, _parse_order(obj, path))
    if kind == "Search":
        table, index = _parse_index_name(_require(obj, "indexName", path), path + ".indexName")
        filters = _parse_search_filters(_require(obj, "filters", path), path + ".filters")
        return SearchSource(table, index, filters)
    raise _invalid(
        path + ".type", f'expected "FullTableScan", "IndexRange" or "Search", got {kind!r:.60}'
    )


def _parse_search_filters(items: Any, path: str) -> tuple[SearchFilter, ...]:
    if type(items) is not list:
        raise _invalid(path, f"expected a list of search filters, got {_kind(items)}")
    filters = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if type(item) is not dict:
            raise _invalid(here, f"expected an object, got {_kind(item)}")
        kind = item.get("type")
        if kind not in ("Search", "Eq"):
            raise _invalid(here + ".type", f'expected "Search" or "Eq", got {kind!r:.60}')
        field_path = parse_field_path(item.get("fieldPath"), path=here + ".fieldPath")
        value = _require(item, "value", here)
        if kind == "Search":
            if type(value) is not str:
                raise _invalid(here + ".value", f"search text must be a string, got {_kind(value)}")
        else:
            value = maybe_value_from_json(value, path=here + ".value")
        filters.append(SearchFilter(kind, field_path, value))
    searches = sum(1 for f in filters if f.kind == "Search")
    if searches != 1:
        raise _invalid(
            path,
            f"a search query needs exactly one Search filter (q.search(field, text)), "
            f"got {searches}",
            code="InvalidSearchQuery",
        )
    return tuple(filters)


def _parse_operator(obj: Any, path: str) -> Operator:
    if type(obj) is not dict or len(obj) != 1 or not ({"filter", "limit"} & obj.keys()):
        raise _invalid(path, 'expected {"filter": <expression>} or {"limit": <n>}')
    if "filter" in obj:
        return FilterOp(parse_expression(obj["filter"], path=path + ".filter"))
    return LimitOp(_parse_limit(obj["limit"], path + ".limit"))


def _parse_limit(n: Any, path: str) -> int:
    if type(n) is float and n.is_integer():
        n = int(n)  # a JSON number such as 1e3 parses as a float
    if type(n) is not int or n < 0:
        raise _invalid(path, f"limit must be a non-negative integer, got {n!r:.60}")
    return n


# --- serializing --------------------------------------------------------------


def _source_to_json(source: Source) -> dict[str, Any]:
    if isinstance(source, FullTableScan):
        return {"type": "FullTableScan", "tableName": source.table, "order": source.order}
    if isinstance(source, IndexRangeSource):
        return {
            "type": "IndexRange",
            "indexName": f"{source.table}.{source.index}",
            "range": ranges_to_json(source.ranges),
            "order": source.order,
        }
    return {
        "type": "Search",
        "indexName": f"{source.table}.{source.index}",
        "filters": [
            {
                "type": f.kind,
                "fieldPath": f.field_path,
                "value": f.value if f.kind == "Search" else maybe_value_to_json(f.value),
            }
            for f in source.filters
        ],
    }


def query_to_json(spec: QuerySpec) -> dict[str, Any]:
    """The query JSON of ``spec``; ``parse_query`` of it gives ``spec`` back."""
    operators = [
        {"filter": to_json(op.expr)} if isinstance(op, FilterOp) else {"limit": op.n}
        for op in spec.operators
    ]
    return {"source": _source_to_json(spec.source), "operators": operators}


def fingerprint(spec: QuerySpec, index_fields: Sequence[str] | None = None) -> bytes:
    """SHA-256 of the canonical query JSON (and the index's fields, when given).

    Equal queries get equal fingerprints across processes and versions, so a
    cursor stays valid while the query is unchanged and is refused otherwise.
    """
    payload: dict[str, Any] = {"query": query_to_json(spec)}
    if index_fields is not None:
        payload["indexFields"] = list(index_fields)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).digest()
