from __future__ import annotations

import json

import pytest

from engine.errors import InvalidQueryError, InvalidValueError
from engine.filter_expression import Literal, matches, to_json
from engine.index_range import RangeExpr, ranges_to_json
from engine.limits import LIMITS
from engine.query_builders import FilterBuilder, IndexRangeBuilder, build_filter, build_range
from engine.query_spec import FilterOp, IndexRangeSource, LimitOp, QuerySpec, parse_query
from engine.values import UNSET

# --- the JSON the npm package sends, written out by hand ---------------------------

# db.query("messages")
#   .withIndex("by_channel", q =>
#     q.eq("channel", "#general").gte("_creationTime", 100).lt("_creationTime", 200))
#   .order("desc")
#   .filter(q => q.and(q.eq(q.field("author.name"), "ann"), q.gt(q.field("likes"), 10)))
#   .take(5)
NPM_CHANNEL_QUERY = json.loads("""
{"source": {"type": "IndexRange", "indexName": "messages.by_channel",
            "range": [{"type": "Eq", "fieldPath": "channel", "value": "#general"},
                      {"type": "Gte", "fieldPath": "_creationTime", "value": 100},
                      {"type": "Lt", "fieldPath": "_creationTime", "value": 200}],
            "order": "desc"},
 "operators": [{"filter": {"$and": [{"$eq": [{"$field": "author.name"}, {"$literal": "ann"}]},
                                    {"$gt": [{"$field": "likes"}, {"$literal": 10}]}]}},
               {"limit": 5}]}
""")


def test_builders_match_the_npm_query():
    ranges = build_range(
        lambda q: q.eq("channel", "#general").gte("_creationTime", 100.0).lt("_creationTime", 200.0)
    )
    expr = build_filter(
        lambda q: q.and_(q.eq(q.field("author.name"), "ann"), q.gt(q.field("likes"), 10.0))
    )
    spec = QuerySpec(
        IndexRangeSource("messages", "by_channel", ranges, "desc"), (FilterOp(expr), LimitOp(5))
    )
    assert parse_query(NPM_CHANNEL_QUERY) == spec
    assert ranges_to_json(ranges) == NPM_CHANNEL_QUERY["source"]["range"]
    assert to_json(expr) == NPM_CHANNEL_QUERY["operators"][0]["filter"]


@pytest.mark.parametrize(
    ("build", "npm_json"),
    [
        # q => q.eq(q.field("n"), 5n)
        (
            lambda q: q.eq(q.field("n"), 5),
            '{"$eq": [{"$field": "n"}, {"$literal": {"$integer": "BQAAAAAAAAA="}}]}',
        ),
        # q => q.eq(q.field("deletedAt"), undefined)
        (
            lambda q: q.eq(q.field("deletedAt"), UNSET),
            '{"$eq": [{"$field": "deletedAt"}, {"$literal": {"$undefined": null}}]}',
        ),
        # q => q.not(q.eq(q.mod(q.field("n"), 2), 0))
        (
            lambda q: q.not_(q.eq(q.mod(q.field("n"), 2.0), 0.0)),
            '{"$not": {"$eq": [{"$mod": [{"$field": "n"}, {"$literal": 2}]}, {"$literal": 0}]}}',
        ),
        # q => q.or(q.lte(q.neg(q.field("x")), q.sub(q.field("y"), 1.5)), q.neq("a", null))
        (
            lambda q: q.or_(q.lte(q.neg(q.field("x")), q.sub(q.field("y"), 1.5)), q.neq("a", None)),
            '{"$or": [{"$lte": [{"$neg": {"$field": "x"}}, {"$sub": [{"$field": "y"},'
            ' {"$literal": 1.5}]}]}, {"$neq": [{"$literal": "a"}, {"$literal": null}]}]}',
        ),
        # q => q.gte(q.add(q.mul(q.field("a"), 2), q.div(q.field("b"), 4)), 10)
        (
            lambda q: q.gte(q.add(q.mul(q.field("a"), 2.0), q.div(q.field("b"), 4.0)), 10.0),
            '{"$gte": [{"$add": [{"$mul": [{"$field": "a"}, {"$literal": 2}]}, {"$div":'
            ' [{"$field": "b"}, {"$literal": 4}]}]}, {"$literal": 10}]}',
        ),
        # q => q.eq(q.field("tags"), ["a", new Uint8Array([1]).buffer, {k: true}])
        (
            lambda q: q.eq(q.field("tags"), ["a", b"\x01", {"k": True}]),
            '{"$eq": [{"$field": "tags"}, {"$literal": ["a", {"$bytes": "AQ=="}, {"k": true}]}]}',
        ),
        # q => q.and()
        (lambda q: q.and_(), '{"$and": []}'),
        # q => true
        (lambda q: True, '{"$literal": true}'),
    ],
)
def test_filter_builder_matches_npm_json(build, npm_json):
    assert to_json(build_filter(build)) == json.loads(npm_json)


@pytest.mark.parametrize(
    ("build", "npm_json"),
    [
        # q => q.eq("_id", id)
        (
            lambda q: q.eq("_id", "j579t1x2"),
            '[{"type": "Eq", "fieldPath": "_id", "value": "j579t1x2"}]',
        ),
        # q => q.eq("a.b", undefined).gt("c", 1n)
        (
            lambda q: q.eq("a.b", UNSET).gt("c", 1),
            '[{"type": "Eq", "fieldPath": "a.b", "value": {"$undefined": null}},'
            ' {"type": "Gt", "fieldPath": "c", "value": {"$integer": "AQAAAAAAAAA="}}]',
        ),
        # q => q.lte("score", 3)
        (lambda q: q.lte("score", 3.0), '[{"type": "Lte", "fieldPath": "score", "value": 3}]'),
        # q => q
        (lambda q: q, "[]"),
    ],
)
def test_range_builder_matches_npm_json(build, npm_json):
    assert ranges_to_json(build_range(build)) == json.loads(npm_json)


def test_no_range_function_is_the_whole_index():
    assert build_range(None) == ()


# --- the range builder's method order ---------------------------------------------


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda q: q.gt("a", 1.0).eq("b", 2.0), "must come before the range bounds"),
        (lambda q: q.lt("a", 1.0).eq("b", 2.0), "must come before the range bounds"),
        (lambda q: q.gt("a", 1.0).gte("a", 2.0), "at most one lower bound"),
        (lambda q: q.lt("a", 1.0).lte("a", 2.0), "at most one upper bound"),
        (lambda q: q.gte("a", 1.0).lt("a", 5.0).lte("a", 6.0), "at most one upper bound"),
        (lambda q: q.lt("a", 5.0).gt("a", 1.0), "must come before the upper bound"),
    ],
)
def test_range_builder_order(build, needle):
    with pytest.raises(InvalidQueryError) as info:
        build_range(build)
    assert info.value.code == "InvalidRangeBuilder"
    assert needle in info.value.message


def test_bounds_alone_and_together_are_allowed():
    assert build_range(lambda q: q.lt("a", 5.0)) == (RangeExpr("Lt", "a", 5.0),)
    assert build_range(lambda q: q.gt("a", 1.0).lte("a", 5.0)) == (
        RangeExpr("Gt", "a", 1.0),
        RangeExpr("Lte", "a", 5.0),
    )


def test_a_builder_is_chained_from_once():
    def unchained(q):
        q.eq("a", 1.0)
        q.eq("b", 2.0)  # the first comparison would be lost
        return q

    with pytest.raises(InvalidQueryError, match="already been used"):
        build_range(unchained)


def test_returning_a_builder_that_was_chained_from():
    def forgot_the_result(q):
        q.eq("a", 1.0)
        return q

    with pytest.raises(InvalidQueryError, match="chained from"):
        build_range(forgot_the_result)


def test_range_function_must_return_the_builder():
    with pytest.raises(InvalidQueryError, match="returned NoneType"):
        build_range(lambda q: None)


def test_range_values_are_checked():
    with pytest.raises(InvalidValueError, match="undefined"):
        build_range(lambda q: q.gt("a", UNSET))  # as the JS builder: undefined only in eq
    with pytest.raises(InvalidValueError, match="64-bit integer"):
        build_range(lambda q: q.eq("a", 2**63))
    with pytest.raises(InvalidValueError):
        build_range(lambda q: q.eq("a", {1, 2}))
    with pytest.raises(InvalidQueryError) as info:
        build_range(lambda q: q.eq("a b", 1.0))
    assert info.value.code == "InvalidFieldPath"


def test_builders_are_immutable_values():
    base = IndexRangeBuilder().eq("a", 1.0)
    assert base.ranges == (RangeExpr("Eq", "a", 1.0),)
    assert base.ranges == base.ranges  # reading does not use the builder up


# --- the filter builder -------------------------------------------------------------


def test_filter_literals_are_checked():
    q = FilterBuilder()
    with pytest.raises(InvalidValueError, match=r"q.eq\(\) right"):
        q.eq(q.field("a"), {1, 2})
    with pytest.raises(InvalidValueError):
        q.add(q.field("a"), 2**64)
    with pytest.raises(InvalidValueError):
        q.and_(q.field("a"), object())
    with pytest.raises(InvalidQueryError) as info:
        q.field("")
    assert info.value.code == "InvalidFieldPath"


def test_filter_function_results():
    assert build_filter(lambda q: False) == Literal(False)
    with pytest.raises(InvalidQueryError, match="returned null") as info:
        build_filter(lambda q: None)
    assert info.value.code == "InvalidFilter"
    with pytest.raises(InvalidQueryError, match="returned int64"):
        build_filter(lambda q: 5)


def test_python_comparison_operators_are_refused():
    with pytest.raises(InvalidQueryError, match="q.eq"):
        build_filter(lambda q: q.field("a") == 1.0)
    with pytest.raises(InvalidQueryError, match="q.and_"):
        build_filter(lambda q: q.eq(q.field("a"), 1.0) and q.eq(q.field("b"), 2.0))
    with pytest.raises(InvalidQueryError):
        build_filter(lambda q: q.field("a") > 1.0)


def test_filter_depth_limit():
    def deep(depth):
        def build(q):
            expr = q.eq(q.field("a"), True)
            for _ in range(depth - 2):
                expr = q.not_(expr)
            return expr

        return build

    assert build_filter(deep(LIMITS.value_depth_max)) is not None
    with pytest.raises(InvalidQueryError, match="value_depth_max"):
        build_filter(deep(LIMITS.value_depth_max + 1))


def test_built_filters_evaluate():
    expr = build_filter(
        lambda q: q.and_(
            q.eq(q.field("channel"), "#general"),
            q.or_(q.gt(q.field("likes"), 10.0), q.eq(q.field("pinned"), True)),
            q.not_(q.eq(q.field("deleted"), True)),
        )
    )
    assert matches(expr, {"channel": "#general", "likes": 11.0})
    assert matches(expr, {"channel": "#general", "likes": 1.0, "pinned": True})
    assert not matches(expr, {"channel": "#general", "likes": 11.0, "deleted": True})
    assert not matches(expr, {"channel": "#random", "likes": 11.0})
    # Int64 likes sort below every float, so they are never > 10.0
    assert not matches(expr, {"channel": "#general", "likes": 11})
