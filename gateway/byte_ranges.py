"""The ``Range`` header of a file download (RFC 9110 §14), as Convex serves files.

``parse_range(header, size)`` is ``None`` (send the whole file: no header, or
one that does not parse, which a server must ignore), ``UNSATISFIABLE`` (416:
more than one range, as Convex serves only one, or a range wholly past the
end), or ``(first, last)`` byte positions, inclusive, ``last`` clamped to the
end. An empty file is always sent whole.
"""

from __future__ import annotations

import re
from typing import Final

UNSATISFIABLE: Final = "unsatisfiable"
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    if header is None or size == 0:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parsed = [_spec(part) for part in specs.split(",")]
    if not parsed or any(p is None for p in parsed):
        return None
    if len(parsed) != 1:
        return UNSATISFIABLE
    first, last = parsed[0]  # type: ignore[misc]
    if first is None:  # a suffix: the last `last` bytes (a spec has one end at least)
        assert last is not None
        if last == 0:
            return UNSATISFIABLE
        return max(0, size - last), size - 1
    if first >= size:
        return UNSATISFIABLE
    return first, size - 1 if last is None else min(last, size - 1)


def _spec(text: str) -> tuple[int | None, int | None] | None:
    match = _SPEC.match(text)
    if match is None or (not match[1] and not match[2]):
        return None
    first = int(match[1]) if match[1] else None
    last = int(match[2]) if match[2] else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"
