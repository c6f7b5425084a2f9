"""Schemas shared by tests, as the official `defineSchema(...).export()` writes them."""

CHAT_SCHEMA = {
    "tables": [
        {
            "tableName": "messages",
            "indexes": [
                {"indexDescriptor": "by_channel", "fields": ["channel"]},
                {"indexDescriptor": "by_channel_and_likes", "fields": ["channel", "likes"]},
            ],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": {
                "type": "object",
                "value": {
                    "channel": {"fieldType": {"type": "string"}, "optional": False},
                    "body": {"fieldType": {"type": "string"}, "optional": True},
                    "likes": {"fieldType": {"type": "number"}, "optional": True},
                    "author": {"fieldType": {"type": "any"}, "optional": True},
                },
            },
        }
    ],
    "schemaValidation": True,
}
