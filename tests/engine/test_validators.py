"""Validators: parsing the npm JSON form, validating values, messages that name the path."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.errors import SchemaError, SchemaValidationError
from engine.ids import encode_id
from engine.limits import LIMITS
from engine.validation import matches, validate
from engine.validators import (
    FieldValidator,
    VAny,
    VArray,
    VBoolean,
    VBytes,
    VCommitTs,
    VFloat64,
    VId,
    VInt64,
    VLiteral,
    VNull,
    VObject,
    VRecord,
    VString,
    VUnion,
    describe,
    parse_validator,
    validator_to_json,
)
from engine.value_text import render_value
from engine.values import UNSET

CHANNEL_ID = encode_id(10001, bytes(range(16)))
USER_ID = encode_id(10002, bytes(range(16)))
STORAGE_ID = encode_id(540, bytes(range(16)))
TABLES = {CHANNEL_ID: "channels", USER_ID: "users", STORAGE_ID: "_storage"}


def table_of_id(text: str) -> str | None:
    return TABLES.get(text)


def field(validator: dict, optional: bool = False) -> dict:
    return {"fieldType": validator, "optional": optional}


def obj(**fields: dict) -> dict:
    return {"type": "object", "value": fields}


def lit(value: object) -> dict:
    return {"type": "literal", "value": value}


S = {"type": "string"}
N = {"type": "number"}
STRING_OR_A = {"type": "union", "value": [S, lit("a")]}


def check(v: dict, value: object) -> None:
    validate(parse_validator(v), value, table_of_id=table_of_id)


def failure(v: dict, value: object, path: str = "") -> str:
    with pytest.raises(SchemaValidationError) as info:
        validate(parse_validator(v), value, path=path, table_of_id=table_of_id)
    assert info.value.code == "SchemaValidationFailed"
    return info.value.message


# --- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("null", VNull()),
        ("number", VFloat64()),
        ("bigint", VInt64()),
        ("commitTs", VCommitTs()),
        ("boolean", VBoolean()),
        ("string", VString()),
        ("bytes", VBytes()),
        ("any", VAny()),
    ],
)
def test_simple_types_parse_and_export_unchanged(kind, expected):
    assert parse_validator({"type": kind}) == expected
    assert validator_to_json(expected) == {"type": kind}


def test_legacy_map_and_set_read_as_any():
    assert parse_validator({"type": "map", "keys": S, "values": S}) == VAny()
    assert parse_validator({"type": "set", "value": S}) == VAny()


def test_literals_keep_their_convex_type():
    assert parse_validator(lit("text")) == VLiteral("text")
    assert parse_validator(lit(3)) == VLiteral(3.0)
    assert parse_validator(lit(True)) == VLiteral(True)
    int_literal = parse_validator(lit({"$integer": "KgAAAAAAAAA="}))
    assert int_literal == VLiteral(42)
    assert type(int_literal.value) is int
    assert VLiteral(42) != VLiteral(42.0) and VLiteral(1.0) != VLiteral(True)
    assert validator_to_json(int_literal) == lit({"$integer": "KgAAAAAAAAA="})
    assert len({VLiteral(1), VLiteral(1.0), VLiteral(True)}) == 3


def test_containers_parse_into_the_tree():
    v = parse_validator(
        obj(
            tags=field({"type": "array", "value": S}),
            who=field({"type": "union", "value": [{"type": "id", "tableName": "users"}, N]}, True),
            scores=field({"type": "record", "keys": S, "values": field(N)}),
        )
    )
    assert v == VObject.of(
        {
            "tags": VArray(VString()),
            "who": FieldValidator(VUnion((VId("users"), VFloat64())), optional=True),
            "scores": VRecord(VString(), VFloat64()),
        }
    )


def test_object_field_order_does_not_matter():
    a = parse_validator(obj(a=field(S), b=field(N)))
    b = parse_validator({"type": "object", "value": {"b": field(N), "a": field(S)}})
    assert a == b
    assert validator_to_json(a) == validator_to_json(b)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("string", "expected a validator object"),
        ({}, 'string "type"'),
        ({"type": "strng"}, 'unknown validator type "strng"'),
        ({"type": "array"}, '"value"'),
        ({"type": "id", "tableName": "bad-name"}, "identifier"),
        ({"type": "id", "tableName": 5}, "identifier"),
        ({"type": "union", "value": S}, "list of validators"),
        (lit(None), "string, number, bigint or boolean"),
        (lit({"$bytes": "AA=="}), "string, number, bigint or boolean"),
        (lit([1]), "string, number, bigint or boolean"),
        (lit({"$integer": "AA=="}), "exactly 8 bytes"),
        (obj(**{"a-b": field(S)}), "not an identifier"),
        (obj(**{"$a": field(S)}), "not an identifier"),
        ({"type": "object", "value": {"a": S}}, '"fieldType"'),
        ({"type": "object", "value": {"a": {"fieldType": S}}}, '"optional"'),
        ({"type": "object", "value": []}, "object of fields"),
        ({"type": "record", "keys": N, "values": field(N)}, "only have string keys"),
        ({"type": "record", "keys": {"type": "any"}, "values": field(N)}, "string keys"),
        (
            {"type": "record", "keys": lit("a"), "values": field(N)},
            "literal keys are not supported",
        ),
        (
            {"type": "record", "keys": STRING_OR_A, "values": field(N)},
            "literal keys are not supported",
        ),
        ({"type": "record", "keys": S, "values": field(N, True)}, "optional values"),
    ],
)
def test_malformed_validator_json_is_a_clear_schema_error(bad, words):
    with pytest.raises(SchemaError) as info:
        parse_validator(bad)
    assert words in info.value.message
    assert info.value.code == "InvalidSchema"


def test_parse_errors_name_the_path():
    bad = obj(meta=field(obj(inner=field({"type": "array", "value": {"type": "nope"}}))))
    with pytest.raises(SchemaError, match=r"at args\.value\.meta\.fieldType\.value\.inner"):
        parse_validator(bad, path="args")


def test_record_keys_may_be_ids_and_unions_of_them():
    keys = {"type": "union", "value": [S, {"type": "id", "tableName": "users"}]}
    v = parse_validator({"type": "record", "keys": keys, "values": field(N)})
    assert v == VRecord(VUnion((VString(), VId("users"))), VFloat64())


def test_nesting_past_the_limit_is_refused():
    deep: dict = S
    for _ in range(LIMITS.value_depth_max):
        deep = {"type": "array", "value": deep}
    with pytest.raises(SchemaError, match="nest more than"):
        parse_validator(deep)
    parse_validator(deep["value"])


# --- validation -----------------------------------------------------------------

MESSAGE = obj(
    author=field(obj(name=field(S))),
    tags=field({"type": "array", "value": S}),
    meta=field(obj(nested=field(obj(field=field(N))))),
    note=field(S, optional=True),
)
GOOD = {"author": {"name": "ada"}, "tags": ["a", "b", "c"], "meta": {"nested": {"field": 1.5}}}


def test_a_matching_value_passes():
    check(MESSAGE, GOOD)
    check(MESSAGE, {**GOOD, "note": "hi"})
    assert matches(parse_validator(MESSAGE), GOOD, table_of_id=table_of_id)


def test_wrong_type_names_the_nested_path_the_value_and_the_validator():
    message = failure(MESSAGE, {**GOOD, "author": {"name": 12.0}})
    assert message == (
        "Value does not match validator.\nPath: .author.name\nValue: 12\nValidator: v.string()"
    )


def test_paths_reach_into_arrays_and_deep_objects():
    assert "Path: .tags[2]\nValue: 3n\n" in failure(MESSAGE, {**GOOD, "tags": ["a", "b", 3]})
    bad_meta = {**GOOD, "meta": {"nested": {"field": "x"}}}
    assert 'Path: .meta.nested.field\nValue: "x"\nValidator: v.float64()' in failure(
        MESSAGE, bad_meta
    )


def test_the_caller_path_prefixes_the_message_path():
    assert "Path: args.author.name" in failure(MESSAGE, {**GOOD, "author": {"name": 1.0}}, "args")


def test_missing_required_field_is_named():
    message = failure(MESSAGE, {"tags": [], "meta": {"nested": {"field": 1.0}}})
    assert message.startswith("Object is missing the required field `author`.")
    assert "v.optional(...)" in message
    assert "Validator: v.object({author: v.object({name: v.string()})," in message


def test_missing_field_deep_down_names_the_enclosing_object_path():
    message = failure(MESSAGE, {**GOOD, "meta": {"nested": {}}})
    assert "required field `field`" in message and "Path: .meta.nested\n" in message


def test_extra_field_is_refused():
    message = failure(MESSAGE, {**GOOD, "spam": True})
    assert message.startswith("Object contains extra field `spam` that is not in the validator.")
    assert 'Object: {author: {name: "ada"}, ' in message


def test_optional_fields_may_be_absent_or_unset_but_not_null():
    check(MESSAGE, {**GOOD, "note": UNSET})
    assert "Path: .note\nValue: null" in failure(MESSAGE, {**GOOD, "note": None})
    assert "required field `author`" in failure(MESSAGE, {**GOOD, "author": UNSET})
    check(MESSAGE, {**GOOD, "extra": UNSET})  # an UNSET field is an absent field


def test_int64_and_float64_are_different_types():
    check({"type": "bigint"}, 5)
    check({"type": "commitTs"}, 1_700_000_000_000_000_000)
    check(N, 5.0)
    assert "Value: 5n\nValidator: v.float64()" in failure(N, 5)
    assert "Value: 5\nValidator: v.int64()" in failure({"type": "bigint"}, 5.0)
    assert "Validator: v.boolean()" in failure({"type": "boolean"}, 1)
    assert "Validator: v.int64()" in failure({"type": "bigint"}, True)
    assert "Validator: v.bytes()" in failure({"type": "bytes"}, "AA==")
    assert "Validator: v.null()" in failure({"type": "null"}, UNSET)


def test_special_floats_are_numbers():
    for x in (math.nan, math.inf, -math.inf, -0.0):
        check(N, x)


def test_literal_uses_convex_equality():
    check(lit("text"), "text")
    check(lit(1), 1.0)
    assert failure(lit(1), 1) == "`1n` does not match literal validator `v.literal(1)`."
    big = lit({"$integer": "AQAAAAAAAAA="})
    check(big, 1)
    assert "v.literal(1n)" in failure(big, 1.0)
    assert "v.literal(true)" in failure(lit(True), 1.0)
    negative_zero = parse_validator(lit({"$float": "AAAAAAAAAIA="}))
    assert not matches(negative_zero, 0.0, table_of_id=table_of_id)
    assert matches(negative_zero, -0.0, table_of_id=table_of_id)


def test_literal_mismatch_inside_an_object_names_the_path():
    message = failure(obj(kind=field(lit("text"))), {"kind": "video"})
    assert message == '`"video"` does not match literal validator `v.literal("text")`.\nPath: .kind'


def test_union_accepts_any_member_and_reports_the_whole_union():
    kind = {"type": "union", "value": [lit("text"), lit("image")]}
    check(kind, "text")
    check(kind, "image")
    message = failure(obj(kind=field(kind)), {"kind": "video"})
    assert message == (
        'Value does not match validator.\nPath: .kind\nValue: "video"\n'
        'Validator: v.union(v.literal("text"), v.literal("image"))'
    )


def test_union_of_objects_matches_either_shape():
    shapes = {
        "type": "union",
        "value": [obj(kind=field(lit("a")), x=field(N)), obj(kind=field(lit("b")), y=field(S))],
    }
    check(shapes, {"kind": "a", "x": 1.0})
    check(shapes, {"kind": "b", "y": "s"})
    assert "Value does not match validator." in failure(shapes, {"kind": "a", "y": "s"})


def test_single_member_union_reports_the_member_problem():
    message = failure({"type": "union", "value": [obj(a=field(S))]}, {"a": 1.0})
    assert "Path: .a\n" in message


def test_empty_union_matches_nothing():
    assert "v.union()" in failure({"type": "union", "value": []}, None)


def test_any_accepts_every_value():
    for value in (None, 1, 1.0, True, "s", b"b", [1], {"a": [{}]}):
        check({"type": "any"}, value)


def test_record_checks_every_key_and_value():
    scores = {"type": "record", "keys": S, "values": field(N)}
    check(scores, {})
    check(scores, {"ada": 1.0, "bob": 2.0, "with space": 3.0})
    assert 'Path: .bob\nValue: "x"' in failure(scores, {"ada": 1.0, "bob": "x"})
    assert 'Path: ["with space"]\n' in failure(scores, {"with space": None})
    assert "Validator: v.record(v.string(), v.float64())" in failure(scores, [1.0])


def test_record_keys_that_must_be_ids():
    by_user = {"type": "record", "keys": {"type": "id", "tableName": "users"}, "values": field(N)}
    check(by_user, {USER_ID: 1.0})
    message = failure(obj(votes=field(by_user)), {"votes": {"nobody": 1.0}})
    assert message.startswith('Record key "nobody" does not match the record\'s key validator.')
    assert "Path: .votes\n" in message and 'Validator: v.id("users")' in message


def test_id_validator_checks_the_table():
    v = {"type": "id", "tableName": "channels"}
    check(v, CHANNEL_ID)
    assert failure(v, USER_ID) == (
        f'Found ID "{USER_ID}" from table `users`, which does not match the table name in '
        'validator `v.id("channels")`.'
    )
    assert "from a system table" in failure(v, STORAGE_ID)
    check({"type": "id", "tableName": "_storage"}, STORAGE_ID)
    assert 'Value: "not an id"\nValidator: v.id("channels")' in failure(v, "not an id")
    assert "Value: 1\n" in failure(v, 1.0)


def test_describe_reads_like_the_code_that_built_the_validator():
    v = parse_validator(
        obj(
            channel=field({"type": "id", "tableName": "channels"}),
            author=field(S, optional=True),
            count=field({"type": "bigint"}),
            tags=field({"type": "array", "value": S}),
            kind=field({"type": "union", "value": [lit("text"), lit(2), lit(False)]}),
            blob=field({"type": "bytes"}),
        )
    )
    assert describe(v) == (
        "v.object({author: v.optional(v.string()), blob: v.bytes(), "
        'channel: v.id("channels"), count: v.int64(), '
        'kind: v.union(v.literal("text"), v.literal(2), v.literal(false)), '
        "tags: v.array(v.string())})"
    )


def test_values_render_as_javascript_would_show_them():
    assert render_value({"a b": [1, 2.5, None, b"xy", math.nan]}) == (
        '{"a b": [1n, 2.5, null, ArrayBuffer { byteLength: 2 }, NaN]}'
    )
    assert render_value(-math.inf) == "-Infinity"
    long = render_value("x" * 1000)
    assert len(long) == 300 and long.endswith("...")


# --- properties -------------------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True)
LITERALS = st.one_of(
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
).map(VLiteral)
LEAVES = st.one_of(
    st.sampled_from(
        [VNull(), VFloat64(), VInt64(), VCommitTs(), VBoolean(), VString(), VBytes(), VAny()]
    ),
    LITERALS,
    NAMES.map(VId),
)
RECORD_KEYS = st.recursive(
    st.one_of(st.just(VString()), NAMES.map(VId)),
    lambda inner: st.lists(inner, min_size=1, max_size=3).map(lambda m: VUnion(tuple(m))),
    max_leaves=4,
)


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    fields = st.builds(FieldValidator, inner, st.booleans())
    return st.one_of(
        inner.map(VArray),
        st.dictionaries(NAMES, fields, max_size=4).map(VObject.of),
        st.lists(inner, max_size=4).map(lambda m: VUnion(tuple(m))),
        st.builds(VRecord, RECORD_KEYS, inner),
    )


VALIDATORS = st.recursive(LEAVES, _containers, max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(VALIDATORS)
def test_validator_json_round_trips(v):
    exported = validator_to_json(v)
    assert parse_validator(exported) == v
    text = json.dumps(exported)
    assert parse_validator(json.loads(text)) == v
    assert validator_to_json(parse_validator(json.loads(text))) == json.loads(text)
    assert describe(v)


class _Impossible(Exception):
    pass


def _sample(v) -> object:
    """A value that ``v`` should accept (ids are of the fake form "id:<table>")."""
    simple = {
        VNull: None,
        VFloat64: 0.5,
        VInt64: 7,
        VCommitTs: 7,
        VBoolean: True,
        VString: "s",
        VBytes: b"b",
        VAny: [1.0],
    }
    if type(v) in simple:
        return simple[type(v)]
    if isinstance(v, VLiteral):
        return v.value
    if isinstance(v, VId):
        return "id:" + v.table_name
    if isinstance(v, VArray):
        return [_sample(v.element)]
    if isinstance(v, VObject):
        return {name: _sample(f.validator) for name, f in v.fields}
    if isinstance(v, VUnion):
        if not v.members:
            raise _Impossible
        return _sample(v.members[-1])
    if isinstance(v, VRecord):
        return {_sample(v.keys): _sample(v.values)}
    raise AssertionError(v)


@settings(max_examples=300, deadline=None)
@given(VALIDATORS)
def test_values_built_for_a_validator_pass_it(v):
    try:
        value = _sample(v)
    except _Impossible:
        assume(False)
    fake = {"table_of_id": lambda s: s[3:] if s.startswith("id:") else None}
    validate(v, value, **fake)
    if isinstance(v, VObject) and v.fields:
        name, spec = v.fields[0]
        without = {k: x for k, x in value.items() if k != name}
        assert matches(v, without, **fake) == spec.optional
