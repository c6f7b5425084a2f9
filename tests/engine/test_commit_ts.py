"""The commit timestamp placeholder: written in a mutation, the commit ts once committed."""

from __future__ import annotations

import pytest

from engine import Database, InvalidValueError, SchemaValidationError
from engine.commit_ts import COMMIT_TS, MAX_COMMIT_TS, NOT_NULL, from_uncommitted_json
from engine.convex_json import from_convex_json
from engine.database import storage_handles

QUEUE_SCHEMA = {
    "tables": [
        {
            "tableName": "jobs",
            "indexes": [{"indexDescriptor": "by_enqueued", "fields": ["enqueued"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": {
                "type": "object",
                "value": {
                    "name": {"fieldType": {"type": "string"}, "optional": False},
                    "enqueued": {"fieldType": {"type": "commitTs"}, "optional": False},
                },
            },
        }
    ],
    "schemaValidation": True,
}


def logged(db: Database, ts: int, table: str) -> list:
    """The documents of ``table`` in the log entry at ``ts``, as replay and projections
    see them."""
    _, log = storage_handles(db)
    (entry,) = log.read_range(ts, ts)
    return [write.value for write in entry.writes if write.table == table]


def get(db: Database, doc_id: str) -> dict:
    return db.query(lambda tx: tx.get(doc_id)).value


def test_inserted_placeholder_becomes_the_commit_ts_in_the_log(db):
    result = db.mutate(lambda tx: tx.insert("jobs", {"at": COMMIT_TS, "n": 1.0}))
    doc = get(db, result.value)
    assert doc["at"] == result.ts
    assert type(doc["at"]) is int
    assert [value["at"] for value in logged(db, result.ts, "jobs")] == [result.ts]


def test_nested_placeholders_in_objects_and_arrays_resolve(db):
    value = {"meta": {"stamps": [COMMIT_TS, 7, {"deep": COMMIT_TS}]}, "plain": [1.0]}
    result = db.mutate(lambda tx: tx.insert("jobs", value))
    doc = get(db, result.value)
    assert doc["meta"] == {"stamps": [result.ts, 7, {"deep": result.ts}]}
    assert doc["plain"] == [1.0]


def test_patch_and_replace_write_the_commit_ts_of_their_own_commit(db):
    doc_id = db.mutate(lambda tx: tx.insert("jobs", {"first": COMMIT_TS})).value
    first_ts = get(db, doc_id)["first"]
    patched = db.mutate(lambda tx: tx.patch(doc_id, {"second": {"at": COMMIT_TS}}))
    doc = get(db, doc_id)
    assert doc["first"] == first_ts  # untouched fields keep their earlier commit ts
    assert doc["second"] == {"at": patched.ts}
    assert patched.ts > first_ts
    replaced = db.mutate(lambda tx: tx.replace(doc_id, {"only": [COMMIT_TS]}))
    doc = get(db, doc_id)
    assert doc["only"] == [replaced.ts]
    assert "first" not in doc


def test_inside_the_mutation_the_document_holds_a_stand_in_that_sorts_last(db):
    def run(tx):
        doc_id = tx.insert("jobs", {"at": COMMIT_TS})
        seen = tx.get(doc_id)["at"]
        tx.patch(doc_id, {"other": 1.0})  # a patch of other fields keeps the placeholder
        return doc_id, seen, tx.commit_ts.paths_of(doc_id)

    result = db.mutate(run)
    doc_id, seen, paths = result.value
    assert seen == MAX_COMMIT_TS
    assert paths == {("at",)}
    assert get(db, doc_id)["at"] == result.ts


def test_overwriting_a_placeholder_in_the_same_mutation_keeps_the_new_value(db):
    def run(tx):
        doc_id = tx.insert("jobs", {"at": COMMIT_TS})
        tx.patch(doc_id, {"at": 5})
        return doc_id

    doc_id = db.mutate(run).value
    assert get(db, doc_id)["at"] == 5


def test_index_on_a_commit_ts_field_orders_documents_by_commit(db):
    db.set_schema(QUEUE_SCHEMA)
    names = ["c", "a", "b"]
    stamps = []
    for name in names:
        result = db.mutate(lambda tx, n=name: tx.insert("jobs", {"name": n, "enqueued": COMMIT_TS}))
        stamps.append(result.ts)
    rows = db.query(lambda tx: tx.query("jobs").with_index("by_enqueued").collect()).value
    assert [row["name"] for row in rows] == names
    assert [row["enqueued"] for row in rows] == stamps


def test_commit_ts_validator_takes_the_placeholder_and_int64_only(db):
    db.set_schema(QUEUE_SCHEMA)
    db.mutate(lambda tx: tx.insert("jobs", {"name": "x", "enqueued": 12}))
    with pytest.raises(SchemaValidationError):
        db.mutate(lambda tx: tx.insert("jobs", {"name": "y", "enqueued": 1.5}))
    rows = db.query(lambda tx: tx.query("jobs").collect()).value
    assert [row["name"] for row in rows] == ["x"]


def test_a_failed_mutation_with_a_placeholder_writes_nothing(db):
    db.set_schema(QUEUE_SCHEMA)
    with pytest.raises(SchemaValidationError):
        db.mutate(lambda tx: tx.insert("jobs", {"name": 3.0, "enqueued": COMMIT_TS}))
    assert db.query(lambda tx: tx.query("jobs").collect()).value == []


def test_wire_form_parses_at_any_depth_and_refuses_a_body():
    assert from_uncommitted_json({"a": {"$commitTs": None}, "b": [{"$commitTs": None}]}) == {
        "a": COMMIT_TS,
        "b": [COMMIT_TS],
    }
    with pytest.raises(InvalidValueError, match=r"\$commitTs value must be null"):
        from_uncommitted_json({"a": {"$commitTs": 1}})
    assert NOT_NULL == "$commitTs value must be null"
    with pytest.raises(InvalidValueError, match="starts with '\\$'"):
        from_uncommitted_json({"a": {"$commitTs": None, "x": 1}})


def test_everywhere_but_a_mutation_write_the_token_stays_a_reserved_name():
    # Function arguments from clients, query filters, return values: ordinary Convex JSON.
    with pytest.raises(InvalidValueError, match="'\\$commitTs' starts with '\\$'"):
        from_convex_json({"at": {"$commitTs": None}}, path="args")


def test_a_refused_write_leaves_no_placeholder_behind(db):
    def run(tx):
        doc_id = tx.insert("jobs", {"at": 1})
        with pytest.raises(InvalidValueError):
            tx.patch(doc_id, {"at": COMMIT_TS, "$bad": 1.0})
        return doc_id

    doc_id = db.mutate(run).value
    assert get(db, doc_id)["at"] == 1


def test_a_rolled_back_nested_write_leaves_no_placeholder_behind(db):
    def run(tx):
        doc_id = tx.insert("jobs", {"at": 1})
        savepoint = tx.savepoint()
        tx.patch(doc_id, {"at": COMMIT_TS})
        tx.rollback_to(savepoint)
        return doc_id, tx.commit_ts.paths_of(doc_id)

    doc_id, paths = db.mutate(run).value
    assert paths == frozenset()
    assert get(db, doc_id)["at"] == 1
