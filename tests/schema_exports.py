"""The chat schema as npm 1.48's ``defineSchema(...).export()`` writes it, and small
builders of schema JSON, shared by the schema tests."""

from __future__ import annotations

import copy

import pytest

from engine.errors import SchemaError
from engine.ids import encode_id
from engine.schema import parse_schema


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


def with_messages(**changes: object) -> dict:
    schema_json = chat()
    messages(schema_json).update(changes)
    return schema_json
