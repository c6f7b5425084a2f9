"""Commit timestamps on the command line: ``--ts`` in any form a user has at hand.

A commit ts is nanoseconds since the Unix epoch. Users meet it in three
spellings, and ``--ts`` takes each of them:

    1795000000123456789               nanoseconds, as ``headwater ts`` and the log print it
    FRXV2Kx06Rg=                      base64 of the 8-byte little-endian ts (/api/query_ts)
    2026-12-03T15:04:05.123456789Z    ISO-8601; up to 9 fractional digits; no offset = UTC

``format_ts`` prints a ts in all three, so any of them can be pasted back.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from gateway.timestamps import TS_MAX, encode_ts, parse_ts

_NS_PER_S = 1_000_000_000
_FRACTION = re.compile(r"^(?P<head>[^.,]*[T ]\d\d:\d\d:\d\d)[.,](?P<digits>\d+)(?P<tail>.*)$")
TS_HELP = "commit ts: nanoseconds, base64 (as /api/query_ts returns) or ISO-8601 time"


def parse_ts_argument(text: str) -> int:
    """The ts a user typed, in any of the three forms; ValueError naming the forms."""
    text = text.strip()
    if re.fullmatch(r"\d{1,19}", text):
        ts = int(text)
        if ts > TS_MAX:
            raise ValueError(f"ts {text} is larger than 2^63-1")
        return ts
    if re.match(r"\d{4}-\d\d-\d\d", text):
        return _parse_iso(text)
    try:
        return parse_ts(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a ts: give nanoseconds (1795000000123456789), base64 as "
            "/api/query_ts returns it, or an ISO-8601 time (2026-12-03T15:04:05Z); "
            "`headwater ts` prints the latest one"
        ) from None


def _parse_iso(text: str) -> int:
    """ISO-8601 to ns, keeping all 9 fractional digits (datetime keeps only 6)."""
    fraction_ns = 0
    match = _FRACTION.match(text)
    if match is not None:
        digits = match["digits"]
        if len(digits) > 9:
            raise ValueError(f"{text!r}: a ts has at most 9 fractional digits (nanoseconds)")
        fraction_ns = int(digits.ljust(9, "0"))
        text = match["head"] + match["tail"]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time (like 2026-12-03T15:04:05Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    ts = micros * 1000 + fraction_ns
    if not 0 <= ts <= TS_MAX:
        raise ValueError(f"{text!r} is outside the range of commit timestamps")
    return ts


def format_iso(ts: int) -> str:
    """``ts`` as ISO-8601 UTC with nanoseconds, which ``parse_ts_argument`` reads back exactly."""
    seconds, ns = divmod(ts, _NS_PER_S)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def format_ts(ts: int) -> str:
    """One line with the three spellings of ``ts``."""
    return f"{ts}  {encode_ts(ts)}  {format_iso(ts)}"


def ts_argument(text: str) -> int:
    """``argparse`` type for ``--ts``: a bad value is a usage error naming the accepted forms."""
    try:
        return parse_ts_argument(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
