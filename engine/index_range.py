"""Index ranges: the ``range`` of an IndexRange query turned into a key interval.

An index is named by its full field tuple, ending with ``_id``
(``("channel", "_creationTime", "_id")``), and a document's key in it is
``encode_key`` of its values at those paths, a missing field being UNSET, which
sorts lowest. A range is a list of ``RangeExpr`` as the npm index range builder
sends them (function-runtime §4.1):

    {"type": "Eq" | "Gt" | "Gte" | "Lt" | "Lte", "fieldPath": "a.b", "value": <convex JSON>}

Rules, checked in the reference's order so the same mistake gets the same
error: each field at most one Eq; at most one lower (Gt/Gte) and one upper
(Lt/Lte) bound, both on the same field (``AlreadyDefinedBound``,
``BoundsOnMultipleFields``); no bound on a field that also has an Eq; every
field in the index (``FieldNotInIndex``); and the Eq fields in index order
followed by the bound field must be exactly a prefix of the index fields
(``InvalidIndexRange``).

The interval is half-open, ``lo <= key < hi`` (``hi`` None = no end). With
``p`` the encoding of the Eq values in index order and ``e`` = ``p`` plus the
encoded bound value: Gte -> lo = e; Gt -> lo = successor(e); Lt -> hi = e;
Lte -> hi = successor(e); no lower bound -> lo = p; no upper -> hi =
successor(p). ``successor`` is ``prefix_successor``: because no encoded value
is a prefix of another, it skips exactly the keys that start with ``e``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidQueryError
from engine.filter_expression import (
    maybe_value_from_json,
    maybe_value_to_json,
    parse_field_path,
    show_value,
)
from engine.key_encoding import encode_key, encode_value, prefix_successor
from engine.values import get_field

RANGE_KINDS = ("Eq", "Gt", "Gte", "Lt", "Lte")
LOWER_KINDS = ("Gt", "Gte")
UPPER_KINDS = ("Lt", "Lte")
_SYMBOLS = {"Eq": "==", "Gt": ">", "Gte": ">=", "Lt": "<", "Lte": "<="}


@dataclass(frozen=True, eq=False, slots=True)
class RangeExpr:
    """One comparison of an index range; ``value`` may be UNSET (a missing field)."""

    kind: str  # one of RANGE_KINDS
    field_path: str
    value: Any

    def __post_init__(self) -> None:
        if self.kind not in _SYMBOLS:
            raise InvalidQueryError(
                f"Unknown index range comparison {self.kind!r}; expected one of {RANGE_KINDS}",
                code="InvalidRangeExpression",
            )

    def _key(self) -> tuple[str, str, bytes]:
        # Convex equality, not Python's: 1 and 1.0 and True are different values.
        return (self.kind, self.field_path, encode_value(self.value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeExpr):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def describe(self) -> str:
        return f'"{self.field_path}" {_SYMBOLS[self.kind]} {show_value(self.value)}'


@dataclass(frozen=True, slots=True)
class KeyInterval:
    """Keys ``k`` with ``lo <= k < hi``; ``hi`` None means no upper end."""

    lo: bytes
    hi: bytes | None

    def contains(self, key: bytes) -> bool:
        return key >= self.lo and (self.hi is None or key < self.hi)

    @property
    def is_empty(self) -> bool:
        return self.hi is not None and self.lo >= self.hi


def index_key(index_fields: Sequence[str], doc: Any) -> bytes:
    """The key of ``doc`` in the index with these fields (the last one being ``_id``)."""
    return encode_key([get_field(doc, field) for field in index_fields])


# --- JSON ---------------------------------------------------------------------


def _malformed(path: str, why: str) -> InvalidQueryError:
    return InvalidQueryError(f"Invalid index range at {path}: {why}", code="InvalidRangeExpression")


def parse_range_json(items: Any, *, path: str = "range") -> tuple[RangeExpr, ...]:
    """The range expressions of an IndexRange source (values may be ``{"$undefined": null}``)."""
    if type(items) is not list:
        raise _malformed(path, f"expected a list of range expressions, got {type(items).__name__}")
    ranges = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if type(item) is not dict:
            raise _malformed(here, f"expected an object, got {type(item).__name__}")
        kind = item.get("type")
        if kind not in _SYMBOLS:
            raise _malformed(here, f"type must be one of {', '.join(RANGE_KINDS)}, got {kind!r}")
        if "value" not in item:
            raise _malformed(here, "missing value")
        field_path = parse_field_path(item.get("fieldPath"), path=here + ".fieldPath")
        value = maybe_value_from_json(item["value"], path=here + ".value")
        ranges.append(RangeExpr(kind, field_path, value))
    return tuple(ranges)


def range_to_json(expr: RangeExpr) -> dict[str, Any]:
    """One range expression as the npm builder serializes it."""
    return {
        "type": expr.kind,
        "fieldPath": expr.field_path,
        "value": maybe_value_to_json(expr.value),
    }


def ranges_to_json(ranges: Sequence[RangeExpr]) -> list[dict[str, Any]]:
    return [range_to_json(expr) for expr in ranges]


# --- compiling ----------------------------------------------------------------


def _already_defined(bound: str, expr: RangeExpr, index_name: str) -> InvalidQueryError:
    return InvalidQueryError(
        f"Already defined {bound} bound in the index range on {index_name}. "
        f"Can't add {expr.describe()}.",
        code="AlreadyDefinedBound",
    )


def _show_fields(fields: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{field}"' for field in fields) + "]"


@dataclass
class _Split:
    equalities: dict[str, RangeExpr]
    lower: RangeExpr | None = None
    upper: RangeExpr | None = None

    @property
    def bound_field(self) -> str | None:
        bound = self.lower or self.upper
        return bound.field_path if bound is not None else None


def _split(ranges: Sequence[RangeExpr], index_name: str) -> _Split:
    """Equalities by field and the one bounded field, with the bound-shape checks."""
    split = _Split({})
    for expr in ranges:
        if expr.kind == "Eq":
            if expr.field_path in split.equalities:
                raise _already_defined("equality", expr, index_name)
            split.equalities[expr.field_path] = expr
            continue
        is_upper = expr.kind in UPPER_KINDS
        if (split.upper if is_upper else split.lower) is not None:
            raise _already_defined("upper" if is_upper else "lower", expr, index_name)
        first = split.bound_field
        if first is not None and first != expr.field_path:
            raise InvalidQueryError(
                "Upper and lower bounds in an index range can only be applied to a single "
                f"index field. This query against index {index_name} attempted to set a range "
                f'bound on both "{first}" and "{expr.field_path}". Consider using filter instead.',
                code="BoundsOnMultipleFields",
            )
        if is_upper:
            split.upper = expr
        else:
            split.lower = expr
    bound_field = split.bound_field
    if bound_field is not None and bound_field in split.equalities:
        raise _already_defined("inequality", split.equalities[bound_field], index_name)
    return split


def _check_fields(split: _Split, index_fields: Sequence[str], index_name: str) -> list[str]:
    """The Eq fields in index order; raise unless they and the bound field prefix the index."""
    rank = {field: i for i, field in enumerate(index_fields)}
    bound_field = split.bound_field
    named = list(split.equalities) + ([bound_field] if bound_field is not None else [])
    for field in named:
        if field not in rank:
            raise InvalidQueryError(
                f'The index range included a comparison with "{field}", but {index_name} '
                f"with fields {_show_fields(index_fields)} doesn't index this field.",
                code="FieldNotInIndex",
            )
    eq_fields = sorted(split.equalities, key=rank.__getitem__)
    used = eq_fields + ([bound_field] if bound_field is not None else [])
    for position, field in enumerate(used):
        if position >= len(index_fields) or index_fields[position] != field:
            raise InvalidQueryError(
                f"Tried to query index {index_name} but the query didn't use the index fields "
                f"in order.\nIndex fields: {_show_fields(index_fields)}\n"
                f'Query fields: {_show_fields(used)}\nFirst incorrect field: "{field}"',
                code="InvalidIndexRange",
            )
    return eq_fields


def compile_range(
    ranges: Sequence[RangeExpr], index_fields: Sequence[str], index_name: str
) -> KeyInterval:
    """The key interval of ``ranges`` over the index ``index_name`` with ``index_fields``."""
    split = _split(ranges, index_name)
    eq_fields = _check_fields(split, index_fields, index_name)
    prefix = encode_key([split.equalities[field].value for field in eq_fields])
    lo = prefix
    if split.lower is not None:
        edge = prefix + encode_value(split.lower.value)
        after = prefix_successor(edge) if split.lower.kind == "Gt" else edge
        if after is None:  # nothing sorts after edge: the range is empty
            return KeyInterval(edge, edge)
        lo = after
    if split.upper is None:
        hi = prefix_successor(prefix)
    else:
        edge = prefix + encode_value(split.upper.value)
        hi = prefix_successor(edge) if split.upper.kind == "Lte" else edge
    return KeyInterval(lo, hi)
