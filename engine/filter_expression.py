"""Filter expressions of Convex queries: the tree, its JSON form, and evaluation.

A filter is the ``{"filter": <Expr>}`` operator of a query
(function-runtime §4.2). Its JSON is one operator key per object:

    {"$field": "a.b"}                  the value at a dotted path; missing -> undefined
    {"$literal": <convex JSON>}        a constant; {"$undefined": null} is undefined
    {"$eq": [l, r]} $neq $lt $lte $gt $gte   compare by the total order (§7)
    {"$add": [l, r]} $sub $mul $div $mod     both Int64 (checked) or both Float64 (IEEE)
    {"$neg": x}                        Int64 (checked) or Float64
    {"$and": [...]} {"$or": [...]}     short-circuit over Booleans; empty = true / false
    {"$not": x}                        x must be a Boolean

Evaluation follows the reference semantics: comparisons never fail (every
pair of values is ordered, ``1n`` and ``1.0`` are different values), while
arithmetic on the wrong types, Int64 overflow, Int64 division by zero and a
non-Boolean where a Boolean is needed raise ``InvalidQueryError`` with code
``EvalError``. Int64 division and remainder truncate toward zero, as in the
reference.

Expression nodes are frozen and compare structurally with each other. They
refuse Python's ``==``, ``<`` and truth tests against anything else, because
``q.field("a") == 1`` inside a user's filter function would otherwise quietly
build ``False`` instead of a comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import InvalidQueryError
from engine.key_encoding import encode_value
from engine.limits import LIMITS
from engine.values import INT64_MAX, INT64_MIN, UNSET, compare_values, get_field, is_identifier

UNDEFINED_JSON = {"$undefined": None}

COMPARE_OPS = ("eq", "neq", "lt", "lte", "gt", "gte")
ARITH_OPS = ("add", "sub", "mul", "div", "mod")

_COMPARE: dict[str, Callable[[int], bool]] = {
    "eq": lambda c: c == 0,
    "neq": lambda c: c != 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
}
_ARITH_VERBS = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "mod": "mod"}
_TYPE_NAMES = {
    type(UNSET): "undefined",
    type(None): "null",
    int: "int64",
    float: "float64",
    bool: "boolean",
    str: "string",
    bytes: "bytes",
    list: "array",
    dict: "object",
}


# --- shared helpers: field paths and values in messages -----------------------


_VALID_PATHS: dict[str, str] = {}  # path text -> trimmed, for paths already checked
_VALID_PATHS_MAX = 4096


def parse_field_path(text: object, *, path: str = "fieldPath") -> str:
    """A dotted path of identifiers (``"a.b"``), outer dots trimmed as the reference does."""
    if type(text) is str:
        known = _VALID_PATHS.get(text)
        if known is not None:  # every index range and filter names one: checked once
            return known
    else:
        raise InvalidQueryError(
            f"Invalid field path at {path}: expected a string, got {type_name(text)}",
            code="InvalidFieldPath",
        )
    trimmed = text.strip(".")
    if not trimmed:
        raise InvalidQueryError(
            f"Invalid field path at {path}: empty path {text!r}", code="InvalidFieldPath"
        )
    for part in trimmed.split("."):
        if not is_identifier(part):
            raise InvalidQueryError(
                f"Invalid field path {text!r} at {path}: {part!r} is not an identifier "
                f"(1 to {LIMITS.identifier_chars_max} ASCII letters, digits and underscores, "
                "starting with a letter or underscore)",
                code="InvalidFieldPath",
            )
    if len(_VALID_PATHS) < _VALID_PATHS_MAX:
        _VALID_PATHS[text] = trimmed
    return trimmed


def type_name(value: object) -> str:
    """The Convex type name of ``value`` for messages (``int64``, ``undefined``...)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def show_value(value: object) -> str:
    """A short, unambiguous rendering of a value for error messages (``5n`` is an Int64)."""
    if value is UNSET:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, bytes):
        text = f"bytes(0x{value.hex()})"
    else:
        try:
            text = json.dumps(to_convex_json(value), sort_keys=True)
        except Exception:  # noqa: BLE001 - a message must never fail to render
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def maybe_value_from_json(obj: Any, *, path: str) -> Any:
    """Convex JSON where a top-level ``{"$undefined": null}`` is UNSET (ranges, literals)."""
    if type(obj) is dict and len(obj) == 1 and "$undefined" in obj and obj["$undefined"] is None:
        return UNSET
    return from_convex_json(obj, path=path)


def maybe_value_to_json(value: Any) -> Any:
    """Inverse of ``maybe_value_from_json``."""
    return dict(UNDEFINED_JSON) if value is UNSET else to_convex_json(value)


# --- the tree -----------------------------------------------------------------


def _misuse(what: str) -> InvalidQueryError:
    return InvalidQueryError(
        f"A query expression cannot be used with Python's {what}: build the expression with "
        "the filter builder instead (q.eq, q.neq, q.lt, q.lte, q.gt, q.gte for comparisons; "
        "q.and_, q.or_, q.not_ for logic).",
        code="InvalidFilter",
    )


class Expr:
    """Base of the expression nodes: structural equality, no Python truthiness."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return type(self) is type(other) and self._key() == other._key()
        raise _misuse("==")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __bool__(self) -> bool:
        raise _misuse("truth tests (if, and, or, not)")

    def __lt__(self, other: object) -> bool:
        raise _misuse("<")

    def __le__(self, other: object) -> bool:
        raise _misuse("<=")

    def __gt__(self, other: object) -> bool:
        raise _misuse(">")

    def __ge__(self, other: object) -> bool:
        raise _misuse(">=")


@dataclass(frozen=True, eq=False, slots=True)
class Field(Expr):
    path: str

    def _key(self) -> tuple[Any, ...]:
        return (self.path,)


@dataclass(frozen=True, eq=False, slots=True)
class Literal(Expr):
    value: Any

    def _key(self) -> tuple[Any, ...]:
        return (encode_value(self.value),)


@dataclass(frozen=True, eq=False, slots=True)
class Compare(Expr):
    op: str  # one of COMPARE_OPS
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in _COMPARE:
            raise InvalidQueryError(f"Unknown comparison {self.op!r}", code="InvalidFilter")

    def _key(self) -> tuple[Any, ...]:
        return (self.op, self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Arith(Expr):
    op: str  # one of ARITH_OPS
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in _ARITH_VERBS:
            raise InvalidQueryError(f"Unknown arithmetic {self.op!r}", code="InvalidFilter")

    def _key(self) -> tuple[Any, ...]:
        return (self.op, self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Neg(Expr):
    operand: Expr

    def _key(self) -> tuple[Any, ...]:
        return (self.operand,)


@dataclass(frozen=True, eq=False, slots=True)
class And(Expr):
    items: tuple[Expr, ...]

    def _key(self) -> tuple[Any, ...]:
        return self.items


@dataclass(frozen=True, eq=False, slots=True)
class Or(Expr):
    items: tuple[Expr, ...]

    def _key(self) -> tuple[Any, ...]:
        return self.items


@dataclass(frozen=True, eq=False, slots=True)
class Not(Expr):
    operand: Expr

    def _key(self) -> tuple[Any, ...]:
        return (self.operand,)


def expression_depth(expr: Expr) -> int:
    """Nesting depth of ``expr`` (a leaf is 1), computed without recursion."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, (Compare, Arith)):
        return (node.left, node.right)
    if isinstance(node, (Neg, Not)):
        return (node.operand,)
    if isinstance(node, (And, Or)):
        return node.items
    return ()


# --- JSON ---------------------------------------------------------------------


def _invalid(path: str, why: str) -> InvalidQueryError:
    return InvalidQueryError(f"Invalid filter expression at {path}: {why}", code="InvalidFilter")


def _describe_json(obj: object) -> str:
    try:
        text = json.dumps(obj)
    except (TypeError, ValueError):
        text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_expression(obj: Any, *, path: str = "") -> Expr:
    """The expression tree of §4.2 JSON; errors name where in the JSON it went wrong."""
    return _parse(obj, path or "filter", LIMITS.value_depth_max)


def _parse(obj: Any, path: str, depth_left: int) -> Expr:
    if depth_left <= 0:
        raise _invalid(
            path, f"expression nests deeper than value_depth_max = {LIMITS.value_depth_max}"
        )
    if type(obj) is not dict or len(obj) != 1:
        raise _invalid(
            path,
            "expected an object with exactly one operator key ($field, $literal, $eq, $and, ...), "
            f"got {_describe_json(obj)}",
        )
    ((key, body),) = obj.items()
    here = f"{path}.{key}"
    op = key[1:] if type(key) is str and key.startswith("$") else ""
    if key == "$field":
        return Field(parse_field_path(body, path=here))
    if key == "$literal":
        return Literal(maybe_value_from_json(body, path=here))
    if op in _COMPARE or op in _ARITH_VERBS:
        if type(body) is not list or len(body) != 2:
            raise _invalid(
                here, f"{key} takes a list of two expressions, got {_describe_json(body)}"
            )
        left = _parse(body[0], f"{here}[0]", depth_left - 1)
        right = _parse(body[1], f"{here}[1]", depth_left - 1)
        return Compare(op, left, right) if op in _COMPARE else Arith(op, left, right)
    if key in ("$neg", "$not"):
        operand = _parse(body, here, depth_left - 1)
        return Neg(operand) if key == "$neg" else Not(operand)
    if key in ("$and", "$or"):
        if type(body) is not list:
            raise _invalid(here, f"{key} takes a list of expressions, got {_describe_json(body)}")
        items = tuple(_parse(item, f"{here}[{i}]", depth_left - 1) for i, item in enumerate(body))
        return And(items) if key == "$and" else Or(items)
    raise _invalid(path, f"unknown operator {key!r}")


def to_json(expr: Expr) -> Any:
    """The §4.2 JSON of ``expr``, exactly as the npm filter builder serializes it."""
    if isinstance(expr, Field):
        return {"$field": expr.path}
    if isinstance(expr, Literal):
        return {"$literal": maybe_value_to_json(expr.value)}
    if isinstance(expr, (Compare, Arith)):
        return {"$" + expr.op: [to_json(expr.left), to_json(expr.right)]}
    if isinstance(expr, Neg):
        return {"$neg": to_json(expr.operand)}
    if isinstance(expr, Not):
        return {"$not": to_json(expr.operand)}
    if isinstance(expr, And):
        return {"$and": [to_json(item) for item in expr.items]}
    if isinstance(expr, Or):
        return {"$or": [to_json(item) for item in expr.items]}
    raise InvalidQueryError(f"Not a filter expression: {expr!r:.80}", code="InvalidFilter")


# --- evaluation ---------------------------------------------------------------


def _eval_error(message: str) -> InvalidQueryError:
    return InvalidQueryError(message, code="EvalError")


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _eval_error(
            f"Cannot use value {show_value(value)} (type {type_name(value)}) as a Boolean"
        )
    return value


def evaluate(expr: Expr, doc: Any) -> Any:
    """The value of ``expr`` for document ``doc`` (UNSET for a missing field)."""
    if isinstance(expr, Field):
        return get_field(doc, expr.path)
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Compare):
        order = compare_values(evaluate(expr.left, doc), evaluate(expr.right, doc))
        return _COMPARE[expr.op](order)
    if isinstance(expr, Arith):
        return _arith(expr.op, evaluate(expr.left, doc), evaluate(expr.right, doc))
    if isinstance(expr, Neg):
        return _negate(evaluate(expr.operand, doc))
    if isinstance(expr, And):
        return all(_boolean(evaluate(item, doc)) for item in expr.items)
    if isinstance(expr, Or):
        return any(_boolean(evaluate(item, doc)) for item in expr.items)
    if isinstance(expr, Not):
        return not _boolean(evaluate(expr.operand, doc))
    raise InvalidQueryError(f"Not a filter expression: {expr!r:.80}", code="InvalidFilter")


def matches(expr: Expr, doc: Any) -> bool:
    """Whether ``doc`` passes the filter; the expression must produce a Boolean."""
    return _boolean(evaluate(expr, doc))


def _arith(op: str, a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return _int_arith(op, a, b)
    if ta is float and tb is float:
        return _float_arith(op, a, b)
    raise _eval_error(
        f"Cannot {_ARITH_VERBS[op]} {show_value(a)} (type {type_name(a)}) and "
        f"{show_value(b)} (type {type_name(b)})"
    )


def _int_arith(op: str, a: int, b: int) -> int:
    if op == "add":
        result = a + b
    elif op == "sub":
        result = a - b
    elif op == "mul":
        result = a * b
    else:
        if b == 0:
            what = "divide" if op == "div" else "take the remainder of"
            raise _eval_error(f"Cannot {what} {show_value(a)} by zero")
        quotient = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            quotient = -quotient
        result = quotient if op == "div" else a - b * quotient
    if not INT64_MIN <= result <= INT64_MAX:
        raise _eval_error(
            f"Cannot {_ARITH_VERBS[op]} {show_value(a)} and {show_value(b)}: "
            "the result overflows int64"
        )
    return result


def _float_arith(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        if b == 0.0:
            if a != a or a == 0.0:
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    try:
        return math.fmod(a, b)
    except ValueError:  # fmod(inf, y) and fmod(x, 0.0) are NaN in IEEE arithmetic
        return math.nan


def _negate(x: Any) -> Any:
    if type(x) is int:
        if x == INT64_MIN:
            raise _eval_error(f"Cannot negate {show_value(x)}: the result overflows int64")
        return -x
    if type(x) is float:
        return -x
    raise _eval_error(f"Cannot negate {show_value(x)} (type {type_name(x)})")
