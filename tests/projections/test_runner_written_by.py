"""``ProjectionRunner.written_by`` derives, for an entry already applied, exactly what
``apply_in`` returned when it was committed — what a follower feeds OCC and live queries."""

from __future__ import annotations

from engine import Database
from engine.database import storage_handles
from engine.schema import Schema
from projections.runner import ProjectionRunner


def _schema(*, with_search: bool) -> dict:
    return {
        "tables": [
            {
                "tableName": "notes",
                "indexes": [{"indexDescriptor": "by_author", "fields": ["author", "n"]}],
                "searchIndexes": (
                    [
                        {
                            "indexDescriptor": "search_body",
                            "searchField": "body",
                            "filterFields": ["author"],
                        }
                    ]
                    if with_search
                    else []
                ),
                "vectorIndexes": [],
                "documentType": {"type": "any"},
            }
        ],
        "schemaValidation": True,
    }


def test_written_by_matches_what_each_commit_wrote(tmp_path):
    with Database.open(tmp_path / "data") as db:
        a = db.mutate(lambda tx: tx.insert("notes", {"author": "a", "n": 1, "body": "x y"})).value
        db.set_schema(_schema(with_search=False))  # adds an index over existing documents
        b = db.mutate(lambda tx: tx.insert("notes", {"author": "b", "n": 2, "body": "y"})).value
        db.mutate(lambda tx: tx.patch(a, {"n": 5}))  # the index key moves
        db.mutate(lambda tx: tx.patch(a, {"body": "z"}))  # the index key stays
        db.set_schema(_schema(with_search=True))
        db.mutate(lambda tx: (tx.patch(b, {"body": "w w"}), tx.delete(a)))
        db.mutate(lambda tx: tx.insert("other", {"k": 1}))  # a new table in the catalog
        committed = dict(db.committer.write_log._entries)
        env, log = storage_handles(db)
        fresh = ProjectionRunner(env, log)
        fresh.btree._schema = Schema.empty()  # as before the first entry
        with env.begin() as txn:
            entries = list(log.read_from(0, txn=txn))
            assert len(entries) == len(committed) == 9
            for entry in entries:
                assert fresh.written_by(txn, entry) == list(committed[entry.ts]), entry.ts
