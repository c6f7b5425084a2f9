"""Documents checked against the active schema: what passes, what is refused, and where."""

from __future__ import annotations

import pytest
from schema_exports import CHAT_EXPORT, GOOD_MESSAGE, MESSAGE_ID, chat, table_of_id, with_messages

from engine.errors import SchemaValidationError
from engine.schema import parse_schema, validate_document
from engine.validators import describe


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
