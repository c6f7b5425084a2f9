"""Importing single tables and snapshots: Convex's file formats and modes, each refusal
before anything is written."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from zip_files import zip_of

from engine.errors import InvalidValueError, SchemaValidationError
from engine.ids import decode_id, encode_id
from engine.import_plan import plan_import
from engine.import_sources import ImportFileError, open_source
from engine.limits import Limits
from engine.snapshot_import import perform_import


def _import(db, text: str, fmt: str, table: str = "t", mode: str = "requireEmpty", **kw):
    path = io.BytesIO(text.encode())
    source = open_source(path, fmt, table, **kw)
    plan = plan_import(db, source, mode)
    return plan, perform_import(db, source, plan)


def _docs(db, table: str) -> list[dict]:
    return db.query(lambda tx: tx.query(table).collect()).value


def _user(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def test_csv_cells_read_as_convex_reads_them(db):
    text = "a, b ,c\n1.5,x,\n1e3,+2,1_000\n inf,nan, 7\n"
    _import(db, text, "csv")
    assert [_user(d) for d in _docs(db, "t")] == [
        {"a": 1.5, "b": "x", "c": ""},
        {"a": 1000.0, "b": 2.0, "c": "1_000"},  # Rust's float grammar, not Python's
        {"a": " inf", "b": None, "c": " 7"},  # JSON has no NaN: Convex stores null
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n\n1\n", "CSV row 4 doesn't have all of the fields in the header"),
        ("a,$b\n1,2\n", "CSV header '$b' isn't a valid field name"),
    ],
)
def test_bad_csv_is_refused(db, text, message):
    start = db.latest_ts()
    with pytest.raises(ImportFileError, match=message.replace("$", r"\$")):
        _import(db, text, "csv")
    assert db.latest_ts() == start


def test_json_arrays_have_convex_limits_and_errors(db):
    with pytest.raises(ImportFileError, match="Not a JSON array"):
        _import(db, '{"a": 1}', "json_array")
    with pytest.raises(ImportFileError, match="Not valid JSON"):
        _import(db, "[{]", "json_array")
    small = Limits(import_json_array_bytes_max=10)
    with pytest.raises(ImportFileError, match="too large for JSON .* Consider converting"):
        _import(db, '[{"a": 1}, {"a": 2}]', "json_array", limits=small)
    with pytest.raises(ImportFileError, match="BOM"):
        _import(db, '\ufeff[{"a": 1}]', "json_array")
    _import(db, '[{"a": 1}, {"a": {"$integer": "AgAAAAAAAAA="}}]', "json_array")
    assert [_user(d) for d in _docs(db, "t")] == [{"a": 1.0}, {"a": 2}]


def test_modes_append_replace_and_require_empty(db):
    rows = '{"v": 1}\n{"v": 2}\n'
    _import(db, rows, "jsonl")
    with pytest.raises(ImportFileError, match="Table t already exists") as refused:
        _import(db, rows, "jsonl")
    assert refused.value.code == "TableExists"
    plan, report = _import(db, rows, "jsonl", mode="append")
    assert (plan.tables[0].existing, plan.tables[0].deleted, report.documents) == (2, 0, 2)
    assert not plan.require_manual_confirmation
    plan, report = _import(db, '{"v": 9}\n', "jsonl", mode="replace")
    assert plan.require_manual_confirmation and report.deleted == 4
    assert [_user(d) for d in _docs(db, "t")] == [{"v": 9.0}]
    assert "t     | 1      | 4 of 4 |" in plan.confirmation_message()


def test_replace_all_empties_the_tables_the_import_does_not_name(db):
    db.mutate(lambda tx: tx.insert("other", {"x": 1.0}))
    plan, report = _import(db, '{"v": 1}\n', "jsonl", mode="replaceAll")
    assert [(t.name, t.deleted) for t in plan.tables] == [("other", 1), ("t", 0)]
    assert _docs(db, "other") == [] and len(_docs(db, "t")) == 1


def test_ids_are_kept_checked_and_give_a_new_table_its_number(db, tmp_path):
    doc_id = db.mutate(lambda tx: tx.insert("src", {"v": 1.0})).value
    row = json.dumps({"_id": doc_id, "_creationTime": 1.5e12, "v": 2})
    from engine.database import Database

    with Database.open(tmp_path / "other") as other:
        _import(other, row + "\n", "jsonl", table="copy")
        (copied,) = _docs(other, "copy")
        assert copied["_id"] == doc_id and copied["_creationTime"] == 1.5e12
        assert decode_id(doc_id).table_number == decode_id(copied["_id"]).table_number
        with pytest.raises(ImportFileError, match="already exists there"):
            _import(other, row + "\n", "jsonl", table="copy", mode="append")
    with pytest.raises(ImportFileError, match="came from a different deployment"):
        _import(db, row + "\n", "jsonl", table="elsewhere")
    with pytest.raises(ImportFileError, match="duplicate _id"):
        _import(db, row + "\n" + row + "\n", "jsonl", table="src", mode="replace")
    with pytest.raises(ImportFileError, match="invalid _id 'nope'"):
        _import(db, '{"_id": "nope"}\n', "jsonl", table="bad")


def test_a_snapshot_zip_from_convex_imports(db):
    """A ZIP as Convex writes it: `_tables` lines with "id", uniform generated schemas."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("README.md", "hello")
        zf.writestr("_tables/documents.jsonl", '{"name":"notes","id":10005}\n')
        zf.writestr("notes/generated_schema.jsonl", '"uniform"\n')
        zf.writestr("notes/documents.jsonl", '{"n": 3, "f": 3.0, "b": {"$bytes": "AQ=="}}\n')
        zf.writestr("_components/x/README.md", "ignored")  # matches no pattern
    source = open_source(out, "zip")
    perform_import(db, source, plan_import(db, source, "requireEmpty"))
    (doc,) = _docs(db, "notes")
    assert _user(doc) == {"n": 3, "f": 3.0, "b": b"\x01"} and type(doc["n"]) is int
    assert decode_id(doc["_id"]).table_number == 10005


def test_a_bad_mode_is_refused(db):
    with pytest.raises(InvalidValueError, match="mode"):
        _import(db, "{}\n", "jsonl", mode="merge")


def test_stored_files_without_their_metadata_or_bytes_are_refused(db):
    empty = zip_of({"_tables/documents.jsonl": "", "_storage/documents.jsonl": ""})
    source = open_source(empty, "zip")
    assert plan_import(db, source, "requireEmpty").tables == ()
    for entries, code in (
        ({"_storage/documents.jsonl": '{"_id": "x"}\n'}, "InvalidStorageMetadata"),
        ({"_storage/kg2abcd.png": "bytes"}, "InvalidStorageMetadata"),
    ):
        with pytest.raises(ImportFileError) as refused:
            plan_import(db, open_source(zip_of(entries), "zip"), "requireEmpty")
        assert refused.value.code == code


def test_ids_of_system_tables_the_import_does_not_bring_are_valid(db):
    """A field holding a scheduled job's or a file's id (v.id of a system table)."""
    ids_of = {"_scheduled_functions": 539, "_storage": 540}
    fields = {
        name.strip("_"): {"fieldType": {"type": "id", "tableName": name}, "optional": False}
        for name in ids_of
    }
    db.set_schema(
        {
            "tables": [
                {
                    "tableName": "jobs",
                    "indexes": [],
                    "searchIndexes": [],
                    "vectorIndexes": [],
                    "documentType": {"type": "object", "value": fields},
                }
            ],
            "schemaValidation": True,
        }
    )
    row = {name.strip("_"): encode_id(n, bytes(range(16))) for name, n in ids_of.items()}
    _import(db, json.dumps(row) + "\n", "jsonl", table="jobs")
    assert _user(_docs(db, "jobs")[0]) == row
    wrong = {"scheduled_functions": row["storage"], "storage": row["storage"]}
    with pytest.raises(SchemaValidationError, match="does not match the table name"):
        _import(db, json.dumps(wrong) + "\n", "jsonl", table="jobs", mode="replace")
