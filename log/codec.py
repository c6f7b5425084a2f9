"""The binary form of a ``LogEntry``: compact, checksummed, fast to decode.

Replay speed is decode speed, so the layout favours Python's fast paths:
fixed-width numbers read with precompiled ``struct.Struct`` objects, strings
sliced and decoded in one call, and lengths as varints whose one-byte case is a
single comparison. A CRC32 guards every entry; decoding never returns garbage.

Layout (all fixed-width integers big-endian)::

    entry   := FORMAT_VERSION:u8  ts:u64  write_count:varint  write*  crc:u32
    write   := flags:u8  id:str  table:str  [prev_ts:u64]  [document]
               prev_ts is present iff flags & FLAG_PREV_TS,
               document iff flags & FLAG_VALUE (absent: a delete, a tombstone)
    str     := byte_length:varint  utf8
    document:= field_count:varint  (key:str value)*       the body of an object
    value   := tag:u8  body
        TAG_NULL     body: nothing
        TAG_FALSE    body: nothing
        TAG_TRUE     body: nothing
        TAG_INT64    body: i64 (two's complement)
        TAG_FLOAT64  body: the 8 IEEE-754 bytes exactly (NaN payloads, -0.0 kept)
        TAG_STRING   body: str
        TAG_BYTES    body: byte_length:varint  raw bytes
        TAG_ARRAY    body: item_count:varint  value*
        TAG_OBJECT   body: document (keys in insertion order)
    varint  := unsigned LEB128, 7 bits per byte, least significant group first,
               high bit set on every byte but the last; at most 10 bytes
    crc     := CRC-32 (zlib) of every byte before it

A change to any of this bumps ``FORMAT_VERSION``; decoders refuse versions
they do not know.

Checks: an entry is checked before it is encoded and after it is decoded
(ts in [1, 2**63 - 1], each ``prev_ts`` in [1, ts), ints within int64, strings
valid UTF-8, object keys unique, nothing left over). A failure raises
``IntegrityError``: a value that cannot be encoded is a Headwater bug (the
engine validates documents first), and bytes that do not decode are damage.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from engine.errors import IntegrityError
from log.entry import TS_MAX, TS_MIN, LogEntry, Write

FORMAT_VERSION = 1

FLAG_PREV_TS = 0x01
FLAG_VALUE = 0x02
_FLAGS_KNOWN = FLAG_PREV_TS | FLAG_VALUE

TAG_NULL = 0x00
TAG_FALSE = 0x01
TAG_TRUE = 0x02
TAG_INT64 = 0x03
TAG_FLOAT64 = 0x04
TAG_STRING = 0x05
TAG_BYTES = 0x06
TAG_ARRAY = 0x07
TAG_OBJECT = 0x08

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_VARINT_BYTES_MAX = 10

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_HEADER = struct.Struct(">BQ")  # version, ts
_unpack_u64 = _U64.unpack_from
_unpack_i64 = _I64.unpack_from
_unpack_f64 = _F64.unpack_from

_CRC_BYTES = _U32.size
_SIZE_MIN = _HEADER.size + 1 + _CRC_BYTES  # header, an empty write count, crc

# Decoding errors that mean "these bytes are not an entry" (a truncated or
# altered buffer surfaces as one of these deep inside the decoder).
_DAMAGE = (IndexError, struct.error, ValueError, RecursionError)


# -- encoding ------------------------------------------------------------------


class _Unencodable(Exception):
    """Internal: a part of a value cannot be encoded; the path grows on the way up."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def encode_entry(entry: LogEntry) -> bytes:
    """The bytes of ``entry``; raises ``IntegrityError`` if it is not a valid entry."""
    if type(entry) is not LogEntry:
        raise IntegrityError(f"Only a LogEntry can be encoded, got {type(entry).__name__}")
    ts = entry.ts
    _check_ts(ts, "ts")
    writes = entry.writes
    if type(writes) is not tuple:
        raise IntegrityError(
            f"LogEntry(ts={ts}).writes must be a tuple, got {type(writes).__name__}"
        )
    out = bytearray(_HEADER.pack(FORMAT_VERSION, ts))
    _put_varint(out, len(writes))
    for index, write in enumerate(writes):
        try:
            _put_write(out, write, ts)
        except _Unencodable as exc:
            where = "".join(reversed(exc.path)) or "(the write)"
            raise IntegrityError(
                f"LogEntry(ts={ts}) write {index} cannot be encoded: {where}: {exc.reason}"
            ) from None
        except RecursionError:
            raise IntegrityError(
                f"LogEntry(ts={ts}) write {index} cannot be encoded: nested too deeply"
            ) from None
    out += _U32.pack(zlib.crc32(out))
    return bytes(out)


def _check_ts(ts: Any, what: str) -> None:
    if type(ts) is not int or not TS_MIN <= ts <= TS_MAX:
        raise IntegrityError(f"A log {what} must be an int in [{TS_MIN}, {TS_MAX}], got {ts!r}")


def _put_write(out: bytearray, write: Any, ts: int) -> None:
    if type(write) is not Write:
        raise _Unencodable(f"expected a Write, got {type(write).__name__}")
    prev_ts, value = write.prev_ts, write.value
    flags = 0
    if prev_ts is not None:
        if type(prev_ts) is not int or not TS_MIN <= prev_ts < ts:
            raise _Unencodable(f"prev_ts must be an int in [{TS_MIN}, {ts}), got {prev_ts!r}")
        flags |= FLAG_PREV_TS
    if value is not None:
        if type(value) is not dict:
            raise _Unencodable(f"value must be a dict or None, got {type(value).__name__}")
        flags |= FLAG_VALUE
    out.append(flags)
    _put_str(out, write.id, "id")
    _put_str(out, write.table, "table")
    if prev_ts is not None:
        out += _U64.pack(prev_ts)
    if value is not None:
        _put_document(out, value)


def _put_varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_str(out: bytearray, s: Any, what: str) -> None:
    if type(s) is not str:
        raise _Unencodable(f"{what} must be a str, got {type(s).__name__}")
    try:
        raw = s.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unencodable(f"{what} is not valid Unicode (a lone surrogate?)") from None
    _put_varint(out, len(raw))
    out += raw


def _put_document(out: bytearray, doc: dict[str, Any]) -> None:
    _put_varint(out, len(doc))
    for key, item in doc.items():
        _put_str(out, key, "an object key")
        try:
            _put_value(out, item)
        except _Unencodable as exc:
            exc.path.append(f".{key}")
            raise


def _put_value(out: bytearray, v: Any) -> None:
    t = type(v)
    if t is str:
        out.append(TAG_STRING)
        _put_str(out, v, "a string")
    elif t is float:
        out.append(TAG_FLOAT64)
        out += _F64.pack(v)
    elif t is dict:
        out.append(TAG_OBJECT)
        _put_document(out, v)
    elif v is None:
        out.append(TAG_NULL)
    elif t is bool:
        out.append(TAG_TRUE if v else TAG_FALSE)
    elif t is int:
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise _Unencodable(f"int {v} is outside int64")
        out.append(TAG_INT64)
        out += _I64.pack(v)
    elif t is bytes:
        out.append(TAG_BYTES)
        _put_varint(out, len(v))
        out += v
    elif t is list:
        out.append(TAG_ARRAY)
        _put_varint(out, len(v))
        for index, item in enumerate(v):
            try:
                _put_value(out, item)
            except _Unencodable as exc:
                exc.path.append(f"[{index}]")
                raise
    else:
        raise _Unencodable(f"{t.__name__} is not a storable value")


# -- decoding ------------------------------------------------------------------


def decode_entry(data: bytes | bytearray | memoryview) -> LogEntry:
    """The entry encoded in ``data``; raises ``IntegrityError`` on any damage."""
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < _SIZE_MIN:
        raise IntegrityError(f"Log entry damaged: {size} bytes is shorter than any entry")
    end = size - _CRC_BYTES
    # Decoding the payload alone means a length that runs too far is cut short
    # at its end (and then caught) instead of reading into the checksum.
    payload = data[:end]
    if zlib.crc32(payload) != _U32.unpack_from(data, end)[0]:
        raise IntegrityError("Log entry damaged: checksum mismatch")
    version, ts = _HEADER.unpack_from(payload, 0)
    if version != FORMAT_VERSION:
        raise IntegrityError(
            f"Log entry has format version {version}; this build reads {FORMAT_VERSION}"
        )
    if not TS_MIN <= ts <= TS_MAX:
        raise IntegrityError(f"Log entry damaged: ts {ts} is out of range")
    try:
        writes, pos = _writes(payload, _HEADER.size, ts)
    except _DAMAGE as exc:
        raise IntegrityError(f"Log entry ts={ts} damaged: {type(exc).__name__}: {exc}") from None
    if pos != end:
        problem = "runs past its end" if pos > end else f"{end - pos} bytes left over"
        raise IntegrityError(f"Log entry ts={ts} damaged: {problem}")
    return LogEntry(ts, writes)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The multi-byte case; callers inline the one-byte case (< 0x80)."""
    n = 0
    shift = 0
    for i in range(pos, pos + _VARINT_BYTES_MAX):
        byte = data[i]
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, i + 1
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def _writes(data: bytes, pos: int, ts: int) -> tuple[tuple[Write, ...], int]:
    count = data[pos]
    pos += 1
    if count >= 0x80:
        count, pos = _varint(data, pos - 1)
    writes: list[Write] = []
    for _ in range(count):
        flags = data[pos]
        if flags & ~_FLAGS_KNOWN:
            raise IntegrityError(f"Log entry ts={ts} damaged: unknown write flags {flags:#x}")
        # Ids and table names are short: their one-byte lengths are read inline.
        n = data[pos + 1]
        if n >= 0x80:
            n, pos = _varint(data, pos + 1)
        else:
            pos += 2
        end = pos + n
        doc_id = data[pos:end].decode("utf-8")
        n = data[end]
        if n >= 0x80:
            n, pos = _varint(data, end)
        else:
            pos = end + 1
        end = pos + n
        table = data[pos:end].decode("utf-8")
        pos = end
        prev_ts = None
        if flags & FLAG_PREV_TS:
            prev_ts = _unpack_u64(data, pos)[0]
            pos += 8
            if not TS_MIN <= prev_ts < ts:
                raise IntegrityError(f"Log entry ts={ts} damaged: prev_ts {prev_ts} out of range")
        value = None
        if flags & FLAG_VALUE:
            value, pos = _document(data, pos)
        writes.append(Write(doc_id, table, prev_ts, value))
    return tuple(writes), pos


def _str(data: bytes, pos: int) -> tuple[str, int]:
    n = data[pos]
    pos += 1
    if n >= 0x80:
        n, pos = _varint(data, pos - 1)
    end = pos + n
    return data[pos:end].decode("utf-8"), end


def _document(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    count = data[pos]
    pos += 1
    if count >= 0x80:
        count, pos = _varint(data, pos - 1)
    doc: dict[str, Any] = {}
    for _ in range(count):
        # The key and the two commonest value types are decoded inline: this
        # loop is where replay spends its time.
        n = data[pos]
        if n >= 0x80:
            n, pos = _varint(data, pos)
        else:
            pos += 1
        end = pos + n
        key = data[pos:end].decode("utf-8")
        tag = data[end]
        if tag == TAG_STRING:
            n = data[end + 1]
            if n >= 0x80:
                n, pos = _varint(data, end + 1)
            else:
                pos = end + 2
            end = pos + n
            doc[key] = data[pos:end].decode("utf-8")
            pos = end
        elif tag == TAG_FLOAT64:
            doc[key] = _unpack_f64(data, end + 1)[0]
            pos = end + 9
        else:
            doc[key], pos = _value(data, end)
    if len(doc) != count:
        raise ValueError("duplicate object key")
    return doc, pos


def _value(data: bytes, pos: int) -> tuple[Any, int]:
    tag = data[pos]
    pos += 1
    if tag == TAG_STRING:
        return _str(data, pos)
    if tag == TAG_FLOAT64:
        return _unpack_f64(data, pos)[0], pos + 8
    if tag == TAG_OBJECT:
        return _document(data, pos)
    if tag == TAG_INT64:
        return _unpack_i64(data, pos)[0], pos + 8
    if tag == TAG_NULL:
        return None, pos
    if tag == TAG_TRUE:
        return True, pos
    if tag == TAG_FALSE:
        return False, pos
    if tag == TAG_ARRAY:
        return _array(data, pos)
    if tag == TAG_BYTES:
        n = data[pos]
        pos += 1
        if n >= 0x80:
            n, pos = _varint(data, pos - 1)
        end = pos + n
        if end > len(data):
            raise ValueError("bytes run past the end")
        return data[pos:end], end
    raise ValueError(f"unknown value tag {tag:#x}")


def _array(data: bytes, pos: int) -> tuple[list[Any], int]:
    count = data[pos]
    pos += 1
    if count >= 0x80:
        count, pos = _varint(data, pos - 1)
    if count > len(data) - pos:
        raise ValueError("array longer than the entry")  # each item takes a byte at least
    items: list[Any] = []
    append = items.append
    for _ in range(count):
        item, pos = _value(data, pos)
        append(item)
    return items, pos
