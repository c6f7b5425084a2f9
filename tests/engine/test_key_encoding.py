from __future__ import annotations

import math
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from value_strategies import float_from_bits, pairs, values_or_unset

from engine.errors import IntegrityError, InvalidValueError
from engine.key_encoding import (
    TAG_BYTES,
    TAG_STRING,
    decode_key,
    encode_key,
    encode_value,
    prefix_successor,
)
from engine.values import INT64_MAX, INT64_MIN, UNSET, compare_values, values_equal


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def bytes_cmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


key_values = values_or_unset
tuples = st.lists(key_values, max_size=4)
# Tuples whose elements collide often, so later elements decide the order.
close_tuples = st.lists(st.sampled_from([UNSET, None, -1, 0, -0.0, 0.0, "", "a", b""]), max_size=3)


def compare_tuples(a: list, b: list) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare_values(x, y)
        if c:
            return c
    return sign(len(a) - len(b))


def tuples_equal(a: list, b: list) -> bool:
    return len(a) == len(b) and all(map(values_equal, a, b))


# --- the guarantees, as properties ---------------------------------------------


NEG_NAN = float_from_bits(0xFFF8_0000_0000_0000)


@given(pairs)
# The int64 sign bit: negatives below zero and positives, at both ends of the range.
@example((-1, 0))
@example((INT64_MIN, INT64_MAX))
@example((-2, -1))
# Negative floats: IEEE bits sort backwards there, so all bits must flip.
@example((-2.0, -1.0))
@example((-math.inf, -1.7976931348623157e308))
@example((-5e-324, -0.0))
@example((-0.0, 0.0))
@example((NEG_NAN, -math.inf))
@example((math.inf, math.nan))
# Embedded zeros and prefixes: the shorter sorts first, an escaped zero above the end.
@example(("a", "a\x00"))
@example(("", "\x00"))
@example(("a\x00", "a\x01"))
@example((b"", b"\x00"))
@example((b"\x00", b"\x00\xff"))
@example(([], [UNSET]))
# Types rank before values: 1 (int64) sorts below -1.0 (float64).
@example((1, -1.0))
def test_byte_order_is_value_order(pair):
    a, b = pair
    assert bytes_cmp(encode_value(a), encode_value(b)) == compare_values(a, b)


@given(st.one_of(st.tuples(tuples, tuples), st.tuples(close_tuples, close_tuples)))
@example(([0, -1], [0, 1]))
@example(([-1.0], [-1.0, UNSET]))
@example((["a"], ["a", "\x00"]))
def test_tuple_byte_order_is_lexicographic_value_order(pair):
    a, b = pair
    assert bytes_cmp(encode_key(a), encode_key(b)) == compare_tuples(a, b)


@given(st.one_of(tuples, close_tuples))
@example([INT64_MIN, -1, NEG_NAN, -0.0, "a\x00", b"\x00\xff", [{"": UNSET}]])
def test_decode_inverts_encode(t):
    assert tuples_equal(decode_key(encode_key(t)), t)


@given(pairs)
def test_no_encoding_is_a_proper_prefix_of_another(pair):
    a, b = pair
    ea, eb = encode_value(a), encode_value(b)
    if ea != eb:
        assert not eb.startswith(ea)


@given(tuples, tuples)
def test_prefix_range_holds_exactly_the_keys_starting_with_the_prefix(prefix, key):
    low = encode_key(prefix)
    high = prefix_successor(low)
    encoded = encode_key(key)
    in_range = low <= encoded and (high is None or encoded < high)
    starts_with = len(key) >= len(prefix) and tuples_equal(key[: len(prefix)], prefix)
    assert in_range == starts_with


@given(tuples, tuples)
def test_keys_extending_a_prefix_fall_in_its_range(prefix, rest):
    low = encode_key(prefix)
    high = prefix_successor(low)
    encoded = encode_key(prefix + rest)
    assert encoded.startswith(low)
    assert high is None or encoded < high


# --- examples ------------------------------------------------------------------

ASCENDING = [
    UNSET,
    None,
    INT64_MIN,
    -1,
    0,
    INT64_MAX,
    float_from_bits(0xFFF8_0000_0000_0000),
    -math.inf,
    -1.0,
    -0.0,
    0.0,
    1.0,
    math.inf,
    math.nan,
    False,
    True,
    "",
    "\x00",
    "\x00\x00",
    "a",
    "a\x00",
    "a\x00b",
    "a\x01",
    "\U00010000",
    b"",
    b"\x00",
    b"\xff",
    [],
    [UNSET],
    [None],
    [None, None],
    [""],
    [[]],
    {},
    {"": None},
    {"a": None},
    {"a": None, "b": None},
    {"a": 1},
]


def test_examples_sort_in_convex_order():
    encoded = [encode_value(v) for v in ASCENDING]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)


def test_int_float_and_strings_have_the_documented_layout():
    assert encode_value(1) == bytes.fromhex("05 8000000000000001")
    assert encode_value(1.5) == bytes.fromhex("0d bff8000000000000")
    assert encode_value("a\x00") == bytes.fromhex("10 61 00ff 0000")
    assert encode_value({"a": True}) == bytes.fromhex("15 10 61 0000 0f 00")


def test_object_encoding_ignores_insertion_order():
    assert encode_value({"b": 1.0, "a": 2.0}) == encode_value({"a": 2.0, "b": 1.0})


def test_decode_keeps_types_and_nan_bits():
    odd_nan = float_from_bits(0x7FF0_0000_0000_0001)
    (v1, v2, v3, v4) = decode_key(encode_key([odd_nan, -0.0, 1, True]))
    assert struct.pack("<d", v1) == struct.pack("<d", odd_nan)
    assert math.copysign(1.0, v2) == -1.0
    assert type(v3) is int
    assert v4 is True


@pytest.mark.parametrize(
    ("data", "successor"),
    [
        (b"ab", b"ac"),
        (b"a\xff", b"b"),
        (b"a\xfe\xff\xff", b"a\xff"),
        (b"\xff\xff", None),
        (b"", None),
    ],
)
def test_prefix_successor(data, successor):
    assert prefix_successor(data) == successor


# --- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ((1,), "tuple"),
        (1 << 63, "int64"),
        (INT64_MIN - 1, "int64"),
        ([1, {1: 2}], "field names"),
        ("\ud800", "surrogate"),
    ],
)
def test_values_that_cannot_be_encoded(value, fragment):
    with pytest.raises(InvalidValueError, match=fragment):
        encode_value(value)
    with pytest.raises(InvalidValueError, match=fragment):
        encode_key(["ok", value])


@pytest.mark.parametrize(
    ("data", "position", "reason"),
    [
        (b"\x02", 0, "unknown tag 0x02"),
        (b"\x10ok\x00\x00\x07", 5, "unknown tag 0x07"),  # after a good value
        (b"\x05\x00\x00", 1, "truncated number"),
        (b"\x0d\x00", 1, "truncated number"),
        (bytes([TAG_STRING]) + b"abc", 1, "unterminated string or bytes"),
        (bytes([TAG_BYTES]) + b"ab\x00", 1, "unterminated string or bytes"),
        (bytes([TAG_STRING]) + b"a\x00\x01\x00\x00", 2, "0x00 followed by 0x01 inside a string"),
        (bytes([TAG_STRING]) + b"a\x00\xffb\x00", 1, "unterminated string or bytes"),
        (bytes([TAG_STRING]) + b"\xff\x00\x00", 1, "string is not UTF-8"),
        (b"\x12\x03", 2, "unterminated array"),
        (b"\x15\x03\x03\x00", 1, "object field name is not a string"),
        (b"\x15\x10a\x00\x00", 5, "truncated"),  # object field without a value
        (b"\x15\x10a\x00\x00\x03", 6, "unterminated object"),
    ],
)
def test_malformed_keys_raise_integrity_errors_naming_where_and_why(data, position, reason):
    with pytest.raises(IntegrityError) as info:
        decode_key(data)
    assert str(info.value) == (
        f"Malformed index key at byte {position}: {reason} (key {data.hex()})"
    )


def test_a_malformed_key_error_shows_only_the_start_of_a_long_key():
    data = bytes([TAG_STRING]) + b"x" * 500
    with pytest.raises(IntegrityError) as info:
        decode_key(data)
    assert str(info.value).endswith(f"(key {data[:64].hex()})")
