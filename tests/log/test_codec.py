"""The log entry codec: exact round trips, a pinned layout, and damage always detected."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.errors import IntegrityError
from log.codec import FORMAT_VERSION, TAG_ARRAY, decode_entry, encode_entry
from log.entry import TS_MAX, LogEntry, Write

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# -- equality that respects float bits and key order ------------------------------


def float_bits(x: float) -> bytes:
    return struct.pack(">d", x)


def same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return float_bits(a) == float_bits(b)
    if type(a) is list:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def same_entry(a: LogEntry, b: LogEntry) -> bool:
    return (
        a.ts == b.ts
        and len(a.writes) == len(b.writes)
        and all(
            (x.id, x.table, x.prev_ts) == (y.id, y.table, y.prev_ts)
            and same_value(x.value, y.value)
            for x, y in zip(a.writes, b.writes, strict=True)
        )
    )


# -- strategies -------------------------------------------------------------------


def nan_from_bits(sign: int, mantissa: int) -> float:
    bits = (sign << 63) | (0x7FF << 52) | mantissa
    value: float = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    return value


nans = st.builds(nan_from_bits, st.integers(0, 1), st.integers(1, (1 << 52) - 1))
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    nans,
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, 5e-324, -1.7976931348623157e308]),
)
ints = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]),
)
texts: st.SearchStrategy[str] = st.one_of(
    st.text(), st.sampled_from(["", "\x00", "a\x00b", "é", "\U0001f600", "\uffff"])
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.binary())


nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """A scalar inside a chain of up to 16 arrays and objects (random trees stay shallow)."""
    value = draw(scalars)
    for _ in range(draw(st.integers(0, 16))):
        value = [value] if draw(st.booleans()) else {draw(texts): value}
    return value


documents = st.dictionaries(texts, nested | deep_values(), max_size=6)


@st.composite
def writes(draw: st.DrawFn, ts: int) -> Write:
    prev_ts = draw(st.none() | st.integers(1, ts - 1)) if ts > 1 else None
    value = draw(st.none() | documents)
    return Write(draw(texts), draw(texts), prev_ts, value)


@st.composite
def entries(draw: st.DrawFn) -> LogEntry:
    ts = draw(st.integers(1, TS_MAX) | st.sampled_from([1, 2, 255, 256, TS_MAX]))
    return LogEntry(ts, tuple(draw(st.lists(writes(ts), max_size=4))))


def typical_entry() -> LogEntry:
    doc_id = "j57c2f6rq6ab0s7x0ngq4z9d0d7h9g0k"
    doc: dict[str, Any] = {
        "_id": doc_id,
        "_creationTime": 1715000000123.456,
        "channel": "general",
        "body": "hello",
        "likes": 3.0,
        "tags": ["a", None, True, 7, b"\x00\x01", {}],
    }
    return LogEntry(1715000000000000002, (Write(doc_id, "messages", 1715000000000000001, doc),))


# -- round trips ------------------------------------------------------------------


@given(entries())
@example(LogEntry(TS_MAX, ()))
@example(LogEntry(1, (Write("", "", None, None),)))
@example(LogEntry(2, (Write("\x00", "t", 1, {"\x00": "\x00", "": {}, "l": []}),)))
def test_round_trip_is_exact(entry: LogEntry) -> None:
    decoded = decode_entry(encode_entry(entry))
    assert same_entry(decoded, entry)


@given(nans)
def test_nan_payloads_survive(nan: float) -> None:
    entry = LogEntry(3, (Write("i", "t", None, {"x": nan, "y": [nan]}),))
    value = decode_entry(encode_entry(entry)).writes[0].value
    assert value is not None
    assert float_bits(value["x"]) == float_bits(nan)
    assert float_bits(value["y"][0]) == float_bits(nan)


def test_negative_zero_and_key_order_survive() -> None:
    doc = {"z": -0.0, "a": 0.0, "m": {"b": 1, "a": 2}}
    value = decode_entry(encode_entry(LogEntry(9, (Write("i", "t", None, doc),)))).writes[0].value
    assert value is not None
    assert list(value) == ["z", "a", "m"] and list(value["m"]) == ["b", "a"]
    assert math.copysign(1.0, value["z"]) == -1.0 and math.copysign(1.0, value["a"]) == 1.0


def test_decoded_values_have_the_exact_python_types() -> None:
    doc = {"n": None, "t": True, "f": False, "i": 1, "x": 1.0, "s": "s", "b": b"b", "l": [1]}
    value = decode_entry(encode_entry(LogEntry(9, (Write("i", "t", None, doc),)))).writes[0].value
    assert value is not None
    assert [type(v) for v in value.values()] == [type(v) for v in doc.values()]


def test_long_strings_bytes_and_arrays_use_multibyte_lengths() -> None:
    doc = {"k" * 300: "s" * 70_000, "b": bytes(range(256)) * 600, "l": list(range(200))}
    entry = LogEntry(9, (Write("i" * 200, "t", None, doc),) * 130)
    assert same_entry(decode_entry(encode_entry(entry)), entry)


def test_layout_is_the_one_in_the_module_header() -> None:
    entry = LogEntry(5, (Write("a", "t", 4, {"x": 1.5}), Write("b", "t", None, None)))
    body = (
        bytes([FORMAT_VERSION])
        + (5).to_bytes(8, "big")
        + b"\x02"  # two writes
        + b"\x03" + b"\x01a" + b"\x01t" + (4).to_bytes(8, "big")  # prev_ts and a document
        + b"\x01" + b"\x01x" + b"\x04" + struct.pack(">d", 1.5)  # {"x": 1.5}
        + b"\x00" + b"\x01b" + b"\x01t"  # a tombstone without prev_ts
    )  # fmt: skip
    assert encode_entry(entry) == body + zlib.crc32(body).to_bytes(4, "big")


def test_decode_accepts_memoryview_and_bytearray() -> None:
    data = encode_entry(typical_entry())
    assert decode_entry(memoryview(data)) == decode_entry(bytearray(data)) == typical_entry()


# -- damage -----------------------------------------------------------------------


@settings(max_examples=60)
@given(entries(), st.data())
def test_truncated_bytes_raise_integrity_error(entry: LogEntry, data: st.DataObject) -> None:
    encoded = encode_entry(entry)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(IntegrityError):
        decode_entry(encoded[:cut])


@settings(max_examples=60)
@given(entries(), st.data())
def test_flipped_bits_raise_integrity_error(entry: LogEntry, data: st.DataObject) -> None:
    encoded = bytearray(encode_entry(entry))
    position = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    encoded[position // 8] ^= 1 << (position % 8)
    with pytest.raises(IntegrityError):
        decode_entry(bytes(encoded))


@settings(max_examples=150)
@given(entries(), st.data())
def test_damage_behind_a_valid_checksum_never_escapes_as_another_error(
    entry: LogEntry, data: st.DataObject
) -> None:
    # Even if the checksum were defeated, the decoder's own checks hold: it
    # raises IntegrityError or returns a well-formed entry, never IndexError.
    body = bytearray(encode_entry(entry)[:-4])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        position = data.draw(st.integers(1, len(body) - 1), label="position")
        body[position] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        body = body[: data.draw(st.integers(1, len(body)), label="cut")]
    damaged = bytes(body) + zlib.crc32(body).to_bytes(4, "big")
    try:
        decoded = decode_entry(damaged)
    except IntegrityError:
        return
    assert encode_entry(decoded) == damaged  # a valid entry, so it re-encodes to itself


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


HEADER = bytes([FORMAT_VERSION]) + (5).to_bytes(8, "big")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than any entry"),
        (encode_entry(typical_entry())[:-1] + b"\x00", "checksum"),
        (with_crc(bytes([FORMAT_VERSION + 1]) + (5).to_bytes(8, "big") + b"\x00"), "version"),
        (with_crc(bytes([FORMAT_VERSION]) + bytes(8) + b"\x00"), "ts 0"),
        (with_crc(HEADER + b"\x00\x00"), "left over"),
        (with_crc(HEADER + b"\x01\x80\x01a\x01t"), "flags"),
        (with_crc(HEADER + b"\x01\x01\x01a\x01t" + (5).to_bytes(8, "big")), "prev_ts"),
        (with_crc(HEADER + b"\x01\x02\x01a\x01t\x01\x01x\x7f"), "unknown value tag"),
        (with_crc(HEADER + b"\x01\x02\x01a\x01t\x02\x01x\x00\x01x\x00"), "duplicate"),
        (with_crc(HEADER + b"\x01\x02\x01a\x01t\x01\x01x" + bytes([TAG_ARRAY]) + b"\x7f"), ""),
        (with_crc(HEADER + b"\x01\x02\x01a\x01t\x01\x01x\x05\x05ab"), "past its end"),
        (with_crc(HEADER + b"\x01\x00\x02\xff\xfe\x01t"), "utf-8"),
        (with_crc(HEADER + b"\x01\x00" + b"\xff" * 11), "varint"),
    ],
)
def test_each_kind_of_damage_has_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(IntegrityError) as info:
        decode_entry(data)
    assert info.value.code == "IntegrityError"
    assert message in str(info.value)


def test_absurd_nesting_is_damage_not_a_crash() -> None:
    body = HEADER + b"\x01\x02\x01a\x01t\x01\x01x" + bytes([TAG_ARRAY, 1]) * 100_000 + b"\x00"
    with pytest.raises(IntegrityError):
        decode_entry(with_crc(body))


# -- refusing to encode what is not an entry --------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (LogEntry(0, ()), "ts must be an int in [1,"),
        (LogEntry(TS_MAX + 1, ()), "ts must be an int"),
        (LogEntry(True, ()), "ts must be an int"),
        (LogEntry(5, [Write("a", "t", None, None)]), "must be a tuple"),  # type: ignore[arg-type]
        (LogEntry(5, ("w",)), "expected a Write"),  # type: ignore[arg-type]
        (LogEntry(5, (Write("a", "t", 5, None),)), "prev_ts must be an int in [1, 5)"),
        (LogEntry(5, (Write("a", "t", 0, None),)), "prev_ts"),
        (LogEntry(5, (Write(1, "t", None, None),)), "id must be a str"),  # type: ignore[arg-type]
        (LogEntry(5, (Write("a", "t", None, []),)), "value must be a dict"),  # type: ignore[arg-type]
        (LogEntry(5, (Write("a", "t", None, {"x": {"y": [0, 1 << 63]}}),)), ".x.y[1]: int"),
        (LogEntry(5, (Write("a", "t", None, {"x": (1,)}),)), ".x: tuple is not a storable"),
        (LogEntry(5, (Write("a", "t", None, {"x": {1, 2}}),)), "set is not a storable"),
        (LogEntry(5, (Write("a", "t", None, {1: 1}),)), "an object key must be a str"),  # type: ignore[dict-item]
        (LogEntry(5, (Write("a", "t", None, {"x": "\ud800"}),)), ".x: a string is not valid"),
        (LogEntry(5, (Write("a", "t", None, {"x": bytearray(b"1")}),)), "bytearray"),
    ],
)
def test_invalid_entries_are_refused_with_the_path(entry: LogEntry, message: str) -> None:
    with pytest.raises(IntegrityError) as info:
        encode_entry(entry)
    assert message in str(info.value)


def test_only_log_entries_are_encoded() -> None:
    with pytest.raises(IntegrityError, match="Only a LogEntry"):
        encode_entry((5, ()))  # type: ignore[arg-type]


def test_entries_are_frozen_and_compare_by_value() -> None:
    import dataclasses

    entry = typical_entry()
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.ts = 7  # type: ignore[misc]
    assert dataclasses.replace(entry, ts=7) == LogEntry(7, entry.writes)
    assert hash(Write("a", "t", None, None)) == hash(
        Write(id="a", table="t", prev_ts=None, value=None)
    )
    assert Write("a", "t", None, None).is_delete
