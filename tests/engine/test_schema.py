"""Schemas: the npm export parsed like the reference server, index layouts, diffs."""

from __future__ import annotations

import json

import pytest
from schema_exports import CHAT_EXPORT, S, chat, field, messages

from engine.schema import (
    IndexDef,
    Schema,
    SchemaChange,
    SearchIndexDef,
    TableSchema,
    VectorIndexDef,
    diff_schemas,
    parse_schema,
)
from engine.validators import VAny, VObject, VString


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


def test_staged_indexes_are_built_but_not_queryable():
    schema_json = chat()
    messages(schema_json)["stagedDbIndexes"] = [{"indexDescriptor": "by_body", "fields": ["body"]}]
    messages(schema_json)["stagedDocumentType"] = {"type": "any"}
    schema = parse_schema(schema_json)
    t = schema.tables["messages"]
    assert t.staged_indexes == (IndexDef("messages", "by_body", ("body", "_creationTime", "_id")),)
    assert t.staged_document_validator == VAny()
    assert schema.find_index("messages", "by_body") is None
    assert schema.staged_index("messages", "by_body") == t.staged_indexes[0]
    assert schema.built_index_defs("messages")[-1] == t.staged_indexes[0]
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
