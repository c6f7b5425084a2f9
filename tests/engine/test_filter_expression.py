from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidQueryError, InvalidValueError
from engine.filter_expression import (
    And,
    Arith,
    Compare,
    Field,
    Literal,
    Neg,
    Not,
    Or,
    evaluate,
    expression_depth,
    matches,
    parse_expression,
    parse_field_path,
    to_json,
)
from engine.limits import LIMITS
from engine.values import INT64_MAX, INT64_MIN, UNSET, values_equal

DOC = {"email": "bw@convex.dev", "salary": 5, "score": 2.5, "flags": {"admin": True}}


def lit(value):
    return Literal(value)


def ev(expr, doc=DOC):
    return evaluate(expr, doc)


def eval_error(expr, doc=DOC) -> InvalidQueryError:
    with pytest.raises(InvalidQueryError) as info:
        evaluate(expr, doc)
    assert info.value.code == "EvalError"
    return info.value


# --- comparisons ------------------------------------------------------------------


def test_fields_and_literals():
    assert ev(Field("salary")) == 5
    assert ev(Field("flags.admin")) is True
    assert ev(Field("name")) is UNSET
    assert ev(Field("email.length")) is UNSET
    assert ev(lit([1, "a"])) == [1, "a"]


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("eq", "foo", "foo", True),
        ("neq", "foo", "foo", False),
        ("lt", 5, 6, True),
        ("lte", 5, 5, True),
        ("gt", 5, 4, True),
        ("gte", 4, 5, False),
        ("eq", 1, 1.0, False),  # Int64 and Float64 are never equal
        ("lt", 2**62, 0.5, True),  # every Int64 sorts before every Float64
        ("eq", math.nan, math.nan, True),
        ("eq", 0.0, -0.0, False),
        ("lt", -0.0, 0.0, True),
        ("lt", None, 0, True),
        ("lt", UNSET, None, True),  # undefined sorts lowest
        ("eq", UNSET, UNSET, True),
        ("lt", True, "", True),
        ("lt", "a", "ab", True),
        ("lt", b"\xff", [], True),
        ("lt", [1, 2], [1, 2, 0], True),
        ("lt", {"a": 1}, {"b": 0}, True),
        ("gt", {"a": 2}, {"a": 1, "b": 1}, True),
    ],
)
def test_comparisons_follow_the_total_order(op, left, right, expected):
    assert ev(Compare(op, lit(left), lit(right))) is expected


def test_missing_fields():
    assert ev(Compare("eq", Field("name"), lit(UNSET))) is True
    assert ev(Compare("eq", Field("name"), lit(None))) is False
    assert ev(Compare("neq", Field("level"), lit(2))) is True
    assert ev(Compare("lt", Field("name"), lit(None))) is True


# --- arithmetic -------------------------------------------------------------------


def arith(op, a, b):
    return ev(Arith(op, lit(a), lit(b)))


def test_int_arithmetic():
    # -((3 * 5) + (5 - 11 % 3)) / 3 == -6, as in the reference's own test
    expr = Arith(
        "div",
        Neg(
            Arith(
                "add",
                Arith("mul", lit(3), lit(5)),
                Arith("sub", lit(5), Arith("mod", lit(11), lit(3))),
            )
        ),
        lit(3),
    )
    assert ev(expr) == -6 and type(ev(expr)) is int


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("div", 7, 2, 3),
        ("div", -7, 2, -3),  # truncates toward zero
        ("div", 7, -2, -3),
        ("mod", -7, 2, -1),  # the remainder takes the dividend's sign
        ("mod", 7, -2, 1),
        ("mod", INT64_MIN, -1, 0),
        ("sub", INT64_MIN + 1, 1, INT64_MIN),
    ],
)
def test_int_division_truncates(op, a, b, expected):
    assert arith(op, a, b) == expected


@pytest.mark.parametrize(
    ("op", "a", "b"),
    [
        ("add", INT64_MAX, 1),
        ("sub", INT64_MIN, 1),
        ("mul", 2**32, 2**32),
        ("div", INT64_MIN, -1),
    ],
)
def test_int_overflow_is_an_error(op, a, b):
    err = eval_error(Arith(op, lit(a), lit(b)))
    assert "overflows int64" in err.message


def test_int_negation_overflow():
    assert ev(Neg(lit(INT64_MAX))) == -INT64_MAX
    assert "overflows" in eval_error(Neg(lit(INT64_MIN))).message


@pytest.mark.parametrize("op", ["div", "mod"])
def test_int_division_by_zero(op):
    err = eval_error(Arith(op, lit(5), lit(0)))
    assert "by zero" in err.message and "5n" in err.message


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", 0.1, 0.2, 0.1 + 0.2),
        ("sub", 1.0, 2.5, -1.5),
        ("mul", 1e308, 10.0, math.inf),
        ("div", 1.0, 0.0, math.inf),
        ("div", -1.0, 0.0, -math.inf),
        ("div", 1.0, -0.0, -math.inf),
        ("mod", -7.5, 2.0, -1.5),
        ("mod", 1.0, math.inf, 1.0),
    ],
)
def test_float_arithmetic_is_ieee(op, a, b, expected):
    assert values_equal(arith(op, a, b), expected)


@pytest.mark.parametrize(
    ("op", "a", "b"),
    [("div", 0.0, 0.0), ("mod", 1.0, 0.0), ("mod", math.inf, 1.0), ("sub", math.inf, math.inf)],
)
def test_float_arithmetic_nan(op, a, b):
    assert math.isnan(arith(op, a, b))


def test_float_negation():
    assert values_equal(ev(Neg(lit(0.0))), -0.0)
    assert ev(Neg(Field("score"))) == -2.5


@pytest.mark.parametrize(
    ("a", "b", "types"),
    [
        (1, 1.0, "(type int64) and 1.0 (type float64)"),
        ("a", "b", "(type string)"),
        (UNSET, 1, "undefined (type undefined)"),
        (None, 1.0, "null (type null)"),
        (True, 1, "true (type boolean)"),
    ],
)
def test_arithmetic_on_other_types_is_an_error(a, b, types):
    err = eval_error(Arith("add", lit(a), lit(b)))
    assert err.message.startswith("Cannot add") and types in err.message


def test_negating_a_string_is_an_error():
    assert "Cannot negate" in eval_error(Neg(Field("email"))).message
    assert "Cannot negate undefined" in eval_error(Neg(Field("missing"))).message


# --- logic ------------------------------------------------------------------------


@pytest.mark.parametrize("bits", range(8))
def test_and_or_truth_tables(bits):
    a, b, c = (bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0
    assert ev(And((lit(a), lit(b), lit(c)))) is (a and b and c)
    assert ev(Or((lit(a), lit(b), lit(c)))) is (a or b or c)


def test_empty_and_or():
    assert ev(And(())) is True
    assert ev(Or(())) is False


def test_short_circuit_skips_errors_after_the_answer():
    boom = Arith("add", lit("x"), lit(1))
    assert ev(And((lit(False), boom))) is False
    assert ev(Or((lit(True), boom))) is True
    eval_error(And((lit(True), boom)))


def test_logic_needs_booleans():
    err = eval_error(And((lit(True), lit(1.0))))
    assert "Cannot use value 1.0 (type float64) as a Boolean" in err.message
    assert "undefined" in eval_error(Or((Field("nope"),))).message
    assert "as a Boolean" in eval_error(Not(lit("yes"))).message
    assert ev(Not(lit(False))) is True


def test_matches_requires_a_boolean():
    assert matches(Compare("gt", Field("salary"), lit(4)), DOC) is True
    assert matches(lit(False), DOC) is False
    with pytest.raises(InvalidQueryError) as info:
        matches(Field("salary"), DOC)
    assert info.value.code == "EvalError"
    assert "Cannot use value 5n (type int64) as a Boolean" in info.value.message


# --- JSON -------------------------------------------------------------------------


def test_parse_expression():
    obj = {
        "$and": [
            {"$eq": [{"$field": "channel"}, {"$literal": "#general"}]},
            {"$not": {"$lt": [{"$field": "n"}, {"$literal": {"$integer": "AwAAAAAAAAA="}}]}},
            {"$neq": [{"$field": "x.y"}, {"$literal": {"$undefined": None}}]},
            {"$or": []},
            {"$gte": [{"$neg": {"$field": "f"}}, {"$mod": [{"$literal": 7.0}, {"$literal": 2.0}]}]},
        ]
    }
    assert parse_expression(obj) == And(
        (
            Compare("eq", Field("channel"), lit("#general")),
            Not(Compare("lt", Field("n"), lit(3))),
            Compare("neq", Field("x.y"), lit(UNSET)),
            Or(()),
            Compare("gte", Neg(Field("f")), Arith("mod", lit(7.0), lit(2.0))),
        )
    )
    assert to_json(parse_expression(obj)) == obj


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ([], "exactly one operator key"),
        ({}, "exactly one operator key"),
        ({"$eq": [{"$field": "a"}], "$neq": []}, "exactly one operator key"),
        ({"$like": "a%"}, "unknown operator '$like'"),
        ({"$eq": [{"$field": "a"}]}, "$eq takes a list of two expressions"),
        ({"$add": {"$field": "a"}}, "$add takes a list of two expressions"),
        ({"$and": {"$field": "a"}}, "$and takes a list of expressions"),
        ({"$not": [{"$field": "a"}]}, "exactly one operator key"),
        ({"$eq": [{"$field": "a"}, 5]}, "filter.$eq[1]"),
    ],
)
def test_parse_rejects_malformed_expressions(obj, needle):
    with pytest.raises(InvalidQueryError) as info:
        parse_expression(obj)
    assert info.value.code == "InvalidFilter"
    assert needle in info.value.message


@pytest.mark.parametrize("bad", ["a..b", "1a", "", "...", "a.b-c"])
def test_field_paths_checked_once_are_answered_the_same_every_time(bad):
    """Valid paths are remembered after their first check; a bad one never is, so it
    is refused every time, and a remembered path still comes back trimmed."""
    for _ in range(2):
        assert parse_field_path(".a.b.") == "a.b"
        assert parse_field_path("a.b") == "a.b"
        with pytest.raises(InvalidQueryError) as info:
            parse_field_path(bad)
        assert info.value.code == "InvalidFieldPath"
    with pytest.raises(InvalidQueryError):
        parse_field_path(["a"])  # not a string: never looked up


def test_parse_rejects_bad_field_paths_and_literals():
    with pytest.raises(InvalidQueryError) as info:
        parse_expression({"$field": "a..b"}, path="query.operators[0].filter")
    assert info.value.code == "InvalidFieldPath"
    assert "query.operators[0].filter.$field" in info.value.message
    with pytest.raises(InvalidValueError) as value_info:
        parse_expression({"$literal": {"$bytes": "%%"}})
    assert "$literal" in value_info.value.message


def test_parse_rejects_deep_nesting():
    obj: dict = {"$literal": True}
    for _ in range(LIMITS.value_depth_max):
        obj = {"$not": obj}
    with pytest.raises(InvalidQueryError) as info:
        parse_expression(obj)
    assert "value_depth_max" in info.value.message
    shallower = obj["$not"]
    assert expression_depth(parse_expression(shallower)) == LIMITS.value_depth_max


def test_literal_json_uses_convex_encoding():
    assert to_json(lit(1)) == {"$literal": {"$integer": "AQAAAAAAAAA="}}
    assert to_json(lit(1.0)) == {"$literal": 1.0}
    assert to_json(lit(b"\x01")) == {"$literal": {"$bytes": "AQ=="}}
    assert to_json(lit(UNSET)) == {"$literal": {"$undefined": None}}


# --- structural equality and misuse ----------------------------------------------


def test_equality_is_structural_and_typed():
    assert Compare("eq", Field("a"), lit(1)) == Compare("eq", Field("a"), lit(1))
    assert Compare("eq", Field("a"), lit(1)) != Compare("eq", Field("a"), lit(1.0))
    assert lit(True) != lit(1)
    assert hash(And((Field("a"),))) == hash(And((Field("a"),)))


def test_python_operators_on_expressions_are_refused():
    with pytest.raises(InvalidQueryError, match="q.eq"):
        _ = Field("a") == 1
    with pytest.raises(InvalidQueryError):
        _ = Field("a") < 1
    with pytest.raises(InvalidQueryError, match="q.and_"):
        bool(Field("a"))


def test_unknown_operator_names_are_refused():
    with pytest.raises(InvalidQueryError):
        Compare("like", Field("a"), lit(1))
    with pytest.raises(InvalidQueryError):
        Arith("pow", lit(1), lit(2))


# --- round trip property ----------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(),
    st.sampled_from([-0.0, math.nan, math.inf]),
    st.text(max_size=4),
    st.binary(max_size=4),
)
literal_values = st.one_of(
    st.just(UNSET),
    st.recursive(
        scalars,
        lambda kids: st.one_of(
            st.lists(kids, max_size=2),
            st.dictionaries(st.sampled_from(["a", "b", "_c"]), kids, max_size=2),
        ),
        max_leaves=4,
    ),
)
leaves = st.one_of(
    st.sampled_from(["a", "b.c", "_id"]).map(Field),
    literal_values.map(Literal),
)
expressions = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.tuples(st.sampled_from(["eq", "neq", "lt", "lte", "gt", "gte"]), kids, kids).map(
            lambda t: Compare(*t)
        ),
        st.tuples(st.sampled_from(["add", "sub", "mul", "div", "mod"]), kids, kids).map(
            lambda t: Arith(*t)
        ),
        kids.map(Neg),
        kids.map(Not),
        st.lists(kids, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(expressions)
def test_json_round_trip(expr):
    assert parse_expression(to_json(expr)) == expr
