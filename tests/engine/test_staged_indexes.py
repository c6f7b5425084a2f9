"""Staged database indexes (npm 1.47+ ``.index(name, {fields, staged: true})``): kept up to
date from the push that stages them, refused to queries with Convex's IndexStagedError
(crates/indexing/src/index_registry.rs) until a schema without ``staged`` enables them."""

from __future__ import annotations

import copy

import pytest
from schemas import CHAT_SCHEMA

from engine import InvalidQueryError
from projections.btree import index_id_of

BY_BODY = {"indexDescriptor": "by_body", "fields": ["body"]}


def schema_with_by_body(*, staged: bool) -> dict:
    schema = copy.deepcopy(CHAT_SCHEMA)
    table = schema["tables"][0]
    table.setdefault("stagedDbIndexes" if staged else "indexes", []).append(BY_BODY)
    return schema


def bodies_by_body(db) -> list[str]:
    found = db.query(lambda tx: tx.query("messages").with_index("by_body").collect()).value
    return [m["body"] for m in found]


def entries_built(db) -> int:
    """Entries the index store holds for messages.by_body (staged or not)."""
    btree = db._runner.btree
    with db._env.begin() as txn:
        return sum(
            1 for _ in btree.scan_latest(txn, index_id_of("messages", "by_body"), b"", None, False)
        )


def send(db, body):
    db.mutate(lambda tx: tx.insert("messages", {"channel": "c", "body": body}))


def test_a_staged_index_is_refused_until_enabled_and_then_holds_every_document(db):
    db.set_schema(CHAT_SCHEMA)
    send(db, "b")
    db.set_schema(schema_with_by_body(staged=True))
    assert entries_built(db) == 1  # backfilled when staged, not when enabled
    send(db, "c")
    assert entries_built(db) == 2
    with pytest.raises(InvalidQueryError) as refused:
        bodies_by_body(db)
    assert (refused.value.code, refused.value.message) == (
        "IndexStagedError",
        "Index messages.by_body is currently staged and not available to query until it is "
        "enabled.",
    )
    db.mutate(lambda tx: tx.delete(tx.query("messages").first()["_id"]))  # "b" goes
    send(db, "a")
    db.set_schema(schema_with_by_body(staged=False))
    assert bodies_by_body(db) == ["a", "c"]
    send(db, "bb")
    assert bodies_by_body(db) == ["a", "bb", "c"]


def test_staging_an_enabled_index_again_refuses_queries_and_keeps_it_current(db):
    db.set_schema(schema_with_by_body(staged=False))
    send(db, "x")
    db.set_schema(schema_with_by_body(staged=True))
    send(db, "w")
    with pytest.raises(InvalidQueryError):
        bodies_by_body(db)
    db.set_schema(schema_with_by_body(staged=False))
    assert bodies_by_body(db) == ["w", "x"]


def test_an_unknown_index_is_convexs_not_found(db):
    db.set_schema(CHAT_SCHEMA)
    with pytest.raises(InvalidQueryError) as missing:
        bodies_by_body(db)
    assert (missing.value.code, missing.value.message) == (
        "IndexNotFound",
        "Index messages.by_body not found.",
    )
