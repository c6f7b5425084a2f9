from __future__ import annotations

import copy
import enum
import math
import pickle
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from value_strategies import float_neighbours, floats, int_neighbours, ints, values, values_or_unset

from engine.errors import InvalidValueError, LimitExceededError
from engine.limits import LIMITS
from engine.values import (
    INT64_MAX,
    INT64_MIN,
    UNSET,
    check_document,
    check_table_name,
    check_value,
    compare_values,
    get_field,
    is_identifier,
    value_size,
    values_equal,
)


def float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


NEG_NAN = float_from_bits(0xFFF8_0000_0000_0000)
NEG_NAN_PAYLOAD = float_from_bits(0xFFF0_0000_0000_0001)
POS_NAN = float_from_bits(0x7FF8_0000_0000_0000)
POS_NAN_PAYLOAD = float_from_bits(0x7FF8_0000_0000_0001)


def nested_arrays(levels: int) -> object:
    value: object = 1.0
    for _ in range(levels):
        value = [value]
    return value


# --- UNSET -------------------------------------------------------------------


def test_unset_is_a_falsy_singleton_that_survives_pickle_and_copy():
    assert repr(UNSET) == "UNSET"
    assert not UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET
    assert copy.copy(UNSET) is UNSET
    assert copy.deepcopy({"a": UNSET})["a"] is UNSET


# --- check_value ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        INT64_MIN,
        INT64_MAX,
        -0.0,
        math.nan,
        NEG_NAN_PAYLOAD,
        math.inf,
        "",
        "h\u00e9llo \U0001f600",
        b"\x00\xff",
        [],
        {},
        {"": 1.0, " ~": [b"", {"x": None}]},
    ],
)
def test_valid_values_pass(value):
    check_value(value)


@given(values)
def test_generated_values_pass(value):
    check_value(value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ((1, 2), "tuple"),
        ({1.0}, "set"),
        (bytearray(b"x"), "bytearray"),
        (enum.IntEnum("Color", "RED").RED, "Color"),
        (object(), "object"),
        (1 << 63, "64-bit"),
        (INT64_MIN - 1, "64-bit"),
        ("bad \ud800 surrogate", "surrogate"),
        (UNSET, "undefined"),
        ({1: 2.0}, "must be strings"),
        ({"$a": 1.0}, "'$'"),
        ({"caf\u00e9": 1.0}, "printable ASCII"),
        ({"tab\there": 1.0}, "printable ASCII"),
        ({"del\x7f": 1.0}, "printable ASCII"),
    ],
)
def test_invalid_values_are_rejected_with_a_reason(value, fragment):
    with pytest.raises(InvalidValueError) as info:
        check_value(value)
    assert fragment in str(info.value)
    assert info.value.code == "InvalidValue"


def test_error_names_the_path_of_the_bad_part():
    msg = {"text": "hi", "author": (1,)}
    value = {"messages": [{}, {}, {}, msg]}
    with pytest.raises(InvalidValueError, match=r"^Invalid value at messages\[3\]\.author: tuple"):
        check_value(value)


def test_error_path_quotes_names_that_are_not_identifiers_and_uses_the_prefix():
    with pytest.raises(InvalidValueError, match=r'at args\["a b"\]\[0\]: set'):
        check_value({"a b": [set()]}, path="args")


def test_error_at_top_level_says_root():
    with pytest.raises(InvalidValueError, match=r"at \(root\): "):
        check_value(UNSET)


def test_field_name_length_limit():
    check_value({"a" * LIMITS.field_name_bytes_max: 1.0})
    with pytest.raises(InvalidValueError, match="field_name_bytes_max"):
        check_value({"a" * (LIMITS.field_name_bytes_max + 1): 1.0})


def test_nesting_limit_at_and_past_the_limit():
    check_value(nested_arrays(LIMITS.value_depth_max))
    with pytest.raises(InvalidValueError, match="too nested: more than"):
        check_value(nested_arrays(LIMITS.value_depth_max + 1))
    with pytest.raises(InvalidValueError, match="too nested: more than"):
        check_value({"a": {"b": [1.0]}}, depth_max=2)


def test_array_length_limit():
    check_value([None] * LIMITS.array_items_max)
    with pytest.raises(InvalidValueError, match="array_items_max"):
        check_value([None] * (LIMITS.array_items_max + 1))


def test_object_field_count_limit():
    check_value({f"f{i}": None for i in range(LIMITS.object_fields_max)})
    with pytest.raises(InvalidValueError, match="object_fields_max"):
        check_value({f"f{i}": None for i in range(LIMITS.object_fields_max + 1)})


# --- check_document ------------------------------------------------------------


def test_document_accepts_system_fields_and_nested_underscores():
    check_document({"_id": "x", "_creationTime": 1.0, "body": {"_private": 1.0}})
    # ...and only those: the same document with another top-level underscore is refused.
    with pytest.raises(InvalidValueError, match="reserved"):
        check_document({"_id": "x", "_creationTime": 1.0, "_private": 1.0})


@pytest.mark.parametrize("doc", [[], "text", None, 1.0])
def test_document_must_be_an_object(doc):
    with pytest.raises(InvalidValueError, match="must be an object"):
        check_document(doc)


def test_document_rejects_other_top_level_underscore_fields():
    with pytest.raises(InvalidValueError, match=r"at _secret: .*reserved"):
        check_document({"_secret": 1.0})


def test_document_nesting_limit():
    check_document({"a": nested_arrays(LIMITS.document_depth_max - 1)})
    with pytest.raises(InvalidValueError, match="too nested: more than"):
        check_document({"a": nested_arrays(LIMITS.document_depth_max)})


def test_document_size_limit_names_size_and_limit():
    overhead = value_size({"big": ""})
    check_document({"big": "x" * (LIMITS.document_bytes_max - overhead)})
    too_big = {"big": "x" * (LIMITS.document_bytes_max - overhead + 1)}
    with pytest.raises(LimitExceededError) as info:
        check_document(too_big)
    assert str(LIMITS.document_bytes_max + 1) in str(info.value)
    assert "document_bytes_max" in str(info.value)


# --- value_size ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, 1),
        (True, 1),
        (7, 9),
        (7.5, 9),
        ("abc", 5),
        ("\u00e9", 4),
        (b"ab", 4),
        ([], 2),
        ([None, 1], 2 + 1 + 9),
        ({}, 2),
        ({"ab": None}, 2 + 2 + 1 + 1),
    ],
)
def test_value_size(value, size):
    assert value_size(value) == size


def _size_by_definition(value) -> int:
    """http-api §3.3 spelled out, one call per value: what value_size's shortcuts keep."""
    if isinstance(value, dict):
        return 2 + sum(len(k) + 1 + _size_by_definition(v) for k, v in value.items())
    if isinstance(value, list):
        return 2 + sum(_size_by_definition(v) for v in value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 2
    if isinstance(value, bytes):
        return len(value) + 2
    if value is None or isinstance(value, bool):
        return 1
    return 9


@given(values)
@example({"s": "é", "n": 1, "f": 1.5, "b": True, "z": None, "l": ["a"], "o": {"x": b"1"}})
def test_value_size_agrees_with_its_definition(value):
    assert value_size(value) == _size_by_definition(value)


# --- total order ---------------------------------------------------------------

ASCENDING = [
    UNSET,
    None,
    INT64_MIN,
    -1,
    0,
    1,
    INT64_MAX,
    NEG_NAN,
    NEG_NAN_PAYLOAD,
    -math.inf,
    -1.5,
    -5e-324,
    -0.0,
    0.0,
    5e-324,
    1.0,
    math.inf,
    POS_NAN,
    POS_NAN_PAYLOAD,
    False,
    True,
    "",
    "\x00",
    "a",
    "a\x00",
    "ab",
    "b",
    "\uffff",
    "\U00010000",
    b"",
    b"\x00",
    b"\xff",
    [],
    [None],
    [None, None],
    [1],
    [1.0],
    {},
    {"a": None},
    {"a": None, "b": None},
    {"a": 1},
    {"b": None},
]


def test_documented_order_across_and_within_types():
    for i, a in enumerate(ASCENDING):
        for j, b in enumerate(ASCENDING):
            expected = (i > j) - (i < j)
            assert compare_values(a, b) == expected, (a, b)


def test_nan_equals_only_nan_with_the_same_bits():
    assert compare_values(POS_NAN, float_from_bits(0x7FF8_0000_0000_0000)) == 0
    assert values_equal(POS_NAN, float_from_bits(0x7FF8_0000_0000_0000))
    assert not values_equal(POS_NAN, POS_NAN_PAYLOAD)
    assert not values_equal(POS_NAN, NEG_NAN)


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 1.0), (0.0, -0.0), (True, 1), ({"a": 1}, {"a": True}), ([0], [0.0]), ({"a": 1}, {"b": 1})],
)
def test_convex_equality_is_stricter_than_python_equality(a, b):
    assert not values_equal(a, b)
    assert compare_values(a, b) != 0


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


@given(st.one_of(st.tuples(ints, ints), int_neighbours))
@example((-1, 0))
@example((INT64_MIN, INT64_MAX))
def test_int64_order_is_numeric_order(pair):
    a, b = pair
    assert compare_values(a, b) == sign(a - b)


def numeric_with_signed_zero(x: float) -> tuple[float, float]:
    """Numeric order, with -0.0 just below 0.0 (an oracle independent of the IEEE bits)."""
    return (x, math.copysign(1.0, x))


@given(st.one_of(st.tuples(floats, floats), float_neighbours))
@example((-2.0, -1.0))
@example((-math.inf, -1.7976931348623157e308))
@example((-5e-324, -0.0))
@example((-0.0, 0.0))
@example((NEG_NAN, -math.inf))
@example((math.inf, POS_NAN))
def test_float_order_is_numeric_order_with_nans_beyond_the_infinities(pair):
    a, b = pair
    if math.isnan(a) or math.isnan(b):
        # A NaN with the sign bit sorts below every number, one without it above.
        rank = [(-1 if math.copysign(1.0, x) < 0 else 1) if math.isnan(x) else 0 for x in (a, b)]
        if rank[0] != rank[1]:
            assert compare_values(a, b) == sign(rank[0] - rank[1])
        return
    expected = numeric_with_signed_zero(a), numeric_with_signed_zero(b)
    assert compare_values(a, b) == (expected[0] > expected[1]) - (expected[0] < expected[1])


@given(values_or_unset, values_or_unset)
def test_order_is_antisymmetric_and_agrees_with_equality(a, b):
    c = compare_values(a, b)
    assert c in (-1, 0, 1)
    assert compare_values(b, a) == -c
    assert (c == 0) == values_equal(a, b)
    assert compare_values(a, a) == 0


@given(values_or_unset, values_or_unset, values_or_unset)
def test_order_is_transitive(a, b, c):
    if compare_values(a, b) <= 0 and compare_values(b, c) <= 0:
        assert compare_values(a, c) <= 0


def test_comparing_an_unsupported_type_is_an_error():
    with pytest.raises(InvalidValueError, match="tuple"):
        compare_values((1,), (1,))
    with pytest.raises(InvalidValueError, match="set"):
        values_equal(set(), set())


# --- names and fields ----------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "_a", "users", "A_1", "_" + "x" * 63, "x" * 64])
def test_identifiers(name):
    assert is_identifier(name)


@pytest.mark.parametrize("name", ["", "_", "___", "1a", "a-b", "a b", "x" * 65, "caf\u00e9", 5])
def test_not_identifiers(name):
    assert not is_identifier(name)


def test_table_names():
    check_table_name("messages")
    for bad in ["_messages", "1abc", "", "a.b"]:
        with pytest.raises(InvalidValueError) as info:
            check_table_name(bad)
        assert info.value.code == "InvalidTableName"


def test_get_field_follows_dotted_paths():
    doc = {"a": {"b": {"c": 1.0}, "s": "text"}, "n": None}
    assert get_field(doc, "a.b.c") == 1.0
    assert get_field(doc, "a.b") == {"c": 1.0}
    assert get_field(doc, "n") is None
    assert get_field(doc, "missing") is UNSET
    assert get_field(doc, "a.s.length") is UNSET
    assert get_field(doc, "n.x") is UNSET
