"""The embedded API as a user sees it: documents, queries, schemas, errors."""

from __future__ import annotations

import pytest
from schemas import CHAT_SCHEMA

from engine import (
    UNSET,
    Database,
    DocumentNotFoundError,
    InvalidIdError,
    InvalidQueryError,
    InvalidValueError,
    ReadOnlyError,
    SchemaValidationError,
    SnapshotOutOfRangeError,
)
from engine.limits import Limits
from engine.system_tables import ENVIRONMENT_VARIABLES_TABLE, keyed_system_id


def insert(db, table, value):
    return db.mutate(lambda tx: tx.insert(table, value)).value


def get(db, doc_id):
    return db.query(lambda tx: tx.get(doc_id)).value


def test_insert_sets_system_fields_and_get_returns_the_document(db):
    doc_id = insert(db, "notes", {"text": "hi", "n": 3, "raw": b"\x00\x01", "f": 1.5})
    doc = get(db, doc_id)
    assert doc["_id"] == doc_id
    assert isinstance(doc["_creationTime"], float)
    assert {k: doc[k] for k in ("text", "n", "raw", "f")} == {
        "text": "hi",
        "n": 3,
        "raw": b"\x00\x01",
        "f": 1.5,
    }
    assert type(doc["n"]) is int


def test_caller_cannot_set_system_fields(db):
    with pytest.raises(InvalidValueError, match="_id"):
        insert(db, "notes", {"_id": "x"})
    with pytest.raises(InvalidValueError, match="_creationTime"):
        insert(db, "notes", {"_creationTime": 1.0})


def test_patch_merges_shallowly_none_stores_null_unset_removes(db):
    doc_id = insert(db, "notes", {"a": 1, "b": {"x": 1}, "c": "keep"})
    db.mutate(lambda tx: tx.patch(doc_id, {"a": None, "b": {"y": 2}, "c": UNSET, "d": True}))
    doc = get(db, doc_id)
    assert doc["a"] is None
    assert doc["b"] == {"y": 2}
    assert "c" not in doc
    assert doc["d"] is True


def test_replace_keeps_system_fields_and_delete_removes(db):
    doc_id = insert(db, "notes", {"a": 1})
    before = get(db, doc_id)
    db.mutate(lambda tx: tx.replace(doc_id, {"z": "new"}))
    after = get(db, doc_id)
    assert after == {"_id": doc_id, "_creationTime": before["_creationTime"], "z": "new"}
    db.mutate(lambda tx: tx.delete(doc_id))
    assert get(db, doc_id) is None
    with pytest.raises(DocumentNotFoundError):
        db.mutate(lambda tx: tx.patch(doc_id, {"a": 2}))
    with pytest.raises(DocumentNotFoundError):
        db.mutate(lambda tx: tx.delete(doc_id))


def test_bad_ids_are_clear_errors(db):
    insert(db, "notes", {"a": 1})
    with pytest.raises(InvalidIdError):
        get(db, "not-an-id")
    other = insert(db, "others", {"b": 1})
    with pytest.raises(InvalidIdError, match="notes"):
        db.query(lambda tx: tx.get(other, table="notes"))
    assert db.query(lambda tx: tx.normalize_id("notes", other)).value is None
    assert db.query(lambda tx: tx.normalize_id("others", other)).value == other


def test_invalid_values_name_the_path_and_write_nothing(db):
    with pytest.raises(InvalidValueError, match="nested"):
        insert(db, "notes", {"nested": {"$bad": 1}})
    with pytest.raises(InvalidValueError):
        insert(db, "notes", {"big": 1 << 70})
    with pytest.raises(InvalidValueError):
        insert(db, "notes", {"t": (1, 2)})
    assert db.query(lambda tx: tx.query("notes").collect()).value == []


def test_queries_cannot_write(db):
    with pytest.raises(ReadOnlyError):
        db.query(lambda tx: tx.insert("notes", {}))


def _post(db, channel, body, likes=0.0):
    return insert(db, "messages", {"channel": channel, "body": body, "likes": likes})


def test_index_range_order_filter_take_first_unique(chat_db):
    db = chat_db
    for i in range(5):
        _post(db, "a", f"a{i}", float(i))
    _post(db, "b", "b0", 10.0)

    def q(tx):
        msgs = tx.query("messages")
        return {
            "a": [
                m["body"]
                for m in msgs.with_index("by_channel", lambda r: r.eq("channel", "a")).collect()
            ],
            "a_desc": [
                m["body"]
                for m in tx.query("messages")
                .with_index("by_channel", lambda r: r.eq("channel", "a"))
                .order("desc")
                .take(2)
            ],
            "likes_range": [
                m["body"]
                for m in tx.query("messages")
                .with_index(
                    "by_channel_and_likes",
                    lambda r: r.eq("channel", "a").gt("likes", 1.0).lte("likes", 3.0),
                )
                .collect()
            ],
            "filtered": [
                m["body"]
                for m in tx.query("messages")
                .filter(lambda f: f.or_(f.eq(f.field("body"), "a3"), f.gte(f.field("likes"), 10.0)))
                .collect()
            ],
            "first": tx.query("messages").order("desc").first()["body"],
            "unique": tx.query("messages")
            .with_index("by_channel", lambda r: r.eq("channel", "b"))
            .unique()["body"],
            "none": tx.query("messages")
            .with_index("by_channel", lambda r: r.eq("channel", "zzz"))
            .unique(),
        }

    got = db.query(q).value
    assert got["a"] == ["a0", "a1", "a2", "a3", "a4"]
    assert got["a_desc"] == ["a4", "a3"]
    assert got["likes_range"] == ["a2", "a3"]
    assert got["filtered"] == ["a3", "b0"]
    assert got["first"] == "b0"
    assert got["unique"] == "b0"
    assert got["none"] is None
    with pytest.raises(InvalidQueryError):
        db.query(
            lambda tx: (
                tx.query("messages")
                .with_index("by_channel", lambda r: r.eq("channel", "a"))
                .unique()
            )
        )
    with pytest.raises(InvalidQueryError, match="not found"):
        db.query(lambda tx: tx.query("messages").with_index("nope").collect())


def test_paginate_walks_every_document_once(chat_db):
    db = chat_db
    ids = {_post(db, "p", f"m{i}") for i in range(23)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = db.query(
            lambda tx, c=cursor: (
                tx.query("messages")
                .with_index("by_channel", lambda r: r.eq("channel", "p"))
                .paginate(c, 5)
            )
        ).value
        seen.extend(d["_id"] for d in page.page)
        cursor = page.continue_cursor
        pages += 1
        if page.is_done:
            break
        # A write between pages does not make pages skip or repeat earlier documents.
        _post(db, "other", "noise")
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    assert pages in (5, 6)
    with pytest.raises(InvalidQueryError):
        db.query(lambda tx: tx.query("notes").paginate(cursor, 5))


def test_mutation_reads_its_own_writes_through_indexes(chat_db):
    def post_and_list(tx):
        tx.insert("messages", {"channel": "own", "body": "first"})
        tx.insert("messages", {"channel": "own", "body": "second"})
        return [
            m["body"]
            for m in tx.query("messages")
            .with_index("by_channel", lambda r: r.eq("channel", "own"))
            .collect()
        ]

    assert chat_db.mutate(post_and_list).value == ["first", "second"]


def test_schema_validation_names_the_field(chat_db):
    with pytest.raises(SchemaValidationError, match="channel"):
        chat_db.mutate(lambda tx: tx.insert("messages", {"channel": 5}))
    doc_id = _post(chat_db, "a", "ok")
    with pytest.raises(SchemaValidationError, match="likes"):
        chat_db.mutate(lambda tx: tx.patch(doc_id, {"likes": "many"}))


def test_set_schema_refuses_when_existing_data_violates_it(db):
    insert(db, "messages", {"channel": 1})
    with pytest.raises(SchemaValidationError):
        db.set_schema(CHAT_SCHEMA)
    assert db.query(lambda tx: tx.query("messages").collect()).value[0]["channel"] == 1


def test_adding_an_index_backfills_existing_documents(db):
    schema = {
        "tables": [
            {
                "tableName": "messages",
                "indexes": [],
                "searchIndexes": [],
                "vectorIndexes": [],
                "documentType": None,
            }
        ],
        "schemaValidation": True,
    }
    db.set_schema(schema)
    for ch in ("x", "y", "x"):
        insert(db, "messages", {"channel": ch})
    schema["tables"][0]["indexes"] = [{"indexDescriptor": "by_channel", "fields": ["channel"]}]
    db.set_schema(schema)
    got = db.query(
        lambda tx: (
            tx.query("messages").with_index("by_channel", lambda r: r.eq("channel", "x")).collect()
        )
    ).value
    assert len(got) == 2


def test_timestamps_outside_history_are_clear_errors(db):
    r = db.mutate(lambda tx: tx.insert("notes", {"a": 1}))
    with pytest.raises(SnapshotOutOfRangeError):
        db.query(lambda tx: None, ts=r.ts + 1_000_000_000)
    with pytest.raises(SnapshotOutOfRangeError):
        db.query(lambda tx: None, ts=1)


def test_data_survives_reopen(tmp_path):
    with Database.open(tmp_path / "d") as db:
        doc_id = insert(db, "notes", {"a": 1})
        ts = db.latest_ts()
    with Database.open(tmp_path / "d") as db:
        assert get(db, doc_id)["a"] == 1
        assert db.latest_ts() == ts
        later = db.mutate(lambda tx: tx.insert("notes", {"b": 2}))
        assert later.ts > ts


def test_commit_timestamps_strictly_increase_even_if_the_clock_stalls(tmp_path):
    with Database.open(tmp_path / "d", clock=lambda: 1_700_000_000_000_000_000) as db:
        a = db.mutate(lambda tx: tx.insert("t", {"i": 1})).ts
        b = db.mutate(lambda tx: tx.insert("t", {"i": 2})).ts
        assert b == a + 1


def test_a_system_document_written_again_is_one_document_in_its_table(db):
    # write_system replaces by a fixed id: the old version leaves every index.
    doc_id = keyed_system_id(ENVIRONMENT_VARIABLES_TABLE, "A")
    for value in ("1", "2", "3"):
        record = {"name": "A", "value": value}
        db.mutate(lambda tx, r=record: tx.write_system(ENVIRONMENT_VARIABLES_TABLE, doc_id, r))
    listed = db.query(lambda tx: tx.query(ENVIRONMENT_VARIABLES_TABLE).collect()).value
    assert [(d["_id"], d["value"]) for d in listed] == [(doc_id, "3")]
    db.mutate(lambda tx: tx.write_system(ENVIRONMENT_VARIABLES_TABLE, doc_id, None))
    assert db.query(lambda tx: tx.query(ENVIRONMENT_VARIABLES_TABLE).collect()).value == []


def test_reserved_ids_are_used_once_for_their_table_and_only_in_their_transaction(db):
    insert(db, "notes", {"text": "first"})
    insert(db, "other", {"text": "first"})

    def use_reserved(tx):
        ids = tx.reserve_ids("notes", 3)
        assert len(set(ids)) == 3
        assert tx.insert("notes", {"text": "r"}, reserved_id=ids[0]) == ids[0]
        with pytest.raises(InvalidIdError, match="was not reserved"):
            tx.insert("notes", {"text": "again"}, reserved_id=ids[0])
        with pytest.raises(InvalidIdError, match="was not reserved"):
            tx.insert("other", {"text": "elsewhere"}, reserved_id=ids[1])
        return ids

    ids = db.mutate(use_reserved).value
    assert get(db, ids[0])["text"] == "r"
    assert get(db, ids[1]) is None

    # An id reserved by another transaction (or guessed) is refused.
    with pytest.raises(InvalidIdError, match="was not reserved"):
        db.mutate(lambda tx: tx.insert("notes", {"text": "x"}, reserved_id=ids[2]))
    assert db.query(lambda tx: tx.reserve_ids("notes", 3)).value == []
    assert db.mutate(lambda tx: tx.reserve_ids("missing", 3)).value == []


def test_reserved_ids_never_outnumber_the_writes_left(tmp_path):
    with Database.open(tmp_path, limits=Limits(documents_written_max=5)) as small:
        insert(small, "notes", {"text": "first"})

        def reserve(tx):
            tx.insert("notes", {"text": "one"})
            first = tx.reserve_ids("notes", 3)
            return len(first), len(tx.reserve_ids("notes", 3))

        assert small.mutate(reserve).value == (3, 1)


def test_a_component_table_is_inserted_into_under_its_qualified_name(db):
    doc_id = insert(db, "workpool/batchWorker/jobs", {"n": 1})
    assert get(db, doc_id)["n"] == 1
    assert "workpool/batchWorker/jobs" in db.table_numbers()
    for bad in ("limiter/_private", "lim-iter/counts", "limiter//counts", "/counts"):
        with pytest.raises(InvalidValueError):
            insert(db, bad, {"n": 1})
    assert not any(name.endswith("counts") for name in db.table_numbers())
