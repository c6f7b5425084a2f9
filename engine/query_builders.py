"""The Python spelling of Convex's query builders, for the embedded API.

``with_index("by_channel", lambda q: q.eq("channel", "#general").gt("_creationTime", t))``
and ``filter(lambda q: q.and_(q.eq(q.field("done"), False), q.gt(q.field("n"), 3)))``
produce the same ``RangeExpr`` lists and expression trees, hence the same
JSON, as the npm ``IndexRangeBuilder`` and ``FilterBuilder`` do.

The JS builder's types allow Eq comparisons first, then at most one lower
bound (gt/gte), then at most one upper bound (lt/lte); Python has no such
types, so the builder checks the order at run time. Like the JS builder, a
builder may be chained from only once: a second call on the same builder (the
result of the first call was dropped) is an error rather than a silently
lost comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import InvalidQueryError
from engine.filter_expression import (
    And,
    Arith,
    Compare,
    Expr,
    Field,
    Literal,
    Neg,
    Not,
    Or,
    expression_depth,
    parse_field_path,
    type_name,
)
from engine.index_range import RangeExpr
from engine.limits import LIMITS
from engine.values import UNSET, check_value

_EQS = 0  # still taking eq, a lower bound or an upper bound
_AFTER_LOWER = 1  # only an upper bound may follow
_DONE = 2  # after an upper bound nothing may follow


def _builder_error(message: str) -> InvalidQueryError:
    return InvalidQueryError(message, code="InvalidRangeBuilder")


class IndexRangeBuilder:
    """``q`` of ``with_index(name, lambda q: ...)``; each call returns a new builder."""

    __slots__ = ("_ranges", "_stage", "_consumed")

    def __init__(self) -> None:
        self._ranges: tuple[RangeExpr, ...] = ()
        self._stage = _EQS
        self._consumed = False

    def _fresh(self) -> None:
        if self._consumed:
            raise _builder_error(
                "IndexRangeBuilder has already been used: chain the calls, "
                'as in q.eq("a", 1).eq("b", 2), instead of calling q twice.'
            )

    def _then(self, kind: str, field: str, value: Any, stage: int) -> IndexRangeBuilder:
        path = parse_field_path(field, path=f"{kind.lower()}() field")
        if kind != "Eq" or value is not UNSET:
            check_value(value, path=f"{kind.lower()}({path!r}) value")
        self._consumed = True
        nxt = IndexRangeBuilder()
        nxt._ranges = self._ranges + (RangeExpr(kind, path, value),)
        nxt._stage = stage
        return nxt

    def eq(self, field: str, value: Any) -> IndexRangeBuilder:
        """Documents whose ``field`` equals ``value`` (UNSET matches a missing field)."""
        self._fresh()
        if self._stage != _EQS:
            raise _builder_error(
                f"eq({field!r}, ...) must come before the range bounds (gt, gte, lt, lte)."
            )
        return self._then("Eq", field, value, _EQS)

    def _lower(self, kind: str, field: str, value: Any) -> IndexRangeBuilder:
        self._fresh()
        if self._stage == _AFTER_LOWER:
            raise _builder_error(
                f"An index range takes at most one lower bound (gt or gte); "
                f"can't add {kind.lower()}({field!r}, ...)."
            )
        if self._stage == _DONE:
            raise _builder_error(
                f"The lower bound {kind.lower()}({field!r}, ...) must come "
                "before the upper bound (lt or lte)."
            )
        return self._then(kind, field, value, _AFTER_LOWER)

    def _upper(self, kind: str, field: str, value: Any) -> IndexRangeBuilder:
        self._fresh()
        if self._stage == _DONE:
            raise _builder_error(
                f"An index range takes at most one upper bound (lt or lte); "
                f"can't add {kind.lower()}({field!r}, ...)."
            )
        return self._then(kind, field, value, _DONE)

    def gt(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._lower("Gt", field, value)

    def gte(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._lower("Gte", field, value)

    def lt(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._upper("Lt", field, value)

    def lte(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._upper("Lte", field, value)

    @property
    def ranges(self) -> tuple[RangeExpr, ...]:
        """The comparisons, in call order; refused on a builder that was chained from."""
        if self._consumed:
            raise _builder_error(
                "This IndexRangeBuilder was chained from, so it lacks the later comparisons: "
                'return the result of the chain, as in lambda q: q.eq("a", 1).'
            )
        return self._ranges

    def __repr__(self) -> str:
        return f"IndexRangeBuilder({list(self._ranges)!r})"


def _operand(x: Any, where: str) -> Expr:
    """An Expr as is; anything else is a literal, which must be a Convex value (or UNSET)."""
    if isinstance(x, Expr):
        return x
    if x is not UNSET:
        check_value(x, path=where)
    return Literal(x)


class FilterBuilder:
    """``q`` of ``filter(lambda q: ...)``: every method returns an expression node."""

    __slots__ = ()

    def field(self, path: str) -> Field:
        return Field(parse_field_path(path, path="q.field()"))

    def _compare(self, op: str, left: Any, right: Any) -> Compare:
        return Compare(op, _operand(left, f"q.{op}() left"), _operand(right, f"q.{op}() right"))

    def eq(self, left: Any, right: Any) -> Compare:
        return self._compare("eq", left, right)

    def neq(self, left: Any, right: Any) -> Compare:
        return self._compare("neq", left, right)

    def lt(self, left: Any, right: Any) -> Compare:
        return self._compare("lt", left, right)

    def lte(self, left: Any, right: Any) -> Compare:
        return self._compare("lte", left, right)

    def gt(self, left: Any, right: Any) -> Compare:
        return self._compare("gt", left, right)

    def gte(self, left: Any, right: Any) -> Compare:
        return self._compare("gte", left, right)

    def _arith(self, op: str, left: Any, right: Any) -> Arith:
        return Arith(op, _operand(left, f"q.{op}() left"), _operand(right, f"q.{op}() right"))

    def add(self, left: Any, right: Any) -> Arith:
        return self._arith("add", left, right)

    def sub(self, left: Any, right: Any) -> Arith:
        return self._arith("sub", left, right)

    def mul(self, left: Any, right: Any) -> Arith:
        return self._arith("mul", left, right)

    def div(self, left: Any, right: Any) -> Arith:
        return self._arith("div", left, right)

    def mod(self, left: Any, right: Any) -> Arith:
        return self._arith("mod", left, right)

    def neg(self, x: Any) -> Neg:
        return Neg(_operand(x, "q.neg()"))

    def and_(self, *xs: Any) -> And:
        return And(tuple(_operand(x, f"q.and_() argument {i}") for i, x in enumerate(xs)))

    def or_(self, *xs: Any) -> Or:
        return Or(tuple(_operand(x, f"q.or_() argument {i}") for i, x in enumerate(xs)))

    def not_(self, x: Any) -> Not:
        return Not(_operand(x, "q.not_()"))


def build_range(fn: Callable[[IndexRangeBuilder], Any] | None) -> tuple[RangeExpr, ...]:
    """The ranges ``fn`` builds from a fresh builder (no function: the whole index)."""
    if fn is None:
        return ()
    result = fn(IndexRangeBuilder())
    if not isinstance(result, IndexRangeBuilder):
        raise _builder_error(
            "The index range function must return the builder chain, as in "
            f'lambda q: q.eq("a", 1); it returned {type(result).__name__}.'
        )
    return result.ranges


def build_filter(fn: Callable[[FilterBuilder], Any]) -> Expr:
    """The expression ``fn`` builds; a plain bool result becomes a literal."""
    result = fn(FilterBuilder())
    if type(result) is bool:
        return Literal(result)
    if not isinstance(result, Expr):
        raise InvalidQueryError(
            "The filter function must return an expression built with q (or a bool); "
            f"it returned {type_name(result)}.",
            code="InvalidFilter",
        )
    if expression_depth(result) > LIMITS.value_depth_max:
        raise InvalidQueryError(
            f"The filter expression nests deeper than value_depth_max = {LIMITS.value_depth_max}",
            code="InvalidFilter",
        )
    return result
