"""Convex values to and from JSON (http-api §3).

Three output formats, one input format:

- convex encoded JSON (``to_convex_json``/``dumps``, and the only input,
  ``from_convex_json``/``loads``): lossless. Int64 is ``{"$integer": base64 of
  8 bytes little-endian two's complement}``; a float that JSON cannot carry
  (NaN, +-inf, -0.0) is ``{"$float": base64 of 8 bytes little-endian IEEE}``;
  bytes are ``{"$bytes": standard base64}``. Every JSON number reads as a
  float, even ``5``.
- clean JSON (``to_clean_json``, format ``json``): lossy and readable. Int64 is
  a decimal string, NaN/+-inf are the strings "NaN"/"Infinity"/"-Infinity",
  bytes are a base64 string.
- export JSON (``to_export_json``, format ``export_json``, and snapshot ZIPs):
  Int64 is a JSON integer; non-finite floats and bytes keep ``$float``/``$bytes``.
  ``from_export_json`` reads it back (a JSON number with a point is a float).

The encoders take values that are already valid (``check_value``) and check
only what they must to convert; the decoder trusts nothing and returns a value
that passes ``check_value``. Object keys come out sorted, as the reference
server and the JS client write them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from typing import Any

from engine.errors import InvalidValueError
from engine.limits import LIMITS
from engine.values import (
    INT64_MAX,
    INT64_MIN,
    TOO_NESTED,
    UNSET,
    PathedProblem,
    field_name_problem,
    string_problem,
)

INTEGER_KEY = "$integer"
FLOAT_KEY = "$float"
BYTES_KEY = "$bytes"
UNDEFINED_KEY = "$undefined"
_OBSOLETE_KEYS = {"$set": "Set", "$map": "Map"}

_INT64_LE = struct.Struct("<q")
_FLOAT_LE = struct.Struct("<d")

# The output formats, as small integers so the shared walker can branch cheaply.
_CONVEX = 0
_CLEAN = 1
_EXPORT = 2


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _special_float(x: float) -> bool:
    return x != x or x in (math.inf, -math.inf) or (x == 0.0 and math.copysign(1.0, x) < 0)


def _clean_float(x: float) -> Any:
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    return x


def _to_json(value: Any, fmt: int) -> Any:
    t = type(value)
    if t is str or value is None or t is bool:
        return value
    if t is float:
        if fmt == _CLEAN:
            return _clean_float(value)
        if fmt == _CONVEX and _special_float(value):
            return {FLOAT_KEY: _b64(_FLOAT_LE.pack(value))}
        if fmt == _EXPORT and not math.isfinite(value):
            return {FLOAT_KEY: _b64(_FLOAT_LE.pack(value))}
        return value
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise PathedProblem(f"integer {value} does not fit in a signed 64-bit integer")
        if fmt == _CONVEX:
            return {INTEGER_KEY: _b64(_INT64_LE.pack(value))}
        return str(value) if fmt == _CLEAN else value
    if t is bytes:
        return _b64(value) if fmt == _CLEAN else {BYTES_KEY: _b64(value)}
    if t is list:
        return _array_to_json(value, fmt)
    if t is dict:
        return _object_to_json(value, fmt)
    if value is UNSET:
        raise PathedProblem("undefined is not a valid Convex value")
    raise PathedProblem(f"{t.__name__} {value!r:.60} is not a supported Convex type")


def _array_to_json(items: list[Any], fmt: int) -> list[Any]:
    out = []
    try:
        for item in items:
            out.append(_to_json(item, fmt))
    except PathedProblem as problem:
        raise problem.at_index(len(out)) from None
    return out


def _object_to_json(obj: dict[Any, Any], fmt: int) -> dict[str, Any]:
    for name in obj:
        if type(name) is not str:
            raise PathedProblem(f"field names must be strings, got {name!r:.60}")
    out: dict[str, Any] = {}
    name = None
    try:
        for name in sorted(obj):
            item = obj[name]
            if item is not UNSET:  # a missing field, as the JS client drops undefined
                out[name] = _to_json(item, fmt)
    except PathedProblem as problem:
        raise problem.at_field(name) from None
    return out


def _encode(value: Any, fmt: int) -> Any:
    try:
        return _to_json(value, fmt)
    except PathedProblem as problem:
        raise problem.to_error() from None


def to_convex_json(value: Any) -> Any:
    """The lossless convex encoded JSON form of ``value``, as JSON-able Python objects."""
    return _encode(value, _CONVEX)


def to_clean_json(value: Any) -> Any:
    """The lossy, readable ``json`` format: Int64 as decimal strings, bytes as base64."""
    return _encode(value, _CLEAN)


def to_export_json(value: Any) -> Any:
    """The ``export_json`` format: Int64 as JSON integers, special floats and bytes tagged."""
    return _encode(value, _EXPORT)


def dumps(value: Any) -> str:
    """Compact JSON text of ``to_convex_json(value)``."""
    return json.dumps(
        to_convex_json(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


# --- decoding --------------------------------------------------------------


def _decode_base64(text: object, key: str) -> bytes:
    if type(text) is not str:
        raise PathedProblem(f"{key} must hold a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PathedProblem(f"{key} holds invalid base64 {text!r:.60}") from None


def _decode_special(key: str, body: object, allow_undefined: bool) -> Any:
    if key == INTEGER_KEY:
        raw = _decode_base64(body, key)
        if len(raw) != 8:
            raise PathedProblem(f"$integer must decode to exactly 8 bytes, got {len(raw)}")
        return _INT64_LE.unpack(raw)[0]
    if key == FLOAT_KEY:
        raw = _decode_base64(body, key)
        if len(raw) != 8:
            raise PathedProblem(f"$float must decode to exactly 8 bytes, got {len(raw)}")
        x = _FLOAT_LE.unpack(raw)[0]
        if x == x and not math.isinf(x) and x != 0.0:
            raise PathedProblem(
                f"$float holds the ordinary number {x!r}, which must be sent as a JSON number"
            )
        return x
    if key == BYTES_KEY:
        return _decode_base64(body, key)
    if key == UNDEFINED_KEY:
        if body is not None:
            raise PathedProblem('$undefined must be {"$undefined": null}')
        if not allow_undefined:
            raise PathedProblem("undefined is not a valid Convex value here")
        return UNSET
    if key in _OBSOLETE_KEYS:
        raise PathedProblem(f"{_OBSOLETE_KEYS[key]} ({key}) is no longer a supported Convex type")
    raise PathedProblem(f"field name {key!r} starts with '$', which is reserved")


def _from_json(obj: Any, allow_undefined: bool, depth_left: int, ints: bool = False) -> Any:
    t = type(obj)
    if t is str:
        problem = string_problem(obj)
        if problem:
            raise PathedProblem(problem)
        return obj
    if t is float or t is bool or obj is None:
        return obj
    if t is int and ints:  # export JSON: a JSON integer is an Int64
        if not INT64_MIN <= obj <= INT64_MAX:
            raise PathedProblem(f"integer {obj} does not fit in an Int64")
        return obj
    if t is int:
        try:
            return float(obj)
        except OverflowError:
            raise PathedProblem(f"number {obj} is too large for a float64") from None
    if t is dict and len(obj) == 1:
        ((key, body),) = obj.items()
        if type(key) is str and key.startswith("$"):
            return _decode_special(key, body, allow_undefined)
    if t is list or t is dict:
        if depth_left <= 0:
            raise PathedProblem(TOO_NESTED)
        if t is list:
            return _array_from_json(obj, allow_undefined, depth_left - 1, ints)
        return _object_from_json(obj, allow_undefined, depth_left - 1, ints)
    raise PathedProblem(f"{t.__name__} {obj!r:.60} is not a JSON value")


def _array_from_json(
    items: list[Any], allow_undefined: bool, depth_left: int, ints: bool = False
) -> list[Any]:
    if len(items) > LIMITS.array_items_max:
        raise PathedProblem(
            f"array has {len(items)} elements, more than array_items_max = {LIMITS.array_items_max}"
        )
    out = []
    try:
        for item in items:
            out.append(_from_json(item, allow_undefined, depth_left, ints))
    except PathedProblem as problem:
        raise problem.at_index(len(out)) from None
    return out


def _object_from_json(
    obj: dict[Any, Any], allow_undefined: bool, depth_left: int, ints: bool = False
) -> Any:
    if len(obj) > LIMITS.object_fields_max:
        raise PathedProblem(
            f"object has {len(obj)} fields, more than object_fields_max = "
            f"{LIMITS.object_fields_max}"
        )
    out: dict[str, Any] = {}
    name: Any = None
    try:
        for name, item in obj.items():  # noqa: B007 - name names the bad field
            problem = field_name_problem(name)
            if problem:
                raise PathedProblem(problem)
            out[name] = _from_json(item, allow_undefined, depth_left, ints)
    except PathedProblem as problem:
        raise problem.at_field(name) from None
    return out


def from_convex_json(
    obj: Any,
    *,
    path: str = "",
    allow_undefined: bool = False,
    depth_max: int = LIMITS.value_depth_max,
) -> Any:
    """The value that convex encoded JSON ``obj`` (parsed JSON) stands for.

    ``{"$undefined": null}`` becomes UNSET only with ``allow_undefined`` (filter
    literals, index ranges and patch values use it); errors name ``path``.
    """
    try:
        return _from_json(obj, allow_undefined, depth_max)
    except PathedProblem as problem:
        raise problem.to_error(path, depth_max=depth_max) from None


def from_export_json(obj: Any, *, path: str = "") -> Any:
    """The value that export JSON ``obj`` (parsed JSON) stands for: a JSON integer is
    an Int64, a JSON number with a point or exponent a float64, ``$``-tagged objects
    as in convex encoded JSON (the inverse of ``to_export_json``)."""
    depth_max = LIMITS.value_depth_max
    try:
        return _from_json(obj, False, depth_max, True)
    except PathedProblem as problem:
        raise problem.to_error(path, depth_max=depth_max) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes, *, allow_undefined: bool = False, path: str = "") -> Any:
    """Parse convex encoded JSON text; InvalidValueError for bad JSON or a bad value."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidValueError("Invalid JSON: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidValueError(f"Invalid JSON: {exc}") from None
    return from_convex_json(obj, path=path, allow_undefined=allow_undefined)
