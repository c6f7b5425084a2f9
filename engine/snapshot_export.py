"""Whole-deployment snapshots as ZIP files (layout: ``engine.snapshot_zip``), at any
retained ts. Import is ``engine.snapshot_import``.

Values use export JSON (int64, bytes, NaN and -0.0 survive); table numbers are
kept, so ids keep their meaning and references between documents stay valid.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.blob_store import BlobStore
from engine.component_tables import component_tables_at, components_at, iter_table_at
from engine.database import Database
from engine.file_storage import FILES_FOLDER
from engine.schema_apply import schema_text
from engine.snapshot import Snapshot
from engine.snapshot_zip import (
    ENV_ENTRY,
    README_ENTRY,
    README_TEXT,
    SCHEMA_ENTRY,
    TABLES_ENTRY,
    UNIFORM_SCHEMA,
    component_prefix,
    documents_entry,
    generated_schema_entry,
    put,
    write_lines,
)
from engine.storage_snapshot import write_storage
from engine.system_tables import ENVIRONMENT_VARIABLES_TABLE


@dataclass(frozen=True)
class ExportReport:
    ts: int
    tables: tuple[tuple[str, int], ...]  # (catalog table name, documents), by component, table
    documents: int


def export_snapshot(
    db_or_path: Database | str | os.PathLike[str],
    out_zip: str | os.PathLike[str] | IO[bytes],
    ts: int | None = None,
    *,
    include_storage: bool = False,
) -> ExportReport:
    """Write every user table at ``ts`` (default: now) to ``out_zip``.

    A path is written through a temporary file and renamed into place, so a
    failed export never leaves a partial file behind. ``include_storage`` adds
    the stored files as the snapshot's ``_storage`` saw them (``engine.storage_snapshot``).
    """
    with open_database(db_or_path, create=False) as db:
        tx = db.begin(writable=False, ts=ts)
        try:
            if not isinstance(out_zip, str | os.PathLike):
                return write_snapshot_zip(out_zip, tx.snapshot, include_storage, _blobs(db))
            target = os.fspath(out_zip)
            temporary = f"{target}.{os.getpid()}.partial"
            try:
                with open(temporary, "wb") as out:
                    report = write_snapshot_zip(out, tx.snapshot, include_storage, _blobs(db))
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            return report
        finally:
            tx.close()


def _blobs(db: Database) -> BlobStore:
    return BlobStore(Path(db.path) / FILES_FOLDER)


def write_snapshot_zip(
    out: IO[bytes], snapshot: Snapshot, include_storage: bool, blobs: BlobStore | None = None
) -> ExportReport:
    tables = component_tables_at(snapshot)
    counts = []
    with zipfile.ZipFile(out, "w") as zf:
        put(zf, README_ENTRY, README_TEXT.encode())
        for component in components_at(snapshot):
            # Each component lists its own tables, by the names it knows them by.
            listing = "".join(
                json.dumps({"name": t.table, "id": t.number}, separators=(",", ":")) + "\n"
                for t in sorted(tables, key=lambda t: t.number)
                if t.component == component
            )
            put(zf, component_prefix(component) + TABLES_ENTRY, listing.encode())
        for t in tables:
            docs = (doc for _, doc in iter_table_at(snapshot, t.qualified))
            entry = documents_entry(t.table, t.component)
            counts.append((t.qualified, write_lines(zf, entry, docs)))
            put(zf, generated_schema_entry(t.table, t.component), UNIFORM_SCHEMA)
        if include_storage and blobs is not None:
            write_storage(zf, snapshot, blobs)
        put(zf, SCHEMA_ENTRY, schema_text(snapshot.schema()).encode())
        # The deployment's environment variables, when it has any (import sets them).
        variables = [doc for _, doc in iter_table_at(snapshot, ENVIRONMENT_VARIABLES_TABLE)]
        if variables:
            write_lines(zf, ENV_ENTRY, variables)
    return ExportReport(snapshot.ts, tuple(counts), sum(n for _, n in counts))


@contextlib.contextmanager
def open_database(target: Database | str | os.PathLike[str], *, create: bool) -> Iterator[Database]:
    """An open Database as is, or the data folder at a path (created if ``create``)."""
    if isinstance(target, Database):
        yield target
        return
    path = os.fspath(target)
    if not create and not os.path.isdir(path):
        raise FileNotFoundError(f"No data folder at {path!r}.")
    # An export only reads: beside a running server it opens the folder read-only.
    with Database.open(path) if create else Database.open_reader(path) as db:
        yield db
