from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidQueryError, InvalidValueError, LimitExceededError
from engine.filter_expression import And, Compare, Field, Literal, Not
from engine.index_range import RangeExpr
from engine.limits import LIMITS
from engine.query_spec import (
    FilterOp,
    FullTableScan,
    IndexRangeSource,
    LimitOp,
    QuerySpec,
    SearchFilter,
    SearchSource,
    fingerprint,
    parse_query,
    query_to_json,
)
from engine.values import UNSET

CHANNEL_QUERY = {
    "source": {
        "type": "IndexRange",
        "indexName": "messages.by_channel",
        "range": [
            {"type": "Eq", "fieldPath": "channel", "value": "#general"},
            {"type": "Gt", "fieldPath": "_creationTime", "value": 1700000000000.5},
        ],
        "order": "desc",
    },
    "operators": [
        {"filter": {"$neq": [{"$field": "author"}, {"$literal": "bot"}]}},
        {"limit": 10},
    ],
}
CHANNEL_SPEC = QuerySpec(
    IndexRangeSource(
        "messages",
        "by_channel",
        (
            RangeExpr("Eq", "channel", "#general"),
            RangeExpr("Gt", "_creationTime", 1700000000000.5),
        ),
        "desc",
    ),
    (FilterOp(Compare("neq", Field("author"), Literal("bot"))), LimitOp(10)),
)


def with_changes(base: dict, path: list, value) -> dict:
    obj = copy.deepcopy(base)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


def query_error(obj) -> InvalidQueryError:
    with pytest.raises(InvalidQueryError) as info:
        parse_query(obj)
    return info.value


# --- sources ----------------------------------------------------------------------


def test_parse_index_range_query():
    assert parse_query(CHANNEL_QUERY) == CHANNEL_SPEC


@pytest.mark.parametrize("order", [None, "asc", KeyError])
def test_full_table_scan_order_defaults_to_asc(order):
    source = {"type": "FullTableScan", "tableName": "messages", "order": "desc"}
    obj = {"source": with_changes(source, ["order"], order), "operators": []}
    assert parse_query(obj) == QuerySpec(FullTableScan("messages", "asc"), ())


def test_system_tables_can_be_scanned():
    obj = {
        "source": {"type": "FullTableScan", "tableName": "_storage", "order": None},
        "operators": [],
    }
    assert parse_query(obj).source == FullTableScan("_storage")


def test_parse_search_query():
    obj = {
        "source": {
            "type": "Search",
            "indexName": "messages.search_body",
            "filters": [
                {"type": "Search", "fieldPath": "body", "value": "hello wor"},
                {"type": "Eq", "fieldPath": "channel", "value": "#general"},
                {"type": "Eq", "fieldPath": "thread", "value": {"$undefined": None}},
            ],
        },
        "operators": [{"limit": 5}],
    }
    spec = parse_query(obj)
    assert spec == QuerySpec(
        SearchSource(
            "messages",
            "search_body",
            (
                SearchFilter("Search", "body", "hello wor"),
                SearchFilter("Eq", "channel", "#general"),
                SearchFilter("Eq", "thread", UNSET),
            ),
        ),
        (LimitOp(5),),
    )
    assert query_to_json(spec) == obj


@pytest.mark.parametrize(
    ("filters", "needle"),
    [
        ([], "exactly one Search filter"),
        ([{"type": "Eq", "fieldPath": "a", "value": 1.0}], "exactly one Search filter"),
        (
            [
                {"type": "Search", "fieldPath": "body", "value": "a"},
                {"type": "Search", "fieldPath": "body", "value": "b"},
            ],
            "got 2",
        ),
    ],
)
def test_search_needs_one_search_filter(filters, needle):
    obj = {"source": {"type": "Search", "indexName": "m.s", "filters": filters}, "operators": []}
    err = query_error(obj)
    assert err.code == "InvalidSearchQuery" and needle in err.message


def test_search_text_must_be_a_string():
    filters = [{"type": "Search", "fieldPath": "body", "value": 5.0}]
    obj = {"source": {"type": "Search", "indexName": "m.s", "filters": filters}, "operators": []}
    assert "search text must be a string" in query_error(obj).message


# --- bad queries, each named ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "needle", "code"),
    [
        (["source"], KeyError, "missing 'source'", "InvalidQuery"),
        (["operators"], KeyError, "missing 'operators'", "InvalidQuery"),
        (["source"], "messages", "query.source: expected an object", "InvalidQuery"),
        (["source", "type"], "TableScan", "query.source.type", "InvalidQuery"),
        (["source", "indexName"], "messages", '"<table>.<index>"', "InvalidIndexName"),
        (["source", "indexName"], "a.b.c", '"<table>.<index>"', "InvalidIndexName"),
        (["source", "indexName"], "messages.1st", '"<table>.<index>"', "InvalidIndexName"),
        (["source", "indexName"], 7, "query.source.indexName", "InvalidIndexName"),
        (["source", "range"], KeyError, "missing 'range'", "InvalidQuery"),
        (["source", "order"], "descending", "query.source.order", "InvalidQuery"),
        (["source", "range", 0, "type"], "Ne", "query.source.range[0]", "InvalidRangeExpression"),
        (["operators"], {"limit": 1}, "query.operators: expected a list", "InvalidQuery"),
        (["operators", 1], {"limit": 1, "filter": {}}, "query.operators[1]", "InvalidQuery"),
        (["operators", 1], {"skip": 1}, "query.operators[1]", "InvalidQuery"),
        (["operators", 1], {"limit": -1}, "non-negative integer", "InvalidQuery"),
        (["operators", 1], {"limit": 2.5}, "non-negative integer", "InvalidQuery"),
        (["operators", 1], {"limit": True}, "non-negative integer", "InvalidQuery"),
        (["operators", 1], {"limit": "3"}, "non-negative integer", "InvalidQuery"),
        (["operators", 0, "filter"], {"$x": 1}, "query.operators[0].filter", "InvalidFilter"),
    ],
)
def test_bad_queries_are_named(path, value, needle, code):
    err = query_error(with_changes(CHANNEL_QUERY, path, value))
    assert err.code == code
    assert needle in err.message


def test_bad_table_name():
    obj = {"source": {"type": "FullTableScan", "tableName": "my table"}, "operators": []}
    err = query_error(obj)
    assert err.code == "InvalidTableName" and "query.source.tableName" in err.message


def test_query_must_be_an_object():
    assert "expected an object" in query_error([CHANNEL_QUERY]).message


def test_bad_values_name_their_place():
    bad = {"$integer": "nope"}
    with pytest.raises(InvalidValueError) as info:
        parse_query(with_changes(CHANNEL_QUERY, ["source", "range", 0, "value"], bad))
    assert "query.source.range[0].value" in info.value.message


def test_integral_float_limits_are_accepted():
    spec = parse_query(with_changes(CHANNEL_QUERY, ["operators", 1], {"limit": 1e3}))
    assert spec.operators[1] == LimitOp(1000)
    # ...and only integral, non-negative ones.
    for bad in (1.5, -1, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidQueryError, match="limit must be a non-negative integer"):
            parse_query(with_changes(CHANNEL_QUERY, ["operators", 1], {"limit": bad}))


def test_operator_count_limit():
    source = {"type": "FullTableScan", "tableName": "t", "order": None}
    at_limit = {"source": source, "operators": [{"limit": 1}] * LIMITS.query_operators_max}
    assert len(parse_query(at_limit).operators) == LIMITS.query_operators_max
    past = {"source": source, "operators": [{"limit": 1}] * (LIMITS.query_operators_max + 1)}
    with pytest.raises(LimitExceededError) as info:
        parse_query(past)
    assert info.value.code == "TooManyQueryOperators"
    assert "query_operators_max" in info.value.message


def test_unknown_keys_are_ignored():
    obj = with_changes(CHANNEL_QUERY, ["source", "extra"], 1)
    obj["version"] = "1.48.0"
    assert parse_query(obj) == CHANNEL_SPEC


# --- serializing and fingerprints -----------------------------------------------


def test_query_to_json_round_trip():
    assert query_to_json(CHANNEL_SPEC) == CHANNEL_QUERY
    assert parse_query(query_to_json(CHANNEL_SPEC)) == CHANNEL_SPEC


def test_null_order_serializes_as_asc():
    obj = {"source": {"type": "FullTableScan", "tableName": "t", "order": None}, "operators": []}
    assert query_to_json(parse_query(obj))["source"]["order"] == "asc"


PINNED_FINGERPRINT = "e57469e35b85db9f1092babf7fdda73b2ea54cd7d715c4b4861623173dcc897a"


def test_fingerprint_is_stable():
    # Pinned: cursors handed out by one version must stay valid in the next.
    assert fingerprint(CHANNEL_SPEC).hex() == PINNED_FINGERPRINT
    assert fingerprint(parse_query(query_to_json(CHANNEL_SPEC))) == fingerprint(CHANNEL_SPEC)
    assert len(fingerprint(CHANNEL_SPEC)) == 32


def test_fingerprint_sees_every_part_of_the_query():
    variants = [
        with_changes(CHANNEL_QUERY, ["source", "order"], "asc"),
        with_changes(CHANNEL_QUERY, ["source", "indexName"], "messages.by_author"),
        with_changes(CHANNEL_QUERY, ["source", "range", 0, "value"], "#random"),
        with_changes(CHANNEL_QUERY, ["source", "range", 1, "type"], "Gte"),
        with_changes(CHANNEL_QUERY, ["operators", 1], {"limit": 11}),
        with_changes(CHANNEL_QUERY, ["operators"], list(reversed(CHANNEL_QUERY["operators"]))),
        with_changes(CHANNEL_QUERY, ["operators", 0, "filter", "$neq", 1, "$literal"], "bat"),
    ]
    prints = {fingerprint(parse_query(v)) for v in variants} | {fingerprint(CHANNEL_SPEC)}
    assert len(prints) == len(variants) + 1


def test_fingerprint_tells_int_from_float():
    one_int = QuerySpec(FullTableScan("t"), (FilterOp(Compare("eq", Field("a"), Literal(1))),))
    one_float = QuerySpec(FullTableScan("t"), (FilterOp(Compare("eq", Field("a"), Literal(1.0))),))
    assert fingerprint(one_int) != fingerprint(one_float)


def test_fingerprint_with_index_fields():
    plain = fingerprint(CHANNEL_SPEC)
    with_fields = fingerprint(CHANNEL_SPEC, ("channel", "_creationTime", "_id"))
    assert with_fields != plain
    assert with_fields != fingerprint(CHANNEL_SPEC, ("channel", "_id"))


# --- round trip property --------------------------------------------------------

names = st.sampled_from(["messages", "users", "_storage"])
values = st.one_of(
    st.just(UNSET), st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.text(max_size=3)
)
ranges = st.lists(
    st.builds(
        RangeExpr,
        st.sampled_from(["Eq", "Gt", "Gte", "Lt", "Lte"]),
        st.sampled_from(["a", "b.c"]),
        values,
    ),
    max_size=3,
).map(tuple)
orders = st.sampled_from(["asc", "desc"])
sources = st.one_of(
    st.builds(FullTableScan, names, orders),
    st.builds(
        IndexRangeSource, names, st.sampled_from(["by_a", "by_creation_time"]), ranges, orders
    ),
    st.builds(
        SearchSource,
        names,
        st.just("search_body"),
        st.lists(st.builds(SearchFilter, st.just("Eq"), st.just("f"), values), max_size=2).map(
            lambda eqs: (SearchFilter("Search", "body", "hi"), *eqs)
        ),
    ),
)
filters = st.one_of(
    st.builds(Compare, st.sampled_from(["eq", "lt"]), st.just(Field("a")), values.map(Literal)),
    st.builds(lambda x: Not(And((x,))), values.map(Literal)),
)
operators = st.lists(
    st.one_of(st.builds(FilterOp, filters), st.builds(LimitOp, st.integers(0, 10**6))), max_size=4
).map(tuple)


@settings(max_examples=150, deadline=None)
@given(st.builds(QuerySpec, sources, operators))
def test_parse_inverts_query_to_json(spec):
    again = parse_query(query_to_json(spec))
    assert again == spec
    assert fingerprint(again) == fingerprint(spec)
