from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.convex_json import (
    dumps,
    from_convex_json,
    from_export_json,
    loads,
    to_clean_json,
    to_convex_json,
    to_export_json,
)
from engine.errors import InvalidValueError
from engine.limits import LIMITS
from engine.values import INT64_MAX, INT64_MIN, UNSET, check_value, values_equal


def float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


field_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=5
).filter(lambda s: not s.startswith("$"))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(),
    st.integers(0, (1 << 64) - 1).map(float_from_bits),
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, 5e-324]),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(field_names, children, max_size=4)
    ),
    max_leaves=10,
)


# --- encoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (42, {"$integer": "KgAAAAAAAAA="}),
        (-1, {"$integer": "//////////8="}),
        (math.nan, {"$float": "AAAAAAAA+H8="}),
        (math.inf, {"$float": "AAAAAAAA8H8="}),
        (-math.inf, {"$float": "AAAAAAAA8P8="}),
        (-0.0, {"$float": "AAAAAAAAAIA="}),
        (b"hi", {"$bytes": "aGk="}),
        (1.5, 1.5),
        (0.0, 0.0),
        (None, None),
        (True, True),
        ("s", "s"),
        ([1.0, "x"], [1.0, "x"]),
    ],
)
def test_documented_encodings(value, encoded):
    assert to_convex_json(value) == encoded
    assert values_equal(from_convex_json(encoded), value)


def test_dumps_is_compact_with_sorted_keys():
    assert dumps({"b": 1.0, "a": [2, None]}) == '{"a":[{"$integer":"AgAAAAAAAAA="},null],"b":1.0}'
    assert dumps("caf\u00e9") == '"caf\u00e9"'


def test_undefined_fields_are_dropped_but_undefined_values_are_errors():
    assert to_convex_json({"a": UNSET, "b": 1.0}) == {"b": 1.0}
    with pytest.raises(InvalidValueError, match=r"at \[1\]: undefined"):
        to_convex_json([1.0, UNSET])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [(1, 2)]}, r"at a\[0\]: tuple"),
        ({"n": 1 << 63}, "at n: integer"),
        ({1: 2.0}, "field names must be strings"),
    ],
)
def test_encoding_rejects_what_is_not_a_value(value, message):
    for encode in (to_convex_json, to_clean_json, to_export_json, dumps):
        with pytest.raises(InvalidValueError, match=message):
            encode(value)


@given(values)
def test_round_trip_through_text(value):
    text = dumps(value)
    json.loads(text)  # plain JSON, no NaN literals
    back = loads(text)
    assert values_equal(back, value)
    check_value(back)


@given(values)
@example({"i": 5, "f": 5.0, "z": -0.0, "n": math.nan, "b": b"\x00", "big": INT64_MIN})
def test_export_json_round_trips_through_text(value):
    # Snapshot ZIPs: an Int64 is a JSON integer, a float always has a point or exponent.
    text = json.dumps(to_export_json(value), allow_nan=False)
    back = from_export_json(json.loads(text))
    assert values_equal(back, value)
    check_value(back)


def test_export_json_integers_must_fit_an_int64():
    with pytest.raises(InvalidValueError, match="Int64"):
        from_export_json({"n": INT64_MAX + 1})


# --- decoding ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["5", "5.0", "-0", "1e3", "12345678901234567890"])
def test_every_json_number_is_a_float(text):
    value = loads(text)
    assert type(value) is float
    assert value == float(json.loads(text))


def test_large_json_integers_too_big_for_a_float_are_rejected():
    with pytest.raises(InvalidValueError, match="too large"):
        from_convex_json(10**400)


def test_special_floats_decode_including_plus_zero():
    assert math.copysign(1.0, loads('{"$float":"AAAAAAAAAAA="}')) == 1.0
    assert math.copysign(1.0, loads('{"$float":"AAAAAAAAAIA="}')) == -1.0
    odd_nan = loads('{"$float":"AQAAAAAA8H8="}')
    assert struct.pack("<d", odd_nan) == bytes.fromhex("010000000000f07f")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"$integer": "KgAAAAAAAA=="}, "exactly 8 bytes, got 7"),
        ({"$integer": "KgAAAAAAAAAA"}, "exactly 8 bytes, got 9"),
        ({"$integer": "not base64!"}, "invalid base64"),
        ({"$integer": 42}, "base64 string"),
        ({"$float": "AAAAAAAA+D8="}, "ordinary number 1.5"),
        ({"$float": "AQAAAAAAAAA="}, "ordinary number 5e-324"),
        ({"$float": "AAAA"}, "exactly 8 bytes"),
        ({"$bytes": "a=b="}, "invalid base64"),
        ({"$foo": 1.0}, "'\\$foo' starts with '\\$'"),
        ({"$set": []}, "no longer"),
        ({"$map": []}, "no longer"),
        ({"$undefined": None}, "undefined is not a valid Convex value"),
        ({"$undefined": 1.0}, "null"),
        ({"$integer": "KgAAAAAAAAA=", "x": 1.0}, "'\\$'"),
        ({"caf\u00e9": 1.0}, "printable ASCII"),
        ("\ud800", "surrogate"),
        ((1.0,), "tuple"),
    ],
)
def test_decoding_rejects_bad_input(obj, message):
    with pytest.raises(InvalidValueError, match=message):
        from_convex_json(obj)


def test_decoding_errors_name_the_path():
    obj = {"messages": [{}, {"author": {"$foo": 1.0}}]}
    with pytest.raises(InvalidValueError, match=r"at args\.messages\[1\]\.author: "):
        from_convex_json(obj, path="args")


def test_undefined_is_accepted_only_when_allowed():
    assert loads('{"$undefined":null}', allow_undefined=True) is UNSET
    assert loads('{"a":{"$undefined":null}}', allow_undefined=True) == {"a": UNSET}
    with pytest.raises(InvalidValueError, match=r"at a: undefined"):
        loads('{"a":{"$undefined":null}}')


@pytest.mark.parametrize(
    "text", ["", "{", "[1,]", "NaN", "[Infinity]", "-Infinity", '{"a":1} x', b"\xff"]
)
def test_invalid_json_text_is_an_invalid_value(text):
    with pytest.raises(InvalidValueError, match="Invalid JSON"):
        loads(text)


def test_deep_json_is_rejected_cleanly():
    with pytest.raises(InvalidValueError, match="too nested"):
        loads("[" * (LIMITS.value_depth_max + 1) + "]" * (LIMITS.value_depth_max + 1))
    with pytest.raises(InvalidValueError):
        loads("[" * 100_000 + "]" * 100_000)


def test_decoding_enforces_array_and_object_limits():
    with pytest.raises(InvalidValueError, match="array_items_max"):
        from_convex_json([None] * (LIMITS.array_items_max + 1))
    with pytest.raises(InvalidValueError, match="object_fields_max"):
        from_convex_json({f"f{i}": None for i in range(LIMITS.object_fields_max + 1)})


# --- the other output formats --------------------------------------------------

SAMPLE = {
    "i": -7,
    "f": 2.5,
    "z": -0.0,
    "nan": math.nan,
    "inf": math.inf,
    "ninf": -math.inf,
    "b": b"\x00\x01",
    "nested": [{"n": 1 << 62}],
    "s": "text",
    "t": True,
    "u": None,
}


def test_clean_json():
    clean = to_clean_json(SAMPLE)
    assert clean["i"] == "-7"
    assert clean["f"] == 2.5
    assert clean["z"] == 0.0 and type(clean["z"]) is float
    assert (clean["nan"], clean["inf"], clean["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert clean["b"] == "AAE="
    assert clean["nested"] == [{"n": str(1 << 62)}]
    assert (clean["s"], clean["t"], clean["u"]) == ("text", True, None)
    json.dumps(clean, allow_nan=False)


def test_export_json():
    export = to_export_json(SAMPLE)
    assert export["i"] == -7 and type(export["i"]) is int
    assert export["f"] == 2.5
    assert math.copysign(1.0, export["z"]) == -1.0
    assert export["nan"] == {"$float": "AAAAAAAA+H8="}
    assert export["inf"] == {"$float": "AAAAAAAA8H8="}
    assert export["ninf"] == {"$float": "AAAAAAAA8P8="}
    assert export["b"] == {"$bytes": "AAE="}
    assert export["nested"] == [{"n": 1 << 62}]
    assert list(export) == sorted(SAMPLE)
    json.dumps(export, allow_nan=False)
