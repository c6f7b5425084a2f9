"""JSON from the network, refused fast when it nests too deeply.

Python's JSON parser recurses once per ``[`` or ``{``: a request of 100,000
brackets costs a deep recursion before it fails, and code that walks the
parsed value recurses again. ``parse_json`` first measures the text's bracket
depth outside strings with a few C-speed passes (count, strip escapes and
strings, keep only brackets, running sum) and refuses anything deeper than
``LIMITS.json_depth_max`` before parsing. Every path that reads JSON a client
sent — HTTP bodies and parameters, sync frames, tokens, the acting-user header,
issuers' key sets — goes through here; each caller turns ``JsonInputError``
into its own protocol's error.

Caveats: the scan trusts the text to be JSON. Text that is not may be measured
wrongly, but only past the point where the parser fails anyway, so the parser
never goes deeper than the measured depth.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from engine.errors import HeadwaterError
from engine.limits import LIMITS

_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the byte it escapes
_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone, a string has no inner quote
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1
_CHUNK_BYTES = 1 << 20  # brackets summed per step: bounded memory, early exit when deep


class JsonInputError(HeadwaterError):
    """Text a client sent is not the JSON we can take (malformed, or nested too deeply)."""

    code = "BadJsonBody"


def json_depth(text: bytes | str, *, stop_above: int | None = None) -> int:
    """How deeply arrays and objects nest in ``text`` (``1`` → 0, ``[[]]`` → 2).

    With ``stop_above``, the scan may stop at the first point deeper than that
    and return that point's depth."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b'"' in raw:
        raw = _STRING.sub(b"", _ESCAPE.sub(b"", raw))
    brackets = np.frombuffer(raw.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    deepest = level = 0
    for start in range(0, len(brackets), _CHUNK_BYTES):
        levels = np.cumsum(_STEP[brackets[start : start + _CHUNK_BYTES]], dtype=np.int64)
        levels += level
        deepest = max(deepest, int(levels.max()))
        level = int(levels[-1])
        if stop_above is not None and deepest > stop_above:
            break
    return deepest


def _openers(text: bytes | str) -> int:
    """How many arrays and objects ``text`` opens at most: a bound on its depth, in C."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: bytes | str, *, depth_max: int | None = None) -> Any:
    """Parse ``text``; JsonInputError if it is not JSON or nests past ``depth_max``.

    ``NaN`` and ``Infinity`` are refused too: they are not JSON (Convex JSON
    spells them ``{"$float": ...}``)."""
    limit = LIMITS.json_depth_max if depth_max is None else depth_max
    if _openers(text) > limit and json_depth(text, stop_above=limit) > limit:
        raise JsonInputError(f"The JSON is nested more than {limit} levels deep.")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # only if the limit was set past what the parser can take
        raise JsonInputError(f"The JSON is nested too deeply (limit {limit}).") from None
    except ValueError as exc:
        raise JsonInputError(f"The JSON is malformed: {exc}") from None
