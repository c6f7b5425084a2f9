"""Schemas: the npm export parsed and checked like the reference server, indexes, diffs."""

from __future__ import annotations

import copy
import json

import pytest

from engine.errors import SchemaError, SchemaValidationError
from engine.ids import encode_id
from engine.limits import LIMITS
from engine.schema import (
    IndexDef,
    Schema,
    SchemaChange,
    SearchIndexDef,
    TableSchema,
    VectorIndexDef,
    diff_schemas,
    parse_schema,
    validate_document,
)
from engine.validators import VAny, VObject, VString, describe


def field(validator: dict, optional: bool = False) -> dict:
    return {"fieldType": validator, "optional": optional}


def lit(text: str) -> dict:
    return {"type": "literal", "value": text}


S = {"type": "string"}


def obj(**fields: dict) -> dict:
    return {"type": "object", "value": fields}


# export() of, with npm 1.48:
#   messages: defineTable({channel: v.id("channels"), body: v.string(),
#       author: v.optional(v.string()), tags: v.array(v.string()),
#       meta: v.object({nested: v.object({field: v.number()}), source: v.optional(v.string())}),
#       kind: v.union(v.literal("text"), v.literal("image")), count: v.int64(), blob: v.bytes(),
#       embedding: v.optional(v.array(v.float64()))})
#     .index("by_channel", ["channel"]).index("by_channel_kind", ["channel", "kind"])
#     .index("by_meta_field", ["meta.nested.field"])
#     .searchIndex("search_body", {searchField: "body", filterFields: ["channel", "kind"]})
#     .vectorIndex("by_embedding", {vectorField: "embedding", dimensions: 1536,
#                                   filterFields: ["channel"]}),
#   channels: defineTable({name: v.string()}).index("by_name", ["name"])
CHAT_EXPORT = {
    "tables": [
        {
            "tableName": "messages",
            "indexes": [
                {"indexDescriptor": "by_channel", "fields": ["channel"]},
                {"indexDescriptor": "by_channel_kind", "fields": ["channel", "kind"]},
                {"indexDescriptor": "by_meta_field", "fields": ["meta.nested.field"]},
            ],
            "stagedDbIndexes": [],
            "searchIndexes": [
                {
                    "indexDescriptor": "search_body",
                    "searchField": "body",
                    "filterFields": ["channel", "kind"],
                }
            ],
            "stagedSearchIndexes": [],
            "vectorIndexes": [
                {
                    "indexDescriptor": "by_embedding",
                    "vectorField": "embedding",
                    "dimensions": 1536,
                    "filterFields": ["channel"],
                }
            ],
            "stagedVectorIndexes": [],
            "documentType": {
                "type": "object",
                "value": {
                    "channel": field({"type": "id", "tableName": "channels"}),
                    "body": field(S),
                    "author": field(S, optional=True),
                    "tags": field({"type": "array", "value": S}),
                    "meta": field(
                        {
                            "type": "object",
                            "value": {
                                "nested": field(obj(field=field({"type": "number"}))),
                                "source": field(S, optional=True),
                            },
                        }
                    ),
                    "kind": field({"type": "union", "value": [lit("text"), lit("image")]}),
                    "count": field({"type": "bigint"}),
                    "blob": field({"type": "bytes"}),
                    "embedding": field(
                        {"type": "array", "value": {"type": "number"}}, optional=True
                    ),
                },
            },
            "stagedDocumentType": None,
        },
        {
            "tableName": "channels",
            "indexes": [{"indexDescriptor": "by_name", "fields": ["name"]}],
            "stagedDbIndexes": [],
            "searchIndexes": [],
            "stagedSearchIndexes": [],
            "vectorIndexes": [],
            "stagedVectorIndexes": [],
            "documentType": {"type": "object", "value": {"name": field(S)}},
            "stagedDocumentType": None,
        },
    ],
    "schemaValidation": True,
}

CHANNEL_ID = encode_id(10001, bytes(16))
MESSAGE_ID = encode_id(10002, bytes(16))
IDS = {CHANNEL_ID: "channels", MESSAGE_ID: "messages"}


def table_of_id(text: str) -> str | None:
    return IDS.get(text)


def chat() -> dict:
    return copy.deepcopy(CHAT_EXPORT)


def messages(schema: dict) -> dict:
    return schema["tables"][0]


def rejected(schema: object) -> str:
    with pytest.raises(SchemaError) as info:
        parse_schema(schema)  # type: ignore[arg-type]
    assert info.value.code == "InvalidSchema"
    return info.value.message


GOOD_MESSAGE = {
    "_id": MESSAGE_ID,
    "_creationTime": 1_700_000_000_000.5,
    "channel": CHANNEL_ID,
    "body": "hello",
    "tags": ["a", "b", "c"],
    "meta": {"nested": {"field": 1.0}},
    "kind": "text",
    "count": 3,
    "blob": b"\x00\x01",
}

# --- parsing the export ------------------------------------------------------------


def test_the_chat_export_parses_into_tables_and_indexes():
    schema = parse_schema(CHAT_EXPORT)
    assert list(schema.tables) == ["messages", "channels"]
    assert schema.schema_validation is True
    t = schema.tables["messages"]
    assert [i.name for i in t.indexes] == ["by_channel", "by_channel_kind", "by_meta_field"]
    assert t.search_indexes == (
        SearchIndexDef("messages", "search_body", "body", ("channel", "kind")),
    )
    assert t.vector_indexes == (
        VectorIndexDef("messages", "by_embedding", "embedding", 1536, ("channel",)),
    )
    assert isinstance(t.document_validator, VObject)
    assert t.document_validator.field_map["body"].validator == VString()


def test_index_defs_hold_the_full_key_layout_builtins_first():
    schema = parse_schema(CHAT_EXPORT)
    assert schema.index_defs("messages") == (
        IndexDef("messages", "by_id", ("_id",)),
        IndexDef("messages", "by_creation_time", ("_creationTime", "_id")),
        IndexDef("messages", "by_channel", ("channel", "_creationTime", "_id")),
        IndexDef("messages", "by_channel_kind", ("channel", "kind", "_creationTime", "_id")),
        IndexDef("messages", "by_meta_field", ("meta.nested.field", "_creationTime", "_id")),
    )
    assert schema.find_index("messages", "by_channel_kind").fields[:2] == ("channel", "kind")
    assert schema.find_index("messages", "by_id") == IndexDef("messages", "by_id", ("_id",))
    assert schema.find_index("messages", "search_body") is None
    assert schema.find_index("messages", "nope") is None


def test_tables_outside_the_schema_have_only_the_builtin_indexes():
    for schema in (parse_schema(CHAT_EXPORT), Schema.empty()):
        assert [i.name for i in schema.index_defs("notes")] == ["by_id", "by_creation_time"]
        assert schema.find_index("notes", "by_creation_time").fields == ("_creationTime", "_id")


def test_the_npm_148_export_round_trips_exactly():
    schema = parse_schema(CHAT_EXPORT)
    assert schema.to_json() == CHAT_EXPORT
    text = json.dumps(CHAT_EXPORT)
    assert parse_schema(text) == schema
    assert parse_schema(text.encode()) == schema
    assert parse_schema(json.dumps(schema.to_json())) == schema


def test_an_older_export_without_staged_fields_reads_the_same():
    old = chat()
    for t in old["tables"]:
        for key in ("stagedDbIndexes", "stagedSearchIndexes", "stagedVectorIndexes"):
            del t[key]
        del t["stagedDocumentType"]
    schema = parse_schema(old)
    assert schema == parse_schema(CHAT_EXPORT)
    assert schema.to_json() == CHAT_EXPORT


def test_the_stored_form_with_creation_time_listed_last_is_the_same_index():
    stored = chat()
    messages(stored)["indexes"][0]["fields"] = ["channel", "_creationTime"]
    schema = parse_schema(stored)
    assert schema == parse_schema(CHAT_EXPORT)
    assert schema.to_json() == CHAT_EXPORT


def test_staged_indexes_are_kept_but_not_built():
    schema_json = chat()
    messages(schema_json)["stagedDbIndexes"] = [{"indexDescriptor": "by_body", "fields": ["body"]}]
    messages(schema_json)["stagedDocumentType"] = {"type": "any"}
    schema = parse_schema(schema_json)
    t = schema.tables["messages"]
    assert t.staged_indexes == (IndexDef("messages", "by_body", ("body", "_creationTime", "_id")),)
    assert t.staged_document_validator == VAny()
    assert schema.find_index("messages", "by_body") is None
    assert schema.to_json() == schema_json


def test_schema_validation_defaults_to_off_when_absent():
    old = chat()
    del old["schemaValidation"]
    assert parse_schema(old).schema_validation is False


def test_system_fields_in_the_document_type_are_dropped():
    schema_json = chat()
    doc_type = messages(schema_json)["documentType"]
    doc_type["value"]["_id"] = field({"type": "id", "tableName": "messages"})
    doc_type["value"]["_creationTime"] = field({"type": "number"})
    assert parse_schema(schema_json) == parse_schema(CHAT_EXPORT)


def test_document_type_may_be_a_union_of_objects_or_any():
    union = {
        "type": "union",
        "value": [
            {"type": "object", "value": {"a": field(S)}},
            {"type": "object", "value": {"b": field(S)}},
        ],
    }
    for doc_type in (union, {"type": "any"}, None):
        schema_json = {
            "tables": [{"tableName": "t", "indexes": [], "documentType": doc_type}],
            "schemaValidation": True,
        }
        parse_schema(schema_json)


def test_empty_schema():
    empty = Schema.empty()
    assert empty.tables == {} and empty.schema_validation is False
    assert parse_schema(empty.to_json()) == empty
    assert parse_schema({"tables": []}) == empty


def test_schema_is_frozen():
    schema = parse_schema(CHAT_EXPORT)
    with pytest.raises(TypeError):
        schema.tables["x"] = TableSchema("x")  # type: ignore[index]
    with pytest.raises(AttributeError):
        schema.schema_validation = False  # type: ignore[misc]


# --- rejections ---------------------------------------------------------------------


def with_messages(**changes: object) -> dict:
    schema_json = chat()
    messages(schema_json).update(changes)
    return schema_json


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


# --- validating documents -----------------------------------------------------------


def test_a_matching_document_passes_with_its_system_fields():
    validate_document(parse_schema(CHAT_EXPORT), "messages", GOOD_MESSAGE, table_of_id=table_of_id)


def test_a_breaking_document_names_the_table_and_path():
    doc = {**GOOD_MESSAGE, "meta": {"nested": {"field": "deep"}}}
    with pytest.raises(SchemaValidationError) as info:
        validate_document(parse_schema(CHAT_EXPORT), "messages", doc, table_of_id=table_of_id)
    assert info.value.message == (
        'Failed to insert or update a document in table "messages" because it does not match '
        "the schema: Value does not match validator.\nPath: .meta.nested.field\n"
        'Value: "deep"\nValidator: v.float64()'
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tags": ["a", "b", 1.0]}, "Path: .tags[2]"),
        ({"kind": "video"}, "Path: .kind"),
        ({"count": 3.0}, "Validator: v.int64()"),
        ({"channel": MESSAGE_ID}, "from table `messages`"),
        ({"author": None}, "Path: .author"),
        ({"surprise": 1.0}, "extra field `surprise`"),
    ],
)
def test_documents_breaking_the_chat_schema(change, words):
    with pytest.raises(SchemaValidationError, match="does not match the schema") as info:
        validate_document(
            parse_schema(CHAT_EXPORT),
            "messages",
            {**GOOD_MESSAGE, **change},
            table_of_id=table_of_id,
        )
    assert words in info.value.message


def test_missing_required_field_is_refused_and_optional_ones_may_go():
    schema = parse_schema(CHAT_EXPORT)
    with_author = {**GOOD_MESSAGE, "author": "ada", "embedding": [0.1, 0.2]}
    validate_document(schema, "messages", with_author, table_of_id=table_of_id)
    no_body = {k: v for k, v in GOOD_MESSAGE.items() if k != "body"}
    with pytest.raises(SchemaValidationError, match="missing the required field `body`"):
        validate_document(schema, "messages", no_body, table_of_id=table_of_id)


def test_nothing_is_validated_when_validation_is_off():
    off = chat()
    off["schemaValidation"] = False
    validate_document(parse_schema(off), "messages", {"anything": 1}, table_of_id=table_of_id)


def test_tables_not_in_the_schema_are_not_validated():
    validate_document(parse_schema(CHAT_EXPORT), "notes", {"x": 1}, table_of_id=table_of_id)


def test_a_table_without_a_document_type_takes_anything():
    schema = parse_schema(with_messages(documentType=None))
    validate_document(schema, "messages", {"x": [1]}, table_of_id=table_of_id)


def test_describe_of_the_parsed_document_type():
    t = parse_schema(CHAT_EXPORT).tables["channels"]
    assert describe(t.document_validator) == "v.object({name: v.string()})"


# --- diffs -------------------------------------------------------------------------


def test_no_change_is_an_empty_diff():
    schema = parse_schema(CHAT_EXPORT)
    change = diff_schemas(schema, parse_schema(json.dumps(CHAT_EXPORT)))
    assert change == SchemaChange() and change.is_empty and change.tables() == ()


def test_adding_everything_from_the_empty_schema():
    change = diff_schemas(Schema.empty(), parse_schema(CHAT_EXPORT))
    assert [i.name for i in change.added_indexes] == [
        "by_channel",
        "by_channel_kind",
        "by_meta_field",
        "by_name",
    ]
    assert [i.name for i in change.added_search_indexes] == ["search_body"]
    assert [i.name for i in change.added_vector_indexes] == ["by_embedding"]
    assert change.removed_indexes == () and change.tables() == ("channels", "messages")
    back = diff_schemas(parse_schema(CHAT_EXPORT), Schema.empty())
    assert back.removed_indexes == change.added_indexes and back.added_indexes == ()


def test_a_changed_index_is_removed_and_added():
    new = chat()
    messages(new)["indexes"][0]["fields"] = ["channel", "author"]
    change = diff_schemas(parse_schema(CHAT_EXPORT), parse_schema(new))
    assert change.removed_indexes == (
        IndexDef("messages", "by_channel", ("channel", "_creationTime", "_id")),
    )
    assert change.added_indexes == (
        IndexDef("messages", "by_channel", ("channel", "author", "_creationTime", "_id")),
    )
    assert change.tables() == ("messages",)


def test_search_and_vector_changes():
    new = chat()
    messages(new)["searchIndexes"][0]["filterFields"] = ["channel"]
    messages(new)["vectorIndexes"] = []
    change = diff_schemas(parse_schema(CHAT_EXPORT), parse_schema(new))
    assert change.added_indexes == change.removed_indexes == ()
    assert change.added_search_indexes[0].filter_fields == ("channel",)
    assert change.removed_search_indexes[0].filter_fields == ("channel", "kind")
    assert [v.name for v in change.removed_vector_indexes] == ["by_embedding"]
    assert not change.is_empty


def test_a_validator_change_alone_builds_nothing():
    new = chat()
    messages(new)["documentType"]["value"]["body"] = field(S, optional=True)
    assert diff_schemas(parse_schema(CHAT_EXPORT), parse_schema(new)).is_empty
