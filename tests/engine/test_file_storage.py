"""Stored files: blobs durable before their documents, kept while a retained read can
see them, removed after; orphans cleaned; snapshots carry them (Convex's ZIP layout)."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import zipfile
from dataclasses import replace

import pytest

from engine import Database
from engine.file_storage import FileStorage, delete_file, get_file, uuid_of
from engine.import_sources import ImportFileError
from engine.snapshot_export import export_snapshot
from engine.snapshot_import import import_snapshot

SECOND = 1_000_000_000


def _clock():
    ticks = itertools.count(1_700_000_000 * SECOND, SECOND)
    return lambda: next(ticks)


def _age(storage: FileStorage, seconds: float) -> None:
    """Make every file on disk look ``seconds`` older (the sweep's grace is by mtime)."""
    for path in storage.blobs.root.rglob("*"):
        if path.is_file() and path.name != "upload_token.key":
            stat = path.stat()
            os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def _store(storage: FileStorage, data: bytes, content_type: str | None = None) -> str:
    return storage.commit_file(storage.store_bytes(data), content_type)


def test_the_document_and_its_blob(tmp_path):
    with Database.open(tmp_path / "d") as db:
        storage = FileStorage(db)
        storage_id = _store(storage, b"hello", "text/plain")
        doc = storage.lookup(storage_id)
        assert doc["sha256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
        assert (doc["size"], doc["contentType"]) == (5.0, "text/plain")
        assert storage.path_of(doc).read_bytes() == b"hello"
        assert storage.lookup(uuid_of(storage_id)) == doc
        # Identical contents share one blob.
        _store(storage, b"hello")
        assert storage.blobs.statistics()["blobs"] == 1


def test_a_deleted_file_stays_while_a_retained_read_can_see_it(tmp_path):
    with Database.open(tmp_path / "d", clock=_clock(), retention_ns=20 * SECOND) as db:
        storage = FileStorage(db)
        storage.limits = replace(storage.limits, storage_orphan_grace_s=0)
        storage_id = _store(storage, b"precious")
        before_delete = db.latest_ts()
        db.mutate(delete_file, storage_id)
        _age(storage, 10)
        assert storage.sweep() == 0  # a read at before_delete still sees it
        old = db.query(get_file, storage_id, ts=before_delete).value
        assert storage.path_of(old).read_bytes() == b"precious"
        for _ in range(25):  # the window moves past the delete
            db.mutate(lambda tx: tx.insert("ticks", {}))
        db.compact_history()
        assert storage.sweep() == 1
        assert not storage.path_of(old).exists()


def test_without_a_retention_window_deleted_files_are_kept(tmp_path):
    with Database.open(tmp_path / "d") as db:
        storage = FileStorage(db)
        storage.limits = replace(storage.limits, storage_orphan_grace_s=0)
        storage_id = _store(storage, b"history")
        db.mutate(delete_file, storage_id)
        _age(storage, 10)
        assert storage.sweep() == 0


def test_orphans_are_removed_after_the_grace(tmp_path):
    with Database.open(tmp_path / "d") as db:
        storage = FileStorage(db)
        kept_id = _store(storage, b"referenced")
        orphan = storage.store_bytes(b"written, never committed")
        part = storage.blobs.incoming(1 << 20)
        part.write(b"a crash mid-upload")
        part._file.close()
        assert storage.sweep() == 0  # too young: maybe a commit is on its way
        _age(storage, storage.limits.storage_orphan_grace_s + 1)
        assert storage.sweep() == 2
        assert not storage.blobs.path_of(orphan.sha256).exists() and not part.path.exists()
        assert storage.path_of(storage.lookup(kept_id)).read_bytes() == b"referenced"


def test_export_and_import_carry_the_files(tmp_path):
    data = os.urandom(300_000)
    with Database.open(tmp_path / "a") as db:
        storage = FileStorage(db)
        picture = _store(storage, data, "image/png")
        note = _store(storage, b"plain")
        doc_id = db.mutate(lambda tx: tx.insert("uploads", {"file": picture})).value
        zip_path = tmp_path / "snap.zip"
        export_snapshot(db, zip_path, include_storage=True)
        deleted_ts = db.latest_ts()
        db.mutate(delete_file, note)
        export_snapshot(db, tmp_path / "old.zip", ts=deleted_ts, include_storage=True)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert f"_storage/{picture}.png" in names and f"_storage/{note}" in names
        lines = [json.loads(x) for x in zf.read("_storage/documents.jsonl").splitlines()]
        assert {line["_id"] for line in lines} == {picture, note}
        line = next(x for x in lines if x["_id"] == picture)
        assert set(line) == {"_id", "_creationTime", "sha256", "size", "contentType", "internalId"}
        assert (line["size"], line["contentType"]) == (len(data), "image/png")
        assert line["internalId"] == uuid_of(picture)
    with zipfile.ZipFile(tmp_path / "old.zip") as zf:  # a point-in-time export still has it
        assert zf.read(f"_storage/{note}") == b"plain"
    with Database.open(tmp_path / "b") as fresh:
        import_snapshot(zip_path, fresh)
        storage = FileStorage(fresh)
        got = storage.lookup(picture)
        assert storage.path_of(got).read_bytes() == data and got["contentType"] == "image/png"
        assert storage.path_of(storage.lookup(note)).read_bytes() == b"plain"
        assert fresh.query(lambda tx: tx.get(doc_id)).value["file"] == picture


def _snapshot_with(lines: list[dict], files: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("_tables/documents.jsonl", "")
        zf.writestr("_storage/documents.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
        for name, data in files.items():
            zf.writestr(f"_storage/{name}", data)
    return out


@pytest.mark.parametrize("problem", ["missing bytes", "wrong digest", "wrong size"])
def test_a_bad_stored_file_is_refused_and_nothing_is_stored(tmp_path, problem):
    with Database.open(tmp_path / "a") as db:
        storage_id = _store(FileStorage(db), b"source")
        good = export_snapshot(db, tmp_path / "s.zip", include_storage=True)
    assert good.documents == 0
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        line = json.loads(zf.read("_storage/documents.jsonl"))
    files = {storage_id: b"source"}
    if problem == "missing bytes":
        files = {}
    elif problem == "wrong digest":
        files = {storage_id: b"SOURCE"}
    else:
        line["size"] = 7
    with Database.open(tmp_path / "b") as fresh:
        storage = FileStorage(fresh)
        with pytest.raises(Exception) as refused:
            import_snapshot(_snapshot_with([line], files), fresh)
        assert isinstance(refused.value, ImportFileError) or "Sha256" in str(refused.value)
        assert storage.lookup(storage_id) is None
        _age(storage, storage.limits.storage_orphan_grace_s + 1)
        storage.sweep()  # a blob written before the refusal is an orphan, and goes
        assert storage.blobs.statistics()["blobs"] == 0


def test_importing_files_into_a_deployment_that_has_some(tmp_path):
    with Database.open(tmp_path / "a") as db:
        _store(FileStorage(db), b"one")
        export_snapshot(db, tmp_path / "s.zip", include_storage=True)
    with Database.open(tmp_path / "b") as other:
        mine = _store(FileStorage(other), b"mine")
        with pytest.raises(ImportFileError, match="stores files"):
            import_snapshot(tmp_path / "s.zip", other)
        import_snapshot(tmp_path / "s.zip", other, replace=True)
        assert FileStorage(other).lookup(mine) is None
