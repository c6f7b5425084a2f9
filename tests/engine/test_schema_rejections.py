"""Schemas the reference server refuses are refused here, with a message that says where."""

from __future__ import annotations

import copy

import pytest
from schema_exports import S, chat, field, messages, rejected, with_messages

from engine.limits import LIMITS
from engine.schema import parse_schema


def db_indexes(*pairs: tuple[str, list]) -> dict:
    return with_messages(indexes=[{"indexDescriptor": n, "fields": f} for n, f in pairs])


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected an object"),
        (7, "expected an object"),
        ({"tables": {}}, '"tables" must be an array'),
        ({"tables": ["x"]}, "tables[0] must be an object"),
        ({"tables": [], "schemaValidation": "yes"}, '"schemaValidation" must be a boolean'),
    ],
)
def test_malformed_documents_are_refused(bad, words):
    assert words in rejected(bad)


@pytest.mark.parametrize("name", ["", "1messages", "has-dash", "a" * 65, "___", 5, None])
def test_bad_table_names_are_refused(name):
    assert "Invalid table name" in rejected(with_messages(tableName=name))


def test_system_table_names_are_reserved():
    assert 'names starting with "_" are reserved' in rejected(with_messages(tableName="_storage"))


def test_duplicate_tables_are_refused():
    schema_json = chat()
    schema_json["tables"].append(copy.deepcopy(messages(schema_json)))
    assert 'table "messages" is defined more than once' in rejected(schema_json)


def test_index_names_are_unique_across_all_kinds_of_index():
    dup_db = db_indexes(("by_x", ["body"]), ("by_x", ["author"]))
    assert 'two or more definitions of index "by_x"' in rejected(dup_db)
    dup_search = with_messages(
        searchIndexes=[{"indexDescriptor": "by_channel", "searchField": "body", "filterFields": []}]
    )
    assert 'two or more definitions of index "by_channel"' in rejected(dup_search)
    dup_vector = chat()
    messages(dup_vector)["vectorIndexes"][0]["indexDescriptor"] = "search_body"
    assert 'definitions of index "search_body"' in rejected(dup_vector)
    staged = with_messages(stagedDbIndexes=[{"indexDescriptor": "by_channel", "fields": ["body"]}])
    assert 'definitions of index "by_channel"' in rejected(staged)


@pytest.mark.parametrize("name", ["by_id", "by_creation_time", "_private", "_"])
def test_reserved_index_names_are_refused(name):
    assert "reserved" in rejected(db_indexes((name, ["body"])))


@pytest.mark.parametrize("name", ["by-body", "1st", "", "b" * 65, 3, None])
def test_index_names_must_be_identifiers(name):
    assert "invalid index name" in rejected(db_indexes((name, ["body"])))


def test_an_index_needs_at_least_one_field():
    assert "must have at least one field" in rejected(db_indexes(("by_nothing", [])))
    assert "must have at least one field" in rejected(db_indexes(("by_ct", ["_creationTime"])))


@pytest.mark.parametrize("path", ["", ".body", "body.", "meta..nested", "with space", "a-b", 4])
def test_index_fields_must_be_field_paths(path):
    assert "invalid field path" in rejected(db_indexes(("by_bad", [path])))
    search = with_messages(
        searchIndexes=[{"indexDescriptor": "s", "searchField": path, "filterFields": []}]
    )
    assert "invalid field path" in rejected(search)


def test_fields_must_be_an_array():
    assert '"fields" must be an array' in rejected(db_indexes(("by_body", "body")))


def test_id_may_not_be_listed_in_an_index():
    assert "`_id` is not a valid index field" in rejected(db_indexes(("by_i", ["body", "_id"])))


def test_creation_time_may_only_come_last():
    message = rejected(db_indexes(("by_ct", ["_creationTime", "body"])))
    assert "`_creationTime` may only come last" in message


def test_other_underscore_fields_are_reserved_in_indexes():
    assert "reserved fields" in rejected(db_indexes(("by_u", ["meta._secret"])))


def test_duplicate_fields_within_an_index_are_refused():
    assert 'duplicate field "body"' in rejected(db_indexes(("by_b", ["body", "author", "body"])))


def test_two_indexes_over_the_same_fields_are_refused():
    message = rejected(db_indexes(("by_a", ["body"]), ("by_b", ["body", "_creationTime"])))
    assert 'index "by_a" and index "by_b" have the same fields' in message


def test_indexes_per_table_at_the_limit_and_one_past():
    def with_n(n: int) -> dict:
        names = [f"f{i}" for i in range(n)]
        doc_type = {"type": "object", "value": {f: field(S) for f in names}}
        indexes = [{"indexDescriptor": f"by_{f}", "fields": [f]} for f in names]
        return {
            "tables": [{"tableName": "t", "indexes": indexes, "documentType": doc_type}],
            "schemaValidation": True,
        }

    limit = LIMITS.indexes_per_table_max
    assert len(parse_schema(with_n(limit)).index_defs("t")) == limit + 2
    assert f"cannot have more than {limit} indexes" in rejected(with_n(limit + 1))


def test_fields_per_index_at_the_limit_and_one_past():
    # The reference counts the _creationTime that ends every index.
    user_max = LIMITS.fields_per_index_max - 1
    names = [f"f{i}" for i in range(user_max + 1)]
    doc_type = {"type": "object", "value": {f: field(S) for f in names}}

    def schema_with(fields: list[str]) -> dict:
        return {
            "tables": [
                {
                    "tableName": "t",
                    "documentType": doc_type,
                    "indexes": [{"indexDescriptor": "wide", "fields": fields}],
                }
            ],
            "schemaValidation": True,
        }

    wide = parse_schema(schema_with(names[:user_max])).find_index("t", "wide")
    assert len(wide.fields) == LIMITS.fields_per_index_max + 1  # and _id
    assert "indexes may have up to" in rejected(schema_with(names))


def test_search_index_limits():
    def searches(n: int, filters: int = 0) -> dict:
        fields = [f"s{i}" for i in range(max(n, filters))]
        doc_type = {"type": "object", "value": {f: field(S) for f in fields}}
        indexes = [
            {
                "indexDescriptor": f"search_{i}",
                "searchField": f"s{i}",
                "filterFields": fields[:filters],
            }
            for i in range(n)
        ]
        return {
            "tables": [
                {
                    "tableName": "t",
                    "indexes": [],
                    "searchIndexes": indexes,
                    "documentType": doc_type,
                }
            ],
            "schemaValidation": True,
        }

    n_max, f_max = LIMITS.search_indexes_per_table_max, LIMITS.filter_fields_max
    assert len(parse_schema(searches(n_max)).tables["t"].search_indexes) == n_max
    assert f"more than {n_max} search indexes" in rejected(searches(n_max + 1))
    parse_schema(searches(1, f_max))
    assert f"filter_fields_max = {f_max}" in rejected(searches(1, f_max + 1))


def test_two_search_indexes_over_the_same_field_are_refused():
    twice = chat()
    search = messages(twice)["searchIndexes"]
    search.append({**search[0], "indexDescriptor": "search_again", "filterFields": []})
    assert "have the same searchField" in rejected(twice)


def vector_schema(*indexes: dict) -> dict:
    doc_type = {
        "type": "object",
        "value": {
            "v": field({"type": "array", "value": {"type": "number"}}),
            "w": field(
                {
                    "type": "union",
                    "value": [{"type": "array", "value": {"type": "number"}}, {"type": "null"}],
                }
            ),
            "tag": field(S),
        },
    }
    return {
        "tables": [
            {
                "tableName": "t",
                "indexes": [],
                "vectorIndexes": list(indexes),
                "documentType": doc_type,
            }
        ],
        "schemaValidation": True,
    }


def vector(name: str = "by_v", vector_field: str = "v", dims: object = 8, filters=()) -> dict:
    return {
        "indexDescriptor": name,
        "vectorField": vector_field,
        "dimensions": dims,
        "filterFields": list(filters),
    }


def test_vector_dimensions_at_the_limits_and_past_them():
    low, high = LIMITS.vector_dimensions_min, LIMITS.vector_dimensions_max
    for dims in (low, high):
        (index,) = parse_schema(vector_schema(vector(dims=dims))).tables["t"].vector_indexes
        assert index.dimensions == dims
    for dims in (low - 1, high + 1, 0, -3, 8.5, "8", None, True):
        message = rejected(vector_schema(vector(dims=dims)))
        assert f"must be an integer between {low} and {high}" in message


def test_legacy_dimension_spelling_is_accepted():
    legacy = vector()
    legacy["dimension"] = legacy.pop("dimensions")
    assert parse_schema(vector_schema(legacy)).tables["t"].vector_indexes[0].dimensions == 8
    # ...while the legacy spelling still holds the same rule as the current one.
    legacy["dimension"] = 0
    assert "must be an integer between" in rejected(vector_schema(legacy))


def test_vector_index_limits():
    n_max = LIMITS.vector_indexes_per_table_max
    many = [vector(f"by_v{i}", dims=2 + i) for i in range(n_max)]
    parse_schema(vector_schema(*many))
    assert "more than" in rejected(vector_schema(*many, vector("by_more", dims=100)))
    f_max = LIMITS.filter_fields_max
    parse_schema(vector_schema(vector(filters=["tag"] * f_max)))
    assert "filter_fields_max" in rejected(vector_schema(vector(filters=["tag"] * (f_max + 1))))


def test_two_vector_indexes_over_the_same_field_and_size_are_refused():
    message = rejected(vector_schema(vector("a"), vector("b")))
    assert "have the same vectorField and dimensions" in message
    parse_schema(vector_schema(vector("a"), vector("b", dims=16)))


def test_vector_field_must_be_able_to_hold_an_array_of_float64():
    parse_schema(vector_schema(vector(vector_field="w")))
    assert "neither an array of float64" in rejected(vector_schema(vector(vector_field="tag")))
    assert 'the field "ghost" that does not exist' in rejected(
        vector_schema(vector(vector_field="ghost"))
    )


def test_indexes_must_reference_fields_the_document_can_have():
    missing = db_indexes(("by_ghost", ["ghost"]))
    message = rejected(missing)
    assert 'the index "by_ghost" is invalid because it references the field "ghost"' in message
    assert "does not exist" in rejected(db_indexes(("by_deep", ["meta.nested.ghost"])))
    assert "does not exist" in rejected(db_indexes(("by_into_string", ["body.length"])))
    search = with_messages(
        searchIndexes=[{"indexDescriptor": "s", "searchField": "ghost", "filterFields": []}]
    )
    assert 'the field "ghost" that does not exist' in rejected(search)
    missing["schemaValidation"] = False
    parse_schema(missing)  # without validation the reference does not check


def test_document_type_must_be_an_object_union_of_objects_or_any():
    message = rejected(with_messages(documentType=S))
    assert "must be an object, a union of objects, or `v.any()`. Found v.string()." in message
    mixed = {"type": "union", "value": [{"type": "object", "value": {}}, S]}
    assert "Found v.union(v.object({}), v.string())" in rejected(with_messages(documentType=mixed))


def test_bad_validators_in_a_table_say_where():
    message = rejected(with_messages(documentType={"type": "object", "value": {"a": field({})}}))
    assert message.startswith('In table "messages": documentType: Invalid validator at value.a')
