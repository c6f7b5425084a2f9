"""Convex values as plain Python objects: validation, size, total order, equality.

The representation is fixed, so every module can pass values around without
wrapping them:

    Convex     Python
    null       None
    boolean    bool
    Int64      int, within [-2**63, 2**63 - 1]
    Float64    float (any NaN bits, +-inf and -0.0 are distinct values)
    String     str (no lone surrogates)
    Bytes      bytes
    Array      list
    Object     dict with str keys

Nothing else is a value: tuples, sets, bytearray, int subclasses such as enums
are rejected. ``bool`` is a subclass of ``int`` in Python, so every type test
here is on the exact ``type(v)``. ``UNSET`` stands for Convex ``undefined``
(a missing field); it is not storable, but it takes part in the total order so
that index ranges can talk about missing fields.

Validation collects the path of the bad part on the way back up the
recursion (``PathedProblem``), so a valid value pays nothing for paths.
"""

from __future__ import annotations

import json
import marshal
import re
import struct
from typing import Any, TypeAlias

from engine.errors import InvalidValueError, LimitExceededError
from engine.limits import LIMITS

Value: TypeAlias = Any
"""A Convex value in the representation above (Python cannot spell the recursion usefully)."""

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
SYSTEM_FIELDS = ("_id", "_creationTime")


class _Unset:
    """Type of ``UNSET``; one instance per process, and it pickles by name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: object) -> _Unset:
        return self


UNSET: Any = _Unset()
"""Convex ``undefined``: a missing field. Lowest in the total order; never stored."""


class PathedProblem(Exception):
    """Internal signal: what is wrong with a value, and where.

    Raised at the bad part with only a reason; each enclosing array or object
    adds its segment while the exception passes through, so the cost of the
    path is paid only on failure. Callers turn it into a typed error with
    ``to_error``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self._segments: list[str] = []  # innermost first

    def at_index(self, index: int) -> PathedProblem:
        self._segments.append(f"[{index}]")
        return self

    def at_field(self, name: object) -> PathedProblem:
        if isinstance(name, str) and _IDENTIFIER.fullmatch(name):
            self._segments.append("." + name)
        else:
            self._segments.append("[" + _quote(name) + "]")
        return self

    def path(self, prefix: str = "") -> str:
        text = prefix + "".join(reversed(self._segments))
        if not prefix and text.startswith("."):
            text = text[1:]
        return text or "(root)"

    def to_error(self, prefix: str = "", *, depth_max: int | None = None) -> InvalidValueError:
        reason = self.reason
        if reason == TOO_NESTED and depth_max is not None:
            reason = f"{TOO_NESTED}: more than {depth_max} levels of arrays and objects"
        return InvalidValueError(f"Invalid value at {self.path(prefix)}: {reason}")


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOO_NESTED = "value is too nested"


def _quote(name: object) -> str:
    if isinstance(name, str):
        return json.dumps(name)
    return repr(name)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- validation ------------------------------------------------------------


# Field names found valid, so the same few names of many documents are checked once.
_VALID_FIELD_NAMES: set[str] = set()
_VALID_FIELD_NAMES_MAX = 4096


def field_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an object field name (http-api §3.2), or None if it can."""
    if type(name) is str and name in _VALID_FIELD_NAMES:
        return None
    problem = _field_name_problem(name)
    if problem is None and len(_VALID_FIELD_NAMES) < _VALID_FIELD_NAMES_MAX:
        _VALID_FIELD_NAMES.add(name)  # type: ignore[arg-type]
    return problem


def _field_name_problem(name: object) -> str | None:
    if type(name) is not str:
        return f"field names must be strings, got {type(name).__name__} {_describe(name)}"
    if len(name) > LIMITS.field_name_bytes_max:
        return (
            f"field name of {len(name)} characters is longer than "
            f"field_name_bytes_max = {LIMITS.field_name_bytes_max}"
        )
    if name.startswith("$"):
        return f"field name {_quote(name)} starts with '$', which is reserved"
    if not (name.isascii() and name.isprintable()):
        return (
            f"field name {_quote(name)} has a character outside printable ASCII "
            "(0x20-0x7E); field names may only contain those"
        )
    return None


def string_problem(text: str) -> str | None:
    """Why ``text`` is not a Convex string (a lone surrogate), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"string has a lone surrogate at character {exc.start}, which is not valid Unicode"
    return None


def _check(value: Any, depth_left: int) -> None:
    t = type(value)
    if t is str:
        problem = string_problem(value)
        if problem:
            raise PathedProblem(problem)
        return
    if value is None or t is float or t is bool or t is bytes:
        return
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise PathedProblem(f"integer {value} does not fit in a signed 64-bit integer")
        return
    if t is list or t is dict:
        if depth_left <= 0:
            raise PathedProblem(TOO_NESTED)
        if t is list:
            _check_array(value, depth_left - 1)
        else:
            _check_object(value, depth_left - 1)
        return
    if value is UNSET:
        raise PathedProblem("undefined is not a valid Convex value")
    raise PathedProblem(f"{t.__name__} {_describe(value)} is not a supported Convex type")


def _check_array(items: list[Any], depth_left: int) -> None:
    if len(items) > LIMITS.array_items_max:
        raise PathedProblem(
            f"array has {len(items)} elements, more than array_items_max = {LIMITS.array_items_max}"
        )
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - index names the bad element
            _check(item, depth_left)
    except PathedProblem as problem:
        raise problem.at_index(index) from None


def _check_object(obj: dict[Any, Any], depth_left: int) -> None:
    if len(obj) > LIMITS.object_fields_max:
        raise PathedProblem(
            f"object has {len(obj)} fields, more than object_fields_max = "
            f"{LIMITS.object_fields_max}"
        )
    name: object = None
    try:
        for name, item in obj.items():  # noqa: B007 - name names the bad field
            problem = field_name_problem(name)
            if problem:
                raise PathedProblem(problem)
            _check(item, depth_left)
    except PathedProblem as problem:
        raise problem.at_field(name) from None


def check_value(value: Any, *, path: str = "", depth_max: int = LIMITS.value_depth_max) -> None:
    """Raise InvalidValueError (naming the path) unless ``value`` is a valid Convex value.

    Nesting counts containers: a scalar has nesting 0, ``[1]`` has 1; the
    value's nesting must be at most ``depth_max``.
    """
    try:
        _check(value, depth_max)
    except PathedProblem as problem:
        raise problem.to_error(path, depth_max=depth_max) from None


def check_document(doc: Any, *, path: str = "") -> int:
    """Raise unless ``doc`` is storable as a document (limits of function-runtime §6.3);
    its size (``value_size``), which the write limits count too."""
    if type(doc) is not dict:
        raise InvalidValueError(
            f"Invalid value at {path or '(root)'}: a document must be an object, "
            f"got {type(doc).__name__}"
        )
    check_value(doc, path=path, depth_max=LIMITS.document_depth_max)
    for name in doc:
        if name.startswith("_") and name not in SYSTEM_FIELDS:
            where = PathedProblem("").at_field(name).path(path)
            raise InvalidValueError(
                f"Invalid value at {where}: top-level field {_quote(name)} starts with '_', "
                "which is reserved for the system fields _id and _creationTime"
            )
    size = value_size(doc)
    if size > LIMITS.document_bytes_max:
        raise LimitExceededError(
            f"Document{' at ' + path if path else ''} is too large: {size} bytes, "
            f"more than document_bytes_max = {LIMITS.document_bytes_max} bytes"
        )
    return size


def value_size(value: Any) -> int:
    """The size measure of http-api §3.3, used for the document and transaction limits."""
    t = type(value)
    if t is str:
        return (len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))) + 2
    if t is int or t is float:
        return 9
    if value is None or t is bool:
        return 1
    if t is bytes:
        return len(value) + 2
    if t is list:
        return 2 + sum(map(value_size, value))
    if t is dict:
        # Scalar fields measured here, not by a call each: documents are mostly scalars,
        # and this runs for every document a transaction reads.
        total = 2
        for name, item in value.items():
            ti = type(item)
            if ti is float or ti is int:
                total += len(name) + 10
            elif ti is str and item.isascii():
                total += len(name) + 3 + len(item)
            else:
                total += len(name) + 1 + value_size(item)
        return total
    raise InvalidValueError(f"{t.__name__} {_describe(value)} is not a supported Convex type")


# --- total order and equality ---------------------------------------------

_RANK: dict[type, int] = {
    _Unset: 0,
    type(None): 1,
    int: 2,
    float: 3,
    bool: 4,
    str: 5,
    bytes: 6,
    list: 7,
    dict: 8,
}
_FLOAT = struct.Struct("<d")
_U64 = struct.Struct("<Q")
_SIGN_BIT = 1 << 63
_ALL_BITS = (1 << 64) - 1


def float_bits(x: float) -> int:
    """The IEEE 754 bit pattern of ``x`` as an unsigned 64-bit integer."""
    return _U64.unpack(_FLOAT.pack(x))[0]


def float_order_key(x: float) -> int:
    """An unsigned integer whose order is the IEEE total order of ``x``.

    Positive numbers get the sign bit set; negative ones have all bits
    flipped, so more negative sorts lower and negative NaNs sort lowest.
    """
    bits = _U64.unpack(_FLOAT.pack(x))[0]
    return bits ^ _ALL_BITS if bits & _SIGN_BIT else bits | _SIGN_BIT


def _rank(value: Any) -> int:
    rank = _RANK.get(type(value))
    if rank is None:
        raise InvalidValueError(
            f"{type(value).__name__} {_describe(value)} is not a supported Convex type"
        )
    return rank


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def compare_values(a: Any, b: Any) -> int:
    """-1, 0 or 1: the Convex total order (function-runtime §7), UNSET lowest."""
    ta = type(a)
    if ta is not type(b):
        return -1 if _rank(a) < _rank(b) else 1
    if ta is float:
        return _sign(float_order_key(a), float_order_key(b))
    if ta is str or ta is int or ta is bytes or ta is bool:
        return _sign(a, b)
    if ta is list:
        return _compare_arrays(a, b)
    if ta is dict:
        return _compare_objects(a, b)
    _rank(a)  # UNSET and None are equal to themselves; anything else is an error
    return 0


def _compare_arrays(a: list[Any], b: list[Any]) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare_values(x, y)
        if c:
            return c
    return _sign(len(a), len(b))


def _compare_objects(a: dict[str, Any], b: dict[str, Any]) -> int:
    for (ka, va), (kb, vb) in zip(sorted(a.items()), sorted(b.items()), strict=False):
        if ka != kb:
            return -1 if ka < kb else 1
        c = compare_values(va, vb)
        if c:
            return c
    return _sign(len(a), len(b))


def values_equal(a: Any, b: Any) -> bool:
    """Convex equality: ``1 != 1.0``, ``-0.0 != 0.0``, NaN equals NaN of the same bits."""
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        return float_bits(a) == float_bits(b)
    if t is list:
        return len(a) == len(b) and all(map(values_equal, a, b))
    if t is dict:
        if a.keys() != b.keys():
            return False
        return all(values_equal(v, b[k]) for k, v in a.items())
    _rank(a)
    return a == b


# --- names -----------------------------------------------------------------


def is_identifier(name: Any) -> bool:
    """1-64 ASCII letters, digits and '_', not starting with a digit, not all '_'."""
    return (
        type(name) is str
        and 0 < len(name) <= LIMITS.identifier_chars_max
        and _IDENTIFIER.fullmatch(name) is not None
        and name.strip("_") != ""
    )


def check_table_name(name: Any) -> None:
    """Raise InvalidValueError (code InvalidTableName) unless ``name`` is a user table name."""
    if not is_identifier(name):
        raise InvalidValueError(
            f"Invalid table name {_describe(name)}: table names are identifiers of 1 to "
            f"{LIMITS.identifier_chars_max} ASCII letters, digits and underscores, "
            "starting with a letter or underscore and not all underscores",
            code="InvalidTableName",
        )
    if name.startswith("_"):
        raise InvalidValueError(
            f"Invalid table name {name!r}: names starting with '_' are reserved for system tables",
            code="InvalidTableName",
        )


def get_field(doc: Any, path: str) -> Any:
    """The value at a dotted field path such as ``"a.b.c"``; UNSET if any step is missing."""
    current: Any = doc
    for part in path.split("."):
        if type(current) is not dict:
            return UNSET
        current = current.get(part, UNSET)
    return current


def copy_value(value: Any) -> Any:
    """A deep copy of a Convex value (marshal is the fastest exact one)."""
    return marshal.loads(marshal.dumps(value))
