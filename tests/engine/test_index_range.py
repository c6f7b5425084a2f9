from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidQueryError, InvalidValueError
from engine.index_range import (
    KeyInterval,
    RangeExpr,
    compile_range,
    index_key,
    parse_range_json,
    range_to_json,
    ranges_to_json,
)
from engine.key_encoding import encode_key, encode_value, prefix_successor
from engine.query_builders import IndexRangeBuilder
from engine.values import UNSET, compare_values, get_field

BY_CHANNEL = ("channel", "_creationTime", "_id")
BY_ID = ("_id",)


def compile_by_channel(*ranges: RangeExpr) -> KeyInterval:
    return compile_range(ranges, BY_CHANNEL, "messages.by_channel")


def rule_error(*ranges: RangeExpr) -> InvalidQueryError:
    with pytest.raises(InvalidQueryError) as info:
        compile_by_channel(*ranges)
    return info.value


# --- the rules of §4.1, one error each ------------------------------------------


def test_two_equalities_on_one_field():
    err = rule_error(RangeExpr("Eq", "channel", "a"), RangeExpr("Eq", "channel", "b"))
    assert err.code == "AlreadyDefinedBound"
    assert "equality" in err.message
    assert '"channel" == "b"' in err.message
    assert "messages.by_channel" in err.message


def test_two_lower_bounds():
    err = rule_error(RangeExpr("Gt", "channel", "a"), RangeExpr("Gte", "channel", "b"))
    assert err.code == "AlreadyDefinedBound"
    assert "lower bound" in err.message and '"channel" >= "b"' in err.message


def test_two_upper_bounds():
    err = rule_error(RangeExpr("Lt", "channel", "a"), RangeExpr("Lte", "channel", "b"))
    assert err.code == "AlreadyDefinedBound"
    assert "upper bound" in err.message and '"channel" <= "b"' in err.message


def test_bounds_on_two_fields():
    err = rule_error(
        RangeExpr("Eq", "channel", "a"),
        RangeExpr("Gt", "_creationTime", 1.0),
        RangeExpr("Lt", "_id", "x"),
    )
    assert err.code == "BoundsOnMultipleFields"
    assert '"_creationTime"' in err.message and '"_id"' in err.message
    assert "messages.by_channel" in err.message


def test_bound_on_a_field_with_an_equality():
    err = rule_error(RangeExpr("Eq", "channel", "a"), RangeExpr("Gt", "channel", "b"))
    assert err.code == "AlreadyDefinedBound"
    assert "inequality" in err.message and '"channel" == "a"' in err.message


def test_field_not_in_index():
    err = rule_error(RangeExpr("Eq", "author", "ann"))
    assert err.code == "FieldNotInIndex"
    assert '"author"' in err.message and "messages.by_channel" in err.message
    assert '["channel", "_creationTime", "_id"]' in err.message


def test_bound_field_not_in_index():
    err = rule_error(RangeExpr("Eq", "channel", "a"), RangeExpr("Gte", "body", "x"))
    assert err.code == "FieldNotInIndex" and '"body"' in err.message


def test_skipping_an_index_field():
    err = rule_error(RangeExpr("Eq", "_creationTime", 1.0))
    assert err.code == "InvalidIndexRange"
    assert 'First incorrect field: "_creationTime"' in err.message
    assert "messages.by_channel" in err.message


def test_equality_after_the_bound_field():
    err = rule_error(RangeExpr("Gt", "channel", "a"), RangeExpr("Eq", "_creationTime", 1.0))
    assert err.code == "InvalidIndexRange"
    assert 'Query fields: ["_creationTime", "channel"]' in err.message
    assert 'First incorrect field: "_creationTime"' in err.message


def test_bound_skipping_a_field():
    err = rule_error(RangeExpr("Eq", "channel", "a"), RangeExpr("Lt", "_id", "x"))
    assert err.code == "InvalidIndexRange"
    assert 'First incorrect field: "_id"' in err.message


def test_equalities_may_come_in_any_order():
    forward = compile_by_channel(
        RangeExpr("Eq", "channel", "a"), RangeExpr("Eq", "_creationTime", 2.0)
    )
    backward = compile_by_channel(
        RangeExpr("Eq", "_creationTime", 2.0), RangeExpr("Eq", "channel", "a")
    )
    assert forward == backward


# --- intervals ------------------------------------------------------------------


def test_no_range_is_the_whole_index():
    assert compile_by_channel() == KeyInterval(b"", None)


def test_equality_is_a_prefix_interval():
    prefix = encode_key(["general"])
    assert compile_by_channel(RangeExpr("Eq", "channel", "general")) == KeyInterval(
        prefix, prefix_successor(prefix)
    )


def test_bounds_follow_the_equality_prefix():
    p = encode_key(["general"])
    t1, t2 = encode_value(1.0), encode_value(5.0)
    interval = compile_by_channel(
        RangeExpr("Eq", "channel", "general"),
        RangeExpr("Gt", "_creationTime", 1.0),
        RangeExpr("Lte", "_creationTime", 5.0),
    )
    assert interval == KeyInterval(prefix_successor(p + t1), prefix_successor(p + t2))
    interval = compile_by_channel(
        RangeExpr("Eq", "channel", "general"),
        RangeExpr("Gte", "_creationTime", 1.0),
        RangeExpr("Lt", "_creationTime", 5.0),
    )
    assert interval == KeyInterval(p + t1, p + t2)


def test_only_an_upper_bound_starts_at_the_prefix():
    interval = compile_by_channel(RangeExpr("Lt", "channel", "m"))
    assert interval == KeyInterval(b"", encode_value("m"))
    assert interval.contains(index_key(BY_CHANNEL, {"_id": "x", "_creationTime": 1.0}))


def test_crossed_bounds_give_an_empty_interval():
    interval = compile_by_channel(RangeExpr("Gt", "channel", "z"), RangeExpr("Lt", "channel", "a"))
    assert interval.is_empty
    assert not interval.contains(index_key(BY_CHANNEL, {"channel": "m", "_id": "x"}))


def test_get_by_id_is_one_key():
    doc = {"_id": "abc", "_creationTime": 3.0}
    interval = compile_range([RangeExpr("Eq", "_id", "abc")], BY_ID, "messages.by_id")
    assert interval.contains(index_key(BY_ID, doc))
    assert not interval.contains(index_key(BY_ID, {"_id": "abcd"}))
    assert not interval.contains(index_key(BY_ID, {"_id": "abb"}))


def test_undefined_equality_matches_a_missing_field():
    interval = compile_by_channel(RangeExpr("Eq", "channel", UNSET))
    assert interval.contains(index_key(BY_CHANNEL, {"_id": "a", "_creationTime": 1.0}))
    assert not interval.contains(index_key(BY_CHANNEL, {"channel": None, "_id": "a"}))


def test_int_and_float_bounds_are_different_values():
    # All Int64 sort before all Float64, so gt(1n) still includes the float 0.5.
    interval = compile_by_channel(RangeExpr("Gt", "channel", 1))
    assert interval.contains(index_key(BY_CHANNEL, {"channel": 0.5, "_id": "a"}))
    assert not interval.contains(index_key(BY_CHANNEL, {"channel": 1, "_id": "a"}))
    eq_one = compile_by_channel(RangeExpr("Eq", "channel", 1.0))
    assert not eq_one.contains(index_key(BY_CHANNEL, {"channel": 1, "_id": "a"}))


def test_index_key_reads_nested_paths():
    fields = ("author.name", "_id")
    assert index_key(fields, {"author": {"name": "ann"}, "_id": "x"}) == encode_key(["ann", "x"])
    assert index_key(fields, {"author": "ann", "_id": "x"}) == encode_key([UNSET, "x"])


# --- JSON -----------------------------------------------------------------------


def test_parse_range_json():
    ranges = parse_range_json(
        [
            {"type": "Eq", "fieldPath": "channel", "value": "general"},
            {"type": "Gte", "fieldPath": "_creationTime", "value": 1.5},
            {"type": "Lt", "fieldPath": "_creationTime", "value": {"$integer": "AgAAAAAAAAA="}},
        ]
    )
    assert ranges == (
        RangeExpr("Eq", "channel", "general"),
        RangeExpr("Gte", "_creationTime", 1.5),
        RangeExpr("Lt", "_creationTime", 2),
    )


def test_parse_range_json_undefined_and_extra_keys():
    (expr,) = parse_range_json(
        [{"type": "Eq", "fieldPath": "a.", "value": {"$undefined": None}, "x": 1}]
    )
    assert expr == RangeExpr("Eq", "a", UNSET)


def test_range_json_round_trip():
    ranges = (
        RangeExpr("Eq", "a.b", UNSET),
        RangeExpr("Eq", "c", [1, 2.5, b"\x00", {"k": None}]),
        RangeExpr("Gt", "d", math.inf),
        RangeExpr("Lte", "d", -0.0),
    )
    assert parse_range_json(ranges_to_json(ranges)) == ranges
    assert range_to_json(ranges[0]) == {
        "type": "Eq",
        "fieldPath": "a.b",
        "value": {"$undefined": None},
    }


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ({"type": "Eq"}, "expected a list"),
        (["Eq"], "expected an object"),
        ([{"type": "Between", "fieldPath": "a", "value": 1.0}], "type must be one of"),
        ([{"type": "Eq", "fieldPath": "a"}], "missing value"),
    ],
)
def test_parse_range_json_rejects_malformed(items, needle):
    with pytest.raises(InvalidQueryError) as info:
        parse_range_json(items, path="query.source.range")
    assert info.value.code == "InvalidRangeExpression"
    assert needle in info.value.message and "query.source.range" in info.value.message


@pytest.mark.parametrize("field_path", ["", ".", "a..b", "1a", "a-b", "$a", 5, None])
def test_parse_range_json_rejects_bad_field_paths(field_path):
    with pytest.raises(InvalidQueryError) as info:
        parse_range_json([{"type": "Eq", "fieldPath": field_path, "value": 1.0}])
    assert info.value.code == "InvalidFieldPath"
    assert "range[0].fieldPath" in info.value.message


def test_parse_range_json_rejects_bad_values():
    with pytest.raises(InvalidValueError) as info:
        parse_range_json([{"type": "Eq", "fieldPath": "a", "value": {"$integer": "xx"}}])
    assert "range[0].value" in info.value.message
    with pytest.raises(InvalidValueError):  # undefined only at the top of a range value
        parse_range_json([{"type": "Eq", "fieldPath": "a", "value": [{"$undefined": None}]}])


def test_range_equality_is_convex_equality():
    assert RangeExpr("Eq", "a", 1) != RangeExpr("Eq", "a", 1.0)
    assert RangeExpr("Eq", "a", 1) != RangeExpr("Eq", "a", True)
    assert RangeExpr("Eq", "a", 0.0) != RangeExpr("Eq", "a", -0.0)
    assert RangeExpr("Eq", "a", math.nan) == RangeExpr("Eq", "a", math.nan)
    assert len({RangeExpr("Eq", "a", 1), RangeExpr("Eq", "a", 1.0)}) == 2


def test_unknown_kind_is_refused():
    with pytest.raises(InvalidQueryError):
        RangeExpr("Between", "a", 1.0)


# --- the interval is the predicate: a property ------------------------------------

# Values drawn from one small pool, so documents often hit range values exactly.
POOL = [
    UNSET, None, -1, 0, 1, -0.0, 0.0, 1.0, 1.5, math.nan, math.inf, -math.inf,
    False, True, "", "a", "a\x00", "b", b"", b"\x00", b"a", [], [1], [1.0, "a"], {}, {"x": 1},
]  # fmt: skip
pool_values = st.sampled_from(POOL)
TWO_FIELDS = ("a", "b.c", "_id")


@st.composite
def documents(draw):
    doc = {"_id": draw(st.sampled_from(["i1", "i2", "i10"]))}
    a = draw(pool_values)
    if a is not UNSET:
        doc["a"] = a
    shape = draw(st.sampled_from(["nested", "missing", "scalar"]))
    if shape == "nested":
        c = draw(pool_values)
        doc["b"] = {} if c is UNSET else {"c": c}
    elif shape == "scalar":
        doc["b"] = draw(pool_values.filter(lambda v: v is not UNSET))
    return doc


@st.composite
def valid_ranges(draw, doc):
    """Ranges in the builder's shape: Eqs on a prefix, then bounds on the next field.

    Values come from the pool or from ``doc`` itself, so matches are common.
    """

    def value_for(field):
        return st.one_of(pool_values, st.just(get_field(doc, field)))

    n_eq = draw(st.integers(0, 2))
    builder = IndexRangeBuilder()
    ranges = []
    for field in TWO_FIELDS[:n_eq]:
        value = draw(value_for(field))
        builder = builder.eq(field, value)
        ranges.append(RangeExpr("Eq", field, value))
    field = TWO_FIELDS[n_eq]
    lower = draw(st.sampled_from([None, "Gt", "Gte"]))
    upper = draw(st.sampled_from([None, "Lt", "Lte"]))
    # Bound values may be UNSET in the JSON, though the builder refuses them.
    bound_values = st.one_of(value_for(field), st.sampled_from(["i1", "i2", "i10"]))
    for kind in (lower, upper):
        if kind is None:
            continue
        value = draw(bound_values)
        ranges.append(RangeExpr(kind, field, value))
        if builder is not None and value is not UNSET:
            builder = getattr(builder, kind.lower())(field, value)
        else:
            builder = None
    if builder is not None:
        assert builder.ranges == tuple(ranges)
    return tuple(ranges)


def satisfies(doc, ranges) -> bool:
    tests = {
        "Eq": lambda c: c == 0,
        "Gt": lambda c: c > 0,
        "Gte": lambda c: c >= 0,
        "Lt": lambda c: c < 0,
        "Lte": lambda c: c <= 0,
    }
    return all(tests[r.kind](compare_values(get_field(doc, r.field_path), r.value)) for r in ranges)


@settings(max_examples=400, deadline=None)
@given(documents().flatmap(lambda doc: st.tuples(st.just(doc), valid_ranges(doc))))
def test_key_in_interval_iff_document_satisfies_ranges(case):
    doc, ranges = case
    interval = compile_range(ranges, TWO_FIELDS, "t.by_a_b")
    assert interval.contains(index_key(TWO_FIELDS, doc)) == satisfies(doc, ranges)
