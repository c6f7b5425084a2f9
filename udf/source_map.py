"""Source maps (v3): map a bundled module's line:column back to the user's file.

Format: ``mappings`` is a list of lines separated by ``;``; each line a list of
segments separated by ``,``; each segment 1, 4 or 5 base64-VLQ numbers:
generated column, source index, original line, original column, name index.
All but the generated column are deltas across the whole map; the generated
column is a delta within its line. VLQ: 6-bit digits, bit 5 = continuation,
least significant group first, the lowest bit of the value is the sign.

``udf.stack_frames`` uses it to map the call sites of an uncaught error to the
user's files (``../convex/messages.ts:10:3``).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}
_VLQ_CONTINUATION = 0x20
_VLQ_DIGIT_MASK = 0x1F

MODULE_URL_PREFIX = "convex:/"  # the sourceURL of every module the runtime loads
# A frame of a stack string (Node.js workers' errors): `at fn (convex:/path:line:col)`.
_FRAME = re.compile(
    r"^\s*at (?:(?P<fn>.*?) \()?"
    + re.escape(MODULE_URL_PREFIX)
    + r"(?P<path>[^:()]+):(?P<line>\d+):(?P<col>\d+)\)?$"
)


def decode_vlq(segment: str) -> list[int]:
    """The integers of one VLQ-encoded segment."""
    values: list[int] = []
    value = shift = 0
    for char in segment:
        digit = _B64_VALUE.get(char)
        if digit is None:
            raise ValueError(f"invalid base64 character {char!r} in source map segment {segment!r}")
        value += (digit & _VLQ_DIGIT_MASK) << shift
        if digit & _VLQ_CONTINUATION:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    if shift:
        raise ValueError(f"truncated source map segment {segment!r}")
    return values


@dataclass(frozen=True)
class OriginalPosition:
    source: str
    line: int  # 1-based
    column: int  # 1-based


class SourceMap:
    """Lookups from generated (line, column) to the original position."""

    def __init__(self, sources: Sequence[str], lines: list[list[tuple[int, int, int, int]]]):
        self._sources = list(sources)
        # Per generated line: sorted (generated col, source index, orig line, orig col).
        self._lines = lines
        self._columns = [[seg[0] for seg in line] for line in lines]

    @classmethod
    def from_json(cls, text: str) -> SourceMap:
        data = json.loads(text)
        lines: list[list[tuple[int, int, int, int]]] = []
        source = orig_line = orig_col = 0
        for line_text in data.get("mappings", "").split(";"):
            column = 0
            segments: list[tuple[int, int, int, int]] = []
            for segment in line_text.split(","):
                if not segment:
                    continue
                fields = decode_vlq(segment)
                column += fields[0]
                if len(fields) >= 4:
                    source += fields[1]
                    orig_line += fields[2]
                    orig_col += fields[3]
                    segments.append((column, source, orig_line, orig_col))
            segments.sort()
            lines.append(segments)
        return cls(data.get("sources", []), lines)

    def lookup(self, line: int, column: int) -> OriginalPosition | None:
        """Original position of a 1-based generated line and column, if mapped."""
        if not 1 <= line <= len(self._lines):
            return None
        segments = self._lines[line - 1]
        i = bisect.bisect_right(self._columns[line - 1], column - 1) - 1
        if i < 0:
            return None
        _, source, orig_line, orig_col = segments[i]
        if not 0 <= source < len(self._sources):
            return None
        return OriginalPosition(self._sources[source], orig_line + 1, orig_col + 1)


def render_stack(
    stack: str,
    lookup: Callable[[str, int, int], OriginalPosition | None],
    is_user_source: Callable[[str], bool],
) -> tuple[str, ...]:
    """The user-code frames of a V8 stack, mapped to original positions."""
    frames: list[str] = []
    for raw in stack.splitlines():
        match = _FRAME.match(raw)
        if match is None:
            continue
        position = lookup(match["path"], int(match["line"]), int(match["col"]))
        if position is None or not is_user_source(position.source):
            continue
        where = f"{position.source}:{position.line}:{position.column}"
        fn = match["fn"]
        frames.append(f"    at {fn} ({where})" if fn else f"    at {where}")
    return tuple(frames)
