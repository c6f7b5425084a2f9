"""Values and parsed JSON as text for messages, the way Convex shows them.

``render_value`` writes a value as JavaScript would (``12n`` for an Int64,
``ArrayBuffer { byteLength: 3 }``), shortened if long; ``json_preview`` shows
bad JSON input briefly. Validators' descriptions (``engine.validators``) and
validation failures (``engine.validation``) both quote values through here.
"""

from __future__ import annotations

import json
import math
import re

from engine.values import UNSET


def json_preview(obj: object, chars_max: int = 80) -> str:
    """Parsed JSON as compact JSON text, shortened, for messages about bad input."""
    try:
        text = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(obj)
    return text if len(text) <= chars_max else text[: chars_max - 3] + "..."


_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_RENDER_CHARS_MAX = 300


def render_key(name: str) -> str:
    """An object key as JavaScript prints it: bare when it is an identifier, else quoted."""
    return name if _PLAIN_KEY.fullmatch(name) else json.dumps(name)


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0 and math.copysign(1.0, x) < 0:
        return "-0"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def _render(value: object) -> str:
    if value is UNSET:
        return "undefined"
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return f"{value}n"
    if t is float:
        return _number(value)  # type: ignore[arg-type]
    if t is str:
        return json.dumps(value)
    if t is bytes:
        return f"ArrayBuffer {{ byteLength: {len(value)} }}"  # type: ignore[arg-type]
    if t is list:
        return "[" + ", ".join(_render(item) for item in value) + "]"  # type: ignore[attr-defined]
    if t is dict:
        items = (f"{render_key(k)}: {_render(v)}" for k, v in value.items())  # type: ignore[attr-defined]
        return "{" + ", ".join(items) + "}"
    return repr(value)


def render_value(value: object) -> str:
    """A value as JavaScript would show it (``12n`` for Int64), shortened if long."""
    text = _render(value)
    if len(text) > _RENDER_CHARS_MAX:
        return text[: _RENDER_CHARS_MAX - 3] + "..."
    return text
