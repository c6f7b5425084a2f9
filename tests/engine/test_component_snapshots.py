"""Snapshot export and import of component tables: Convex's ``_components/<name>/`` layout,
and a round trip that puts every table back into its component."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from zip_files import zip_of

from engine import Database
from engine.component_tables import component_documents_at
from engine.import_plan import plan_import
from engine.import_sources import ImportFileError, open_source
from engine.snapshot_export import export_snapshot
from engine.snapshot_import import import_snapshot, perform_import
from engine.streaming_export import list_snapshot
from udf.component_tree import ComponentInstance, ComponentTree
from udf.system_components import write_component_documents


def _seed(db):
    def write(tx):
        return {
            "app": tx.insert("messages", {"body": "hi"}),
            "limit": tx.insert("limiter/rateLimits", {"name": "send", "value": 1}),
            "tasks": tx.insert("workpool/batch/tasks", {"fn": "x"}),
        }

    return db.mutate(write).value


def _export(db) -> bytes:
    out = io.BytesIO()
    export_snapshot(db, out)
    return out.getvalue()


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _all(db, table):
    return db.query(lambda tx: tx.query(table).collect()).value


def test_export_puts_component_tables_under_components_folders(db):
    ids = _seed(db)
    entries = _entries(_export(db))
    assert "messages/documents.jsonl" in entries
    limit_rows = entries["_components/limiter/rateLimits/documents.jsonl"].decode().splitlines()
    assert [json.loads(r)["_id"] for r in limit_rows] == [ids["limit"]]
    assert "_components/limiter/rateLimits/generated_schema.jsonl" in entries
    assert "_components/workpool/_components/batch/tasks/documents.jsonl" in entries
    # Each component lists its own tables by their plain names; the app's lists only its own.
    listing = entries["_components/limiter/_tables/documents.jsonl"].decode().splitlines()
    assert [json.loads(r)["name"] for r in listing] == ["rateLimits"]
    root = [json.loads(r)["name"] for r in entries["_tables/documents.jsonl"].decode().splitlines()]
    assert root == ["messages"]


def test_export_then_import_round_trips_component_tables(db, tmp_path):
    ids = _seed(db)
    data = _export(db)
    with Database.open(tmp_path / "copy") as copy:
        report = import_snapshot(io.BytesIO(data), copy)
        assert report.documents == 3
        for table, key in [("messages", "app"), ("limiter/rateLimits", "limit")]:
            assert [d["_id"] for d in _all(copy, table)] == [ids[key]]
        assert _all(copy, "workpool/batch/tasks") == _all(db, "workpool/batch/tasks")
        rows = list_snapshot(copy, component="workpool/batch").values
        assert [(r["_component"], r["_table"]) for r in rows] == [("workpool/batch", "tasks")]
        # Exported again, every entry is the same (the copy also lists the now known,
        # table-less component "workpool").
        again, first = _entries(_export(copy)), _entries(data)
        assert {k: again[k] for k in first} == first
        assert set(again) - set(first) == {"_components/workpool/_tables/documents.jsonl"}


def test_import_of_an_unknown_component_creates_it_unmounted(db, tmp_path):
    _seed(db)
    data = _export(db)
    with Database.open(tmp_path / "copy") as copy:
        import_snapshot(io.BytesIO(data), copy)
        docs = copy.query(lambda tx: component_documents_at(tx.snapshot)).value
    assert {p: d["state"] for p, d in docs.items()} == {
        "": "active",
        "limiter": "unmounted",
        "workpool": "unmounted",
        "workpool/batch": "unmounted",
    }


def test_import_into_a_deployed_component_keeps_it_active(db, tmp_path):
    _seed(db)
    data = _export(db)
    tree = ComponentTree(
        {
            "": ComponentInstance("", "", ""),
            "limiter": ComponentInstance("limiter", "lim", "limiter"),
        }
    )
    with Database.open(tmp_path / "copy") as copy:
        copy.mutate(lambda tx: write_component_documents(tx, tree))
        import_snapshot(io.BytesIO(data), copy)
        docs = copy.query(lambda tx: component_documents_at(tx.snapshot)).value
    assert docs["limiter"]["state"] == "active"
    assert docs["workpool/batch"]["state"] == "unmounted"


def test_a_folder_before_the_components_folders_is_ignored_as_convex_does(db):
    data = zip_of({"backup/_components/limiter/rateLimits/documents.jsonl": '{"v": 1}\n'})
    import_snapshot(data, db)
    assert [d["v"] for d in _all(db, "limiter/rateLimits")] == [1]


def test_a_bad_component_name_is_refused_before_anything_is_written(db):
    start = db.latest_ts()
    data = zip_of({"_components/bad-name/t/documents.jsonl": '{"v": 1}\n'})
    with pytest.raises(ImportFileError) as err:
        import_snapshot(data, db)
    assert err.value.code == "InvalidComponentName"
    assert db.latest_ts() == start


def test_a_zip_imported_into_a_component_nests_its_components_under_it(db):
    data = zip_of(
        {
            "t/documents.jsonl": '{"v": 1}\n',
            "_components/child/u/documents.jsonl": '{"v": 2}\n',
        }
    )
    source = open_source(data, "zip", component_path="limiter")
    assert [t.name for t in source.tables] == ["limiter/t", "limiter/child/u"]
    perform_import(db, source, plan_import(db, source, "requireEmpty"))
    assert [d["v"] for d in _all(db, "limiter/child/u")] == [2]
    docs = db.query(lambda tx: component_documents_at(tx.snapshot)).value
    assert sorted(docs) == ["", "limiter", "limiter/child"]
