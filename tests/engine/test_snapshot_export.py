"""Snapshot export and import: deterministic ZIP files, exact round trips, clear refusals."""

from __future__ import annotations

import argparse
import io
import json
import math
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zip_files import zip_of

from engine import (
    Database,
    InvalidValueError,
    SnapshotOutOfRangeError,
    import_plan,
    snapshot_import,
)
from engine.errors import ConflictError, SchemaValidationError
from engine.limits import Limits
from engine.snapshot_export import export_snapshot
from engine.snapshot_import import import_snapshot
from engine.streaming_export import document_deltas, list_snapshot
from gateway.cli_export import add_export_commands

INT64 = st.integers(-(2**63), 2**63 - 1)
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=12)
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
)
FIELD = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELD, inner, max_size=4),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(FIELD, VALUES, max_size=5)
TABLES = st.dictionaries(
    st.sampled_from(["alpha", "beta", "gamma"]), st.lists(DOCUMENTS, min_size=1, max_size=6)
)


def _insert(db: Database, tables: dict[str, list[dict]]) -> dict[str, list[str]]:
    return db.mutate(
        lambda tx: {t: [tx.insert(t, doc) for doc in docs] for t, docs in tables.items()}
    ).value


def _bytes_of(db_or_path) -> bytes:
    out = io.BytesIO()
    export_snapshot(db_or_path, out)
    return out.getvalue()


def _same(a, b) -> bool:
    """Value equality where NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (a != a and b != b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TABLES)
def test_export_import_export_gives_identical_bytes(tables):
    with tempfile.TemporaryDirectory() as folder:
        with Database.open(Path(folder) / "a") as source:
            _insert(source, tables)
            first = _bytes_of(source)
            before = list_snapshot(source, page_size=1000).values
        report = import_snapshot(io.BytesIO(first), Path(folder) / "b")
        assert report.documents == sum(len(docs) for docs in tables.values())
        with Database.open(Path(folder) / "b") as copy:
            assert _bytes_of(copy) == first
            after = list_snapshot(copy, page_size=1000).values
    strip = [{k: v for k, v in row.items() if k != "_ts"} for row in before]
    again = [{k: v for k, v in row.items() if k != "_ts"} for row in after]
    assert _same(strip, again)  # ids, _creationTime and every value kept


def test_layout_is_fixed_and_readable(chat_db, tmp_path):
    chat_db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "likes": 2.0}))
    chat_db.mutate(lambda tx: tx.insert("notes", {"n": 1}))
    out = tmp_path / "snap.zip"
    report = export_snapshot(chat_db, out)
    assert report.tables == (("messages", 1), ("notes", 1)) and report.documents == 2
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == [
            "README.md",
            "_tables/documents.jsonl",
            "messages/documents.jsonl",
            "messages/generated_schema.jsonl",
            "notes/documents.jsonl",
            "notes/generated_schema.jsonl",
            "_schema/schema.json",
        ]
        assert zf.read("notes/generated_schema.jsonl") == b'"uniform"\n'
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        tables = [json.loads(line) for line in zf.read("_tables/documents.jsonl").splitlines()]
        assert [t["name"] for t in tables] == ["messages", "notes"]
        assert [t["id"] for t in tables] == sorted(t["id"] for t in tables)
        assert json.loads(zf.read("_schema/schema.json"))["tables"][0]["tableName"] == "messages"
        note = json.loads(zf.read("notes/documents.jsonl"))
        assert note["n"] == 1 and type(note["n"]) is int  # export JSON: an Int64
        message = json.loads(zf.read("messages/documents.jsonl"))
        assert message["likes"] == 2.0 and b'"likes":2.0' in zf.read("messages/documents.jsonl")
    assert out.read_bytes() == _bytes_of(chat_db)


def test_export_at_a_past_ts_sees_that_moment(db):
    doc = db.mutate(lambda tx: tx.insert("items", {"v": 1.0}))
    db.mutate(lambda tx: tx.patch(doc.value, {"v": 2.0}))
    db.mutate(lambda tx: tx.insert("later", {"v": 3.0}))
    then = zipfile.ZipFile(io.BytesIO(_export_at(db, doc.ts)))
    assert "items/documents.jsonl" in then.namelist()
    assert "later/documents.jsonl" not in then.namelist()
    assert json.loads(then.read("items/documents.jsonl"))["v"] == 1.0
    with pytest.raises(SnapshotOutOfRangeError):
        _export_at(db, db.first_ts() - 1)


def _export_at(db, ts) -> bytes:
    out = io.BytesIO()
    export_snapshot(db, out, ts=ts)
    return out.getvalue()


def test_import_keeps_schema_indexes_and_is_in_the_log(chat_db, tmp_path):
    chat_db.mutate(lambda tx: [tx.insert("messages", {"channel": c}) for c in "abca"])
    snap = _bytes_of(chat_db)
    with Database.open(tmp_path / "copy") as copy:
        start = copy.latest_ts()
        import_snapshot(io.BytesIO(snap), copy)
        found = copy.query(
            lambda tx: (
                tx.query("messages")
                .with_index("by_channel", lambda q: q.eq("channel", "a"))
                .collect()
            )
        ).value
        assert len(found) == 2
        deltas = document_deltas(copy, start, rows_max=100).values
        assert sorted(r["_id"] for r in deltas) == sorted(
            r["_id"] for r in list_snapshot(chat_db).values
        )
        # New inserts after an import get fresh ids in the same tables.
        copy.mutate(lambda tx: tx.insert("messages", {"channel": "z"}))


@pytest.mark.parametrize("keep_parsed", [True, False])
def test_import_writes_batches_within_the_transaction_limits(
    db, tmp_path, monkeypatch, keep_parsed
):
    if not keep_parsed:  # a large file is read twice instead of kept in memory
        monkeypatch.setattr(import_plan, "KEEP_PARSED_BYTES_MAX", 0)
    db.mutate(lambda tx: [tx.insert("items", {"i": i}) for i in range(35)])
    snap = _bytes_of(db)
    with Database.open(tmp_path / "small", limits=Limits(documents_written_max=10)) as small:
        report = import_snapshot(io.BytesIO(snap), small)
        assert report.documents == 35 and report.commits >= 5
        assert _bytes_of(small) == snap


def test_importing_into_a_deployment_with_documents_is_refused_unless_replace(db, tmp_path):
    db.mutate(lambda tx: tx.insert("items", {"i": 1}))
    snap = _bytes_of(db)
    with Database.open(tmp_path / "busy") as busy:
        busy.mutate(lambda tx: tx.insert("items", {"mine": True}))
        with pytest.raises(InvalidValueError) as info:
            import_snapshot(io.BytesIO(snap), busy)
        assert info.value.code == "ImportTargetNotEmpty"
        assert "replace" in str(info.value)
        report = import_snapshot(io.BytesIO(snap), busy, replace=True)
        assert report.deleted == 1 and report.documents == 1
        assert _bytes_of(busy) == snap


def test_a_table_number_taken_by_another_table_is_refused(db, tmp_path):
    db.mutate(lambda tx: tx.insert("items", {"i": 1}))
    snap = _bytes_of(db)
    with Database.open(tmp_path / "other") as other:
        doc = other.mutate(lambda tx: tx.insert("elsewhere", {"i": 1})).value
        other.mutate(lambda tx: tx.delete(doc))
        with pytest.raises(InvalidValueError) as info:
            import_snapshot(io.BytesIO(snap), other, replace=True)
        assert info.value.code == "ImportTableConflict"


def test_a_different_schema_is_refused_without_replace(chat_db, tmp_path):
    snap = _bytes_of(chat_db)
    with Database.open(tmp_path / "schema") as other:
        other.set_schema(
            {
                "tables": [
                    {
                        "tableName": "others",
                        "indexes": [],
                        "searchIndexes": [],
                        "vectorIndexes": [],
                        "documentType": None,
                    }
                ],
                "schemaValidation": True,
            }
        )
        with pytest.raises(InvalidValueError) as info:
            import_snapshot(io.BytesIO(snap), other)
        assert info.value.code == "ImportTargetNotEmpty"
        import_snapshot(io.BytesIO(snap), other, replace=True)
        assert _bytes_of(other) == snap


ITEMS = '{"name":"items","id":10001}\n'


@pytest.mark.parametrize(
    ("entries", "error", "words"),
    [
        ({"_tables/documents.jsonl": '{"name":"1x","id":10001}'}, InvalidValueError, "1x"),
        ({"_tables/documents.jsonl": '{"name":"a","id":513}'}, InvalidValueError, "513"),
        ({"_tables/documents.jsonl": '{"name":"a"}'}, InvalidValueError, "requires id"),
        (
            {"_tables/documents.jsonl": ITEMS, "items/documents.jsonl": "[1]"},
            InvalidValueError,
            "Row 1 wasn't an object",
        ),
        (
            {"_tables/documents.jsonl": ITEMS, "items/documents.jsonl": '{}\n{"a": 1}\n{nope'},
            InvalidValueError,
            "Row 3 wasn't valid JSON",
        ),
        (
            {"_tables/documents.jsonl": ITEMS, "items/documents.jsonl": '{"_id":"x"}'},
            InvalidValueError,
            "invalid _id 'x'",
        ),
        (
            {"_tables/documents.jsonl": ITEMS, "items/documents.jsonl": '{"$a": 1}'},
            InvalidValueError,
            "Row 1 wasn't a valid Convex value",
        ),
        (
            {"_tables/documents.jsonl": ITEMS, "items/generated_schema.jsonl": '"object"\n'},
            InvalidValueError,
            "generated schema",
        ),
    ],
)
def test_malformed_snapshots_are_refused_before_anything_is_written(db, entries, error, words):
    start = db.latest_ts()
    with pytest.raises(error) as info:
        import_snapshot(zip_of(entries), db)
    assert words in str(info.value)
    assert db.latest_ts() == start


def test_documents_are_checked_against_ids_and_the_schema(chat_db, tmp_path):
    chat_db.mutate(lambda tx: tx.insert("messages", {"channel": "a"}))
    chat_db.mutate(lambda tx: tx.insert("notes", {"n": 1.0}))
    snap = zipfile.ZipFile(io.BytesIO(_bytes_of(chat_db)))
    entries = {name: snap.read(name).decode() for name in snap.namelist()}
    message = json.loads(entries["messages/documents.jsonl"])
    note = json.loads(entries["notes/documents.jsonl"])
    wrong_table = dict(entries, **{"notes/documents.jsonl": json.dumps(message) + "\n"})
    with pytest.raises(InvalidValueError, match="different deployment"):
        import_snapshot(zip_of(wrong_table), tmp_path / "a")
    twice = dict(entries, **{"notes/documents.jsonl": (json.dumps(note) + "\n") * 2})
    with pytest.raises(InvalidValueError, match="duplicate _id"):
        import_snapshot(zip_of(twice), tmp_path / "b")
    invalid = dict(message, channel=5.0)
    broken = dict(entries, **{"messages/documents.jsonl": json.dumps(invalid) + "\n"})
    with pytest.raises(SchemaValidationError, match="schema"):
        import_snapshot(zip_of(broken), tmp_path / "c")


def test_not_a_zip_and_a_missing_folder_get_clear_errors(tmp_path):
    with pytest.raises(InvalidValueError, match="invalid zip file"):
        import_snapshot(io.BytesIO(b"plain text"), tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="No data folder"):
        export_snapshot(tmp_path / "missing", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_a_concurrent_table_creation_makes_the_import_retry_not_clash(db, tmp_path, monkeypatch):
    db.mutate(lambda tx: tx.insert("items", {"i": 1}))
    snap = _bytes_of(db)
    with Database.open(tmp_path / "race") as target:
        real = snapshot_import._commit_setup

        def racing(db_, writes, snapshot_ts):
            target.mutate(lambda tx: tx.insert("sneaky", {"i": 2}))
            return real(db_, writes, snapshot_ts)

        monkeypatch.setattr(snapshot_import, "_commit_setup", racing)
        with pytest.raises(ConflictError, match="run it again"):
            import_snapshot(io.BytesIO(snap), target)


def test_the_cli_commands_export_and_import(db, tmp_path, capsys):
    db.mutate(lambda tx: tx.insert("items", {"i": 1}))
    parser = argparse.ArgumentParser()
    add_export_commands(parser.add_subparsers())
    db.close()
    out = tmp_path / "snap.zip"
    args = parser.parse_args(["export", "--data", db.path, "--out", str(out)])
    assert args.run(args) == 0
    args = parser.parse_args(["import", str(out), "--data", str(tmp_path / "fresh")])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "Exported 1 documents in 1 tables" in printed and "Imported 1 documents" in printed
    assert _bytes_of(tmp_path / "fresh") == out.read_bytes()
