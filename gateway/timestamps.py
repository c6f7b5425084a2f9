"""Timestamps on the wire: base64 of the 8-byte little-endian ts (sync protocol, HTTP API)."""

from __future__ import annotations

import base64
import binascii
import struct

TS_MAX = (1 << 63) - 1
_TS_LE = struct.Struct("<Q")


def encode_ts(ts: int) -> str:
    if not 0 <= ts <= TS_MAX:
        raise ValueError(f"ts {ts} is outside 0..2^63-1")
    return base64.b64encode(_TS_LE.pack(ts)).decode("ascii")


def parse_ts(text: object, field: str = "ts") -> int:
    """The ts a client sent; ValueError saying what is wrong (callers pick the error type)."""
    if not isinstance(text, str):
        raise ValueError(f"{field} must be a base64 timestamp string, got {text!r:.60}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field} {text!r:.60} is not valid base64") from None
    if len(raw) != 8:
        raise ValueError(f"{field} must decode to exactly 8 bytes, got {len(raw)}")
    ts = _TS_LE.unpack(raw)[0]
    if ts > TS_MAX:
        raise ValueError(f"{field} {ts} is larger than 2^63-1")
    return ts
