"""The data page's filters: ``[{field, op, value?}]`` compiled to one query filter.

Each filter names a dotted field path and an operator: ``eq``/``neq``/``lt``/
``lte``/``gt``/``gte`` compare the field with ``value`` by Convex's total order
(a missing field is ``undefined``, below every value), ``exists``/``notExists``
test whether the field is there. Several filters all apply (and). They compile
to the filter expression a function's ``.filter(...)`` sends, so the page's scan
applies them with the engine's own evaluation while it reads.
"""

from __future__ import annotations

from typing import Any

from engine.errors import HeadwaterError
from engine.filter_expression import And, Compare, Expr, Field, Literal, parse_field_path
from engine.values import UNSET, check_value

COMPARISONS = ("eq", "neq", "lt", "lte", "gt", "gte")
PRESENCE = {"exists": "neq", "notExists": "eq"}
FILTERS_MAX = 32


def _bad(index: int, why: str) -> HeadwaterError:
    return HeadwaterError(f"Invalid filter at filters[{index}]: {why}", code="BadArgs")


def compile_filters(raw: Any) -> Expr | None:
    """One expression for every filter (None: no filter), or a clear refusal."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise HeadwaterError("`filters` must be an array of {field, op, value}.", code="BadArgs")
    if len(raw) > FILTERS_MAX:
        raise HeadwaterError(f"At most {FILTERS_MAX} filters may apply at once.", code="BadArgs")
    parts = [_compile(i, item) for i, item in enumerate(raw)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _compile(index: int, item: Any) -> Expr:
    if not isinstance(item, dict):
        raise _bad(index, "expected an object {field, op, value}.")
    unknown = set(item) - {"field", "op", "value"}
    if unknown:
        raise _bad(index, f"unknown key {sorted(unknown)[0]!r} (expected field, op, value).")
    try:
        path = parse_field_path(item.get("field"), path=f"filters[{index}].field")
    except HeadwaterError as exc:
        raise _bad(index, exc.message) from exc
    op = item.get("op")
    if op in PRESENCE:
        if "value" in item:
            raise _bad(index, f'op "{op}" takes no value.')
        return Compare(PRESENCE[op], Field(path), Literal(UNSET))
    if op not in COMPARISONS:
        ops = ", ".join(f'"{o}"' for o in (*COMPARISONS, *PRESENCE))
        raise _bad(index, f"op must be one of {ops}, got {op!r}.")
    if "value" not in item:
        raise _bad(index, f'op "{op}" needs a value.')
    value = item["value"]
    try:
        check_value(value)
    except HeadwaterError as exc:
        raise _bad(index, f"value is not a Convex value: {exc.message}") from exc
    return Compare(op, Field(path), Literal(value))
