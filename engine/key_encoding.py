"""Order-preserving byte encoding of Convex values and tuples of values.

Index keys are stored as bytes and compared as bytes, so this encoding must
sort exactly like ``compare_values`` (function-runtime §7). Each value is a
tag byte followed by a body:

    TAG_UNSET   0x01  no body
    TAG_NULL    0x03  no body
    TAG_INT64   0x05  8 bytes big-endian of (n + 2**63): the sign bit flipped
    TAG_FLOAT64 0x0D  8 bytes big-endian of the IEEE bits, sign bit flipped when
                      positive, all bits flipped when negative (IEEE total order)
    TAG_FALSE   0x0E  no body
    TAG_TRUE    0x0F  no body
    TAG_STRING  0x10  UTF-8 bytes, each 0x00 escaped as 0x00 0xFF, then 0x00 0x00
    TAG_BYTES   0x11  the bytes, escaped the same way, then 0x00 0x00
    TAG_ARRAY   0x12  the encoded elements, then 0x00
    TAG_OBJECT  0x15  per field in ascending name order: the name encoded as a
                      string (with its tag), the encoded value; then 0x00

Why it works: tags follow the type rank. An escaped body never holds
0x00 0x00, and the terminator sorts below any other byte that can follow a
body's 0x00 (0xFF), so shorter strings sort first. Array and object
terminators (0x00) sort below every tag. No encoding is a proper prefix of
another, so a key tuple is the plain concatenation of its encoded values, and
tuples compare lexicographically.

Caveats: ``UNSET`` may appear anywhere the caller puts it (index ranges use it
for missing fields); validation of documents happens elsewhere. Decoding
trusts nothing: a malformed key raises IntegrityError.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from engine.errors import IntegrityError, InvalidValueError
from engine.values import UNSET

TAG_UNSET = 0x01
TAG_NULL = 0x03
TAG_INT64 = 0x05
TAG_FLOAT64 = 0x0D
TAG_FALSE = 0x0E
TAG_TRUE = 0x0F
TAG_STRING = 0x10
TAG_BYTES = 0x11
TAG_ARRAY = 0x12
TAG_OBJECT = 0x15
END = 0x00  # ends an array or an object
ESCAPE = 0xFF  # follows an escaped 0x00 inside a string or bytes body

_ESCAPED_ZERO = b"\x00\xff"
_BODY_END = b"\x00\x00"
_SIGN_BIT = 1 << 63
_ALL_BITS = (1 << 64) - 1

_TAGGED_U64 = struct.Struct(">BQ")
_FLOAT_BITS = struct.Struct("<d")
_U64_LE = struct.Struct("<Q")
_U64_BE = struct.Struct(">Q")

_ENCODED_UNSET = bytes([TAG_UNSET])
_ENCODED_NULL = bytes([TAG_NULL])
_ENCODED_FALSE = bytes([TAG_FALSE])
_ENCODED_TRUE = bytes([TAG_TRUE])
_STRING_TAG = bytes([TAG_STRING])
_BYTES_TAG = bytes([TAG_BYTES])
_ARRAY_TAG = bytes([TAG_ARRAY])
_OBJECT_TAG = bytes([TAG_OBJECT])
_END = bytes([END])


def _encode_float(x: float) -> bytes:
    bits = _U64_LE.unpack(_FLOAT_BITS.pack(x))[0]
    bits = bits ^ _ALL_BITS if bits & _SIGN_BIT else bits | _SIGN_BIT
    return _TAGGED_U64.pack(TAG_FLOAT64, bits)


def _encode_string(text: str) -> bytes:
    # str.encode() without arguments takes CPython's fast UTF-8 path.
    if "\x00" in text:
        return _STRING_TAG + text.encode().replace(b"\x00", _ESCAPED_ZERO) + _BODY_END
    return _STRING_TAG + text.encode() + _BODY_END


def _encode(value: Any) -> bytes:
    t = type(value)
    if t is str:
        return _encode_string(value)
    if t is float:
        return _encode_float(value)
    if t is int:
        return _TAGGED_U64.pack(TAG_INT64, value + _SIGN_BIT)
    if t is bool:
        return _ENCODED_TRUE if value else _ENCODED_FALSE
    if value is None:
        return _ENCODED_NULL
    if t is bytes:
        raw = value.replace(b"\x00", _ESCAPED_ZERO) if b"\x00" in value else value
        return _BYTES_TAG + raw + _BODY_END
    if t is list:
        return _ARRAY_TAG + b"".join(map(_encode, value)) + _END
    if t is dict:
        parts = [_OBJECT_TAG]
        for name in sorted(value):
            if type(name) is not str:
                raise InvalidValueError(f"field names must be strings, got {name!r}")
            parts.append(_encode_string(name))
            parts.append(_encode(value[name]))
        parts.append(_END)
        return b"".join(parts)
    if value is UNSET:
        return _ENCODED_UNSET
    raise InvalidValueError(f"{t.__name__} {value!r:.60} is not a supported Convex type")


def encode_value(value: Any) -> bytes:
    """The order-preserving encoding of one value (UNSET allowed)."""
    try:
        return _encode(value)
    except struct.error:
        raise InvalidValueError(f"integer in {value!r:.80} does not fit in int64") from None
    except UnicodeEncodeError as exc:
        raise InvalidValueError(f"string with a lone surrogate cannot be encoded: {exc}") from None
    except TypeError as exc:  # sorted() over mixed key types
        raise InvalidValueError(f"cannot encode {value!r:.80}: {exc}") from None


def encode_key(values: Sequence[Any]) -> bytes:
    """The encoding of a tuple of values: the concatenation of each value's encoding."""
    try:
        out = b""
        for value in values:  # cheaper than a join for the few values of a key
            out += _encode(value)
        return out
    except (struct.error, UnicodeEncodeError, TypeError):
        for value in values:
            encode_value(value)  # raises the clear error
        raise


def prefix_successor(data: bytes) -> bytes | None:
    """The smallest byte string above every string that starts with ``data``.

    None when there is none (``data`` is empty or all 0xFF). With the
    prefix-free encoding, ``[encode_key(p), prefix_successor(encode_key(p)))``
    holds exactly the keys whose tuple starts with ``p``.
    """
    stripped = data.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


# --- decoding --------------------------------------------------------------


def _corrupt(data: bytes, pos: int, what: str) -> IntegrityError:
    return IntegrityError(f"Malformed index key at byte {pos}: {what} (key {data[:64].hex()})")


def _decode_body(data: bytes, pos: int) -> tuple[bytes, int]:
    """An escaped string or bytes body starting at ``pos``; returns it and the next position."""
    start = pos
    end = data.find(b"\x00", pos)
    if end < 0 or end + 1 >= len(data):
        raise _corrupt(data, start, "unterminated string or bytes")
    if data[end + 1] == 0x00:
        return data[pos:end], end + 2
    pieces = []
    while True:
        if end < 0 or end + 1 >= len(data):
            raise _corrupt(data, start, "unterminated string or bytes")
        follower = data[end + 1]
        pieces.append(data[pos:end])
        if follower == 0x00:
            return b"\x00".join(pieces), end + 2
        if follower != ESCAPE:
            raise _corrupt(data, end, f"0x00 followed by 0x{follower:02x} inside a string")
        pos = end + 2
        end = data.find(b"\x00", pos)


def _decode(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise _corrupt(data, pos, "truncated")
    tag = data[pos]
    pos += 1
    if tag == TAG_STRING:
        start = pos
        body, pos = _decode_body(data, pos)
        try:
            return body.decode("utf-8"), pos
        except UnicodeDecodeError:
            raise _corrupt(data, start, "string is not UTF-8") from None
    if tag == TAG_FLOAT64 or tag == TAG_INT64:
        if pos + 8 > len(data):
            raise _corrupt(data, pos, "truncated number")
        bits = _U64_BE.unpack_from(data, pos)[0]
        if tag == TAG_INT64:
            return bits - _SIGN_BIT, pos + 8
        bits = bits ^ _SIGN_BIT if bits & _SIGN_BIT else bits ^ _ALL_BITS
        return _FLOAT_BITS.unpack(_U64_LE.pack(bits))[0], pos + 8
    if tag == TAG_NULL:
        return None, pos
    if tag == TAG_FALSE or tag == TAG_TRUE:
        return tag == TAG_TRUE, pos
    if tag == TAG_BYTES:
        return _decode_body(data, pos)
    if tag == TAG_ARRAY:
        items = []
        while pos < len(data) and data[pos] != END:
            item, pos = _decode(data, pos)
            items.append(item)
        if pos >= len(data):
            raise _corrupt(data, pos, "unterminated array")
        return items, pos + 1
    if tag == TAG_OBJECT:
        return _decode_object(data, pos)
    if tag == TAG_UNSET:
        return UNSET, pos
    raise _corrupt(data, pos - 1, f"unknown tag 0x{tag:02x}")


def _decode_object(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    obj: dict[str, Any] = {}
    while pos < len(data) and data[pos] != END:
        if data[pos] != TAG_STRING:
            raise _corrupt(data, pos, "object field name is not a string")
        name, pos = _decode(data, pos)
        obj[name], pos = _decode(data, pos)
    if pos >= len(data):
        raise _corrupt(data, pos, "unterminated object")
    return obj, pos + 1


def decode_key(data: bytes) -> list[Any]:
    """The tuple of values that ``encode_key`` turned into ``data``."""
    values = []
    pos = 0
    while pos < len(data):
        value, pos = _decode(data, pos)
        values.append(value)
    return values
