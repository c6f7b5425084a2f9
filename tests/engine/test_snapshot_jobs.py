"""Export and import state documents: one export at a time, bounded history."""

from __future__ import annotations

import pytest

from engine.snapshot_jobs import (
    IMPORTS_KEPT,
    ExportInProgressError,
    create_import,
    get_import,
    latest_export,
    list_imports,
    request_export,
    set_import_state,
    update_export,
)


def test_one_export_at_a_time_and_a_stale_one_fails(db):
    first = request_export(db, False, running=True)
    assert db.query(latest_export).value["state"] == "requested"
    with pytest.raises(ExportInProgressError) as refused:
        request_export(db, False, running=True)
    assert refused.value.code == "ExportInProgress"
    # Nothing runs it (a server stopped mid-export): the next request fails it.
    second = request_export(db, True, running=False)
    assert db.query(lambda tx: tx.get(first)).value["state"] == "failed"
    latest = db.query(latest_export).value
    assert latest["_id"] == second and latest["format"] == {
        "format": "zip",
        "include_storage": True,
    }
    update_export(db, second, "completed", start_ts=7)
    assert db.query(latest_export).value["state"] == "completed"


def test_imports_keep_their_id_and_the_newest_are_listed(db):
    ids = [
        create_import(db, {"format": "jsonl", "table": "t"}, "append", f"k{i}") for i in range(3)
    ]
    set_import_state(db, ids[0], {"state": "failed", "error_message": "no"})
    doc = db.query(get_import, ids[0]).value
    assert doc["state"]["state"] == "failed" and doc["mode"] == "append"
    assert [d["_id"] for d in db.query(list_imports).value] == ids[::-1]
    assert db.query(get_import, "not-an-id").value is None
    more = [create_import(db, {"format": "zip"}, "requireEmpty", "z") for _ in range(IMPORTS_KEPT)]
    listed = db.query(list_imports).value
    assert len(listed) == IMPORTS_KEPT and listed[0]["_id"] == more[-1]
    assert db.query(get_import, ids[0]).value is None  # the oldest were deleted
