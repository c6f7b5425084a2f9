"""Document ids in the Convex IDv6 text format (function-runtime §6.2).

Binary layout, then base32 text:

    varint(table_number) | internal id (INTERNAL_ID_BYTES) | checksum (CHECKSUM_BYTES)

- varint: unsigned LEB128, 1-5 bytes, least significant 7-bit group first;
  table numbers run from 1 to TABLE_NUMBER_MAX.
- internal id: 16 bytes; new ones are 14 random bytes and the big-endian
  number of days since the Unix epoch (2 bytes).
- checksum: Fletcher-16 modulo 256 over the bytes before it, XOR ID_VERSION,
  stored as the two bytes [c0, c1].
- text: base32 with ALPHABET (Crockford's, lower case), most significant bit
  first, no padding; a partial last group zero-fills its low bits.

Ids of one table all have the same length, and ALPHABET is in ASCII order, so
their text order is the order of their internal ids. The storage form
(``DocumentId.storage_key``) is fixed-width and sorts by table, then internal id.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from engine.errors import IntegrityError, InvalidIdError
from engine.limits import LIMITS

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
INTERNAL_ID_BYTES = 16
RANDOM_BYTES = 14
CHECKSUM_BYTES = 2
ID_VERSION = 0
TABLE_NUMBER_MAX = (1 << 32) - 1
STORAGE_KEY_BYTES = 4 + INTERNAL_ID_BYTES
MS_PER_DAY = 86_400_000

# Text length by varint length (1..5 bytes): base32 of 19..23 bytes.
ID_LENGTHS = frozenset({31, 32, 34, 36, 37})

# Base32 in C where Python has it: ``int(text, 32)`` reads the digits 0-9a-v,
# so decoding translates our alphabet to those; encoding looks up two
# characters (10 bits) at a time.
_TO_INT_DIGITS = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")
_VALID_TEXT = re.compile("[0-9a-hjkmnp-tv-z]*")
_CHAR_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]
_PAIR_SHIFTS = {n: range(n * 10 - 10, -1, -10) for n in range(1, 20)}
_TABLE_KEY = struct.Struct(">I")


def _fail(reason: str) -> InvalidIdError:
    return InvalidIdError(f"Unable to decode ID: {reason}")


def _fletcher16(data: bytes) -> bytes:
    # c1 is the sum of the running sums c0, so both are sums computed in C.
    c0 = sum(data) & 0xFF
    c1 = sum(accumulate(data)) & 0xFF
    return bytes((c0 ^ (ID_VERSION & 0xFF), c1 ^ (ID_VERSION >> 8)))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _check_parts(table_number: object, internal: object) -> None:
    if type(table_number) is not int or not 1 <= table_number <= TABLE_NUMBER_MAX:
        raise InvalidIdError(
            f"Invalid table number {table_number!r}: it must be an integer from 1 to "
            f"{TABLE_NUMBER_MAX}"
        )
    if type(internal) is not bytes or len(internal) != INTERNAL_ID_BYTES:
        raise InvalidIdError(
            f"Invalid internal id {internal!r}: it must be {INTERNAL_ID_BYTES} bytes"
        )


def _base32(data: bytes) -> str:
    chars = (len(data) * 8 + 4) // 5
    pairs = (chars + 1) // 2
    bits = int.from_bytes(data, "big") << (pairs * 10 - len(data) * 8)
    text = "".join([_CHAR_PAIRS[(bits >> shift) & 0x3FF] for shift in _PAIR_SHIFTS[pairs]])
    return text[:chars]  # an odd count made one character of padding only


def _encode(table_number: int, internal: bytes) -> str:
    body = _varint(table_number) + internal
    return _base32(body + _fletcher16(body))


@dataclass(frozen=True, order=True, slots=True)
class DocumentId:
    """A document id: its table's number and the 16-byte internal id."""

    table_number: int
    internal: bytes

    def __post_init__(self) -> None:
        _check_parts(self.table_number, self.internal)

    def encode(self) -> str:
        """The id's text form, as user code and clients see it."""
        return _encode(self.table_number, self.internal)

    def storage_key(self) -> bytes:
        """Fixed-width bytes that sort by table number, then internal id."""
        return _TABLE_KEY.pack(self.table_number) + self.internal

    @classmethod
    def from_storage_key(cls, data: bytes) -> DocumentId:
        """The id whose ``storage_key`` is ``data``; stored data that is not one is damage."""
        if len(data) != STORAGE_KEY_BYTES:
            raise IntegrityError(
                f"Stored document id key has {len(data)} bytes, expected {STORAGE_KEY_BYTES}"
            )
        table_number = _TABLE_KEY.unpack_from(data)[0]
        if table_number == 0:
            raise IntegrityError("Stored document id key has table number 0")
        return cls(table_number, bytes(data[4:]))


def encode_id(table_number: int, internal: bytes) -> str:
    """The text form of the id of ``internal`` in table ``table_number``."""
    _check_parts(table_number, internal)
    return _encode(table_number, internal)


def _decode_varint(buf: bytes) -> tuple[int, int]:
    n = 0
    for i in range(5):
        if i >= len(buf):
            break
        byte = buf[i]
        n |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if n > TABLE_NUMBER_MAX:
                raise _fail("Invalid table number")
            return n, i + 1
    raise _fail("Invalid table number")


def decode_id(text: object) -> DocumentId:
    """Parse an id's text form; InvalidIdError for anything that is not exactly one."""
    if type(text) is not str:
        raise InvalidIdError(f"Unable to decode ID: expected a string, got {type(text).__name__}")
    return _decode_valid_text(text)


# Ids are decoded on every read and write path and the same ones recur;
# DocumentId is immutable, so decoded ids are shared (errors are not cached).
@lru_cache(maxsize=LIMITS.id_cache_entries_max)
def _decode_valid_text(text: str) -> DocumentId:
    if len(text) not in ID_LENGTHS:
        raise _fail(f"Invalid ID length {len(text)}")
    if _VALID_TEXT.fullmatch(text) is None:
        position = next(i for i, c in enumerate(text) if c not in ALPHABET)
        raise _fail(f"Invalid character {text[position]!r} at position {position} in {text!r}")
    spare_bits = len(text) * 5 % 8
    bits = int(text.translate(_TO_INT_DIGITS), 32)
    if bits & ((1 << spare_bits) - 1):
        raise _fail(f"{text!r} is not in canonical form (bits past the last byte are set)")
    buf = (bits >> spare_bits).to_bytes(len(text) * 5 // 8, "big")
    table_number, pos = _decode_varint(buf)
    if table_number == 0:
        raise _fail("Invalid table number")
    end = pos + INTERNAL_ID_BYTES
    if len(buf) != end + CHECKSUM_BYTES:
        raise _fail(f"Invalid ID length {len(text)}")
    if buf[end:] != _fletcher16(buf[:end]):
        raise _fail("Invalid ID checksum")
    # With the spare bits zero and a minimal varint, the id re-encodes to ``text``.
    if pos > 1 and buf[pos - 1] == 0:
        raise _fail(f"{text!r} is not in canonical form (table number not minimal)")
    return DocumentId(table_number, buf[pos:end])


def table_number_of(text: str) -> int:
    """The table number of a valid id (raises InvalidIdError otherwise)."""
    return decode_id(text).table_number


def new_internal_id(random_bytes: Callable[[int], bytes], now_ms: float) -> bytes:
    """A fresh internal id: RANDOM_BYTES from ``random_bytes``, then the day number.

    The clock and randomness are injected so tests and deterministic replays
    can fix them. The day number wraps after 65535 days (the year 2149).
    """
    random_part = random_bytes(RANDOM_BYTES)
    if len(random_part) != RANDOM_BYTES:
        raise ValueError(f"random_bytes returned {len(random_part)} bytes, not {RANDOM_BYTES}")
    days = int(now_ms // MS_PER_DAY) & 0xFFFF
    return bytes(random_part) + days.to_bytes(2, "big")
