"""Whole-deployment snapshots as ZIP files: export at any retained ts, import elsewhere.

Layout (a ZIP file; every entry deflated, dated 1980-01-01 00:00, mode 0644,
written in this order):

    README.md                  what the file is (fixed text)
    _schema/schema.json        the schema in force at the snapshot (canonical JSON text)
    _tables/documents.jsonl    {"name": <table>, "number": <table number>} per user table, by name
    <table>/documents.jsonl    one document per line, by _id: convex encoded JSON, keys sorted
    _environment_variables/documents.jsonl   {"name", "value"} per deployment variable (if any)

Nothing in the file depends on when or where it was written (no commit ts,
no clock), so the same data always gives the same bytes, and export, import,
export again reproduces the file exactly. Values use the lossless convex
encoded JSON (int64, bytes, NaN and -0.0 survive); table numbers are kept, so
ids keep their meaning and references between documents stay valid.

Import checks the whole file before writing anything (values, ids, duplicate
ids, the schema's validators), then writes through the committer as ordinary
commits, so the import is in the log and everything downstream (replay,
document deltas, the Kafka exporter) sees it: with ``replace``, deletes of the
existing documents first; one commit creating the tables and setting the
schema; then the documents in batches within the per-transaction limits; then
one commit setting the file's environment variables (with ``replace``, removing
the others).

Caveats: an import is many transactions, not one. Readers can see it half
done, and a failure part-way leaves the batches already written (import again
with ``replace=True``). Run it while nothing else writes to the deployment.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from engine.convex_json import dumps, loads
from engine.database import Database
from engine.environment_variables import EnvChange, import_variables, variables_from_export
from engine.errors import ConflictError, HeadwaterError, InvalidIdError, InvalidValueError
from engine.ids import TABLE_NUMBER_MAX, decode_id, encode_id, new_internal_id
from engine.key_encoding import encode_key
from engine.read_set import ReadSet, ReadSetBuilder
from engine.schema import Schema, parse_schema, validate_document
from engine.schema_apply import schema_text
from engine.snapshot import Snapshot
from engine.streaming_export import iter_table_at, user_tables_at
from engine.system_tables import (
    ENVIRONMENT_VARIABLES_TABLE,
    SCHEMA_DOC_ID,
    SCHEMAS_TABLE,
    SYSTEM_TABLE_NUMBERS,
    TABLES_TABLE,
    is_system_table,
)
from engine.transaction import PendingCommit
from engine.values import check_document, is_identifier, value_size
from log.entry import Write

README_ENTRY = "README.md"
SCHEMA_ENTRY = "_schema/schema.json"
TABLES_ENTRY = "_tables/documents.jsonl"
ENV_ENTRY = "_environment_variables/documents.jsonl"
DOCUMENTS_FILE = "documents.jsonl"

README_TEXT = """# Headwater snapshot export

This ZIP file holds every user table of a Headwater deployment at one moment.

- <table>/documents.jsonl: the table's documents, one per line, in convex
  encoded JSON (int64 as {"$integer": ...}, bytes as {"$bytes": ...}).
- _tables/documents.jsonl: each table's name and number (ids embed the number).
- _schema/schema.json: the schema in force at that moment.
- _environment_variables/documents.jsonl: the deployment's environment
  variables, if it has any.

Import it into an empty deployment with `headwater import FILE.zip --data DIR`.
"""

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644 << 16
_ZIP_UNIX = 3
_WRITE_CHUNK_BYTES = 1 << 20
_BATCHES_PER_GROUP = 4
"""Import batches handed to the committer at once: they share a durable write."""
_KEEP_PARSED_BYTES_MAX = 64 << 20
"""Up to this much document JSON, import keeps what it checked instead of reading it twice."""


@dataclass(frozen=True)
class ExportReport:
    ts: int
    tables: tuple[tuple[str, int], ...]  # (table, documents), by table name
    documents: int


@dataclass(frozen=True)
class ImportReport:
    tables: tuple[tuple[str, int], ...]  # (table, documents imported), by table name
    documents: int
    deleted: int
    commits: int
    last_ts: int | None


# -- export --------------------------------------------------------------------


def export_snapshot(
    db_or_path: Database | str | os.PathLike[str],
    out_zip: str | os.PathLike[str] | IO[bytes],
    ts: int | None = None,
) -> ExportReport:
    """Write every user table at ``ts`` (default: now) to ``out_zip``.

    A path is written through a temporary file and renamed into place, so a
    failed export never leaves a partial file behind.
    """
    with _database(db_or_path, create=False) as db:
        tx = db.begin(writable=False, ts=ts)
        try:
            if not isinstance(out_zip, str | os.PathLike):
                return _write_zip(out_zip, tx.snapshot)
            target = os.fspath(out_zip)
            temporary = f"{target}.{os.getpid()}.partial"
            try:
                with open(temporary, "wb") as out:
                    report = _write_zip(out, tx.snapshot)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            return report
        finally:
            tx.close()


def _write_zip(out: IO[bytes], snapshot: Snapshot) -> ExportReport:
    tables = user_tables_at(snapshot)
    counts = []
    with zipfile.ZipFile(out, "w") as zf:
        _put(zf, README_ENTRY, README_TEXT.encode())
        _put(zf, SCHEMA_ENTRY, schema_text(snapshot.schema()).encode())
        listing = "".join(
            json.dumps({"name": name, "number": number}, separators=(",", ":")) + "\n"
            for name, number in tables
        )
        _put(zf, TABLES_ENTRY, listing.encode())
        for name, _ in tables:
            with zf.open(_entry_info(f"{name}/{DOCUMENTS_FILE}"), "w", force_zip64=True) as f:
                counts.append((name, _write_documents(f, iter_table_at(snapshot, name))))
        # The deployment's environment variables, when it has any (import sets them).
        variables = list(iter_table_at(snapshot, ENVIRONMENT_VARIABLES_TABLE))
        if variables:
            with zf.open(_entry_info(ENV_ENTRY), "w") as f:
                _write_documents(f, iter(variables))
    return ExportReport(snapshot.ts, tuple(counts), sum(n for _, n in counts))


def _write_documents(out: IO[bytes], docs: Iterator[tuple[int, dict[str, Any]]]) -> int:
    count = 0
    buffered: list[str] = []
    size = 0
    for _, doc in docs:
        line = dumps(doc)
        buffered.append(line)
        size += len(line)
        count += 1
        if size >= _WRITE_CHUNK_BYTES:
            out.write(("\n".join(buffered) + "\n").encode())
            buffered, size = [], 0
    if buffered:
        out.write(("\n".join(buffered) + "\n").encode())
    return count


def _entry_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _ZIP_MODE
    info.create_system = _ZIP_UNIX
    return info


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(_entry_info(name), data)


# -- import: reading and checking the file -------------------------------------


@dataclass(frozen=True)
class _Plan:
    tables: tuple[tuple[str, int], ...]  # (name, number), by name
    schema_text: str | None
    documents: dict[str, int]  # table -> documents in the file
    parsed: dict[str, list[tuple[dict[str, Any], int]]] | None  # (doc, size), if kept
    variables: tuple[EnvChange, ...] = ()  # the deployment's environment variables


def import_snapshot(
    zip_file: str | os.PathLike[str] | IO[bytes],
    data: Database | str | os.PathLike[str],
    replace: bool = False,
) -> ImportReport:
    """Import a snapshot export into the deployment at ``data`` (a folder or an open Database).

    The deployment must be empty (no documents in user tables, and no other
    schema) unless ``replace``, which deletes its documents first. Ids and
    ``_creationTime`` are kept.
    """
    try:
        zf = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise InvalidValueError(f"Cannot import: not a readable ZIP file ({exc}).") from None
    with zf:
        plan = _read_plan(zf)
        with _database(data, create=True) as db:
            return _import(db, zf, plan, replace)


def _read_plan(zf: zipfile.ZipFile) -> _Plan:
    names = zf.namelist()
    if len(set(names)) != len(names):
        raise InvalidValueError("Cannot import: the ZIP file holds the same entry twice.")
    if TABLES_ENTRY not in names:
        raise InvalidValueError(
            f"Cannot import: the ZIP file has no {TABLES_ENTRY}, so it is not a Headwater "
            "snapshot export."
        )
    tables = _read_tables(zf)
    numbers = dict(tables)
    for name in names:
        folder, _, file = name.partition("/")
        if file == DOCUMENTS_FILE and not is_system_table(folder) and folder not in numbers:
            raise InvalidValueError(
                f"Cannot import: {name} holds documents of table {folder!r}, which "
                f"{TABLES_ENTRY} does not list."
            )
    text = None
    schema = None
    if SCHEMA_ENTRY in names:
        schema = parse_schema(zf.read(SCHEMA_ENTRY))
        text = schema_text(schema)
    by_number = {number: name for name, number in tables}
    seen: set[bytes] = set()
    counts = {}
    unpacked = sum(i.file_size for i in zf.infolist() if i.filename.endswith(DOCUMENTS_FILE))
    parsed: dict[str, list[tuple[dict[str, Any], int]]] | None = (
        {} if unpacked <= _KEEP_PARSED_BYTES_MAX else None
    )
    for name, number in tables:
        kept: list[tuple[dict[str, Any], int]] = []
        count = 0
        for doc in _read_documents(zf, name, number, names, check=True):
            key = decode_id(doc["_id"]).storage_key()
            if key in seen:
                raise InvalidValueError(f"Cannot import: id {doc['_id']} appears twice.")
            seen.add(key)
            if schema is not None:
                _validate(schema, name, doc, by_number)
            if parsed is not None:
                kept.append((doc, value_size(doc)))
            count += 1
        counts[name] = count
        if parsed is not None:
            parsed[name] = kept
    return _Plan(
        tuple(tables),
        text,
        counts,
        parsed,
        variables_from_export(zf.read(ENV_ENTRY)) if ENV_ENTRY in names else (),
    )


def _read_tables(zf: zipfile.ZipFile) -> list[tuple[str, int]]:
    tables: dict[str, int] = {}
    taken: set[int] = set(SYSTEM_TABLE_NUMBERS.values())
    for lineno, line in enumerate(zf.read(TABLES_ENTRY).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{TABLES_ENTRY} line {lineno}"
        try:
            row = json.loads(line)
        except ValueError:
            raise InvalidValueError(f"Cannot import: {where} is not JSON.") from None
        if not isinstance(row, dict) or set(row) != {"name", "number"}:
            raise InvalidValueError(f'Cannot import: {where} must be {{"name", "number"}}.')
        name, number = row["name"], row["number"]
        if not is_identifier(name) or is_system_table(name) or name in tables:
            raise InvalidValueError(f"Cannot import: {where} names an invalid table {name!r}.")
        if type(number) is not int or not 1 <= number <= TABLE_NUMBER_MAX or number in taken:
            raise InvalidValueError(
                f"Cannot import: {where} gives table {name!r} an invalid or duplicate "
                f"number {number!r}."
            )
        tables[name] = number
        taken.add(number)
    return sorted(tables.items())


def _read_documents(
    zf: zipfile.ZipFile, table: str, number: int, names: list[str], *, check: bool
) -> Iterator[dict[str, Any]]:
    """The documents of one table in the file, each checked if ``check``; errors name the line.

    Without ``check`` (the second read of a file already checked) only the JSON is
    decoded; the log codec still checks every value before it is written.
    """
    entry = f"{table}/{DOCUMENTS_FILE}"
    if entry not in names:
        return
    with zf.open(entry) as raw:
        for lineno, line in enumerate(raw, start=1):
            if not line.strip():
                continue
            try:
                yield _parse_document(line, number) if check else loads(line)
            except HeadwaterError as exc:
                message = f"Cannot import {entry} line {lineno}: {exc}"
                raise type(exc)(message, code=exc.code) from None


def _parse_document(line: bytes, number: int) -> dict[str, Any]:
    doc = loads(line)
    if type(doc) is not dict:
        raise InvalidValueError("a document must be a JSON object")
    doc_id = doc.get("_id")
    created = doc.get("_creationTime")
    if type(doc_id) is not str:
        raise InvalidValueError("the document has no _id string")
    if decode_id(doc_id).table_number != number:
        raise InvalidIdError(f"_id {doc_id} belongs to another table (its number differs)")
    if type(created) is not float or not math.isfinite(created):
        raise InvalidValueError("the document has no finite _creationTime number")
    check_document(doc)
    return doc


def _validate(schema: Schema, table: str, doc: dict[str, Any], by_number: dict[int, str]) -> None:
    def table_of_id(text: str) -> str | None:
        try:
            return by_number.get(decode_id(text).table_number)
        except InvalidIdError:
            return None

    try:
        validate_document(schema, table, doc, table_of_id=table_of_id)
    except HeadwaterError as exc:
        raise type(exc)(
            f"Cannot import: document {doc['_id']} of table {table!r} does not match the "
            f"snapshot's schema: {exc}",
            code=exc.code,
        ) from None


# -- import: writing -------------------------------------------------------------


def _import(db: Database, zf: zipfile.ZipFile, plan: _Plan, replace: bool) -> ImportReport:
    tx = db.begin(writable=False)
    try:
        snapshot = tx.snapshot
        for name, number in plan.tables:
            _check_table_free(name, number, tx.table_number(name), tx.table_name(number))
        new_tables = [(n, k) for n, k in plan.tables if tx.table_number(n) is None]
        current_text = schema_text(snapshot.schema())
        schema_ts = snapshot.schema_version_ts()
        existing = list(_live_documents(snapshot, replace))
        snapshot_ts = snapshot.ts
    finally:
        tx.close()
    if not replace:
        _check_empty(existing, plan, current_text)
    deletes = [(Write(doc_id, table, ts, None), 0) for table, doc_id, ts in existing]
    commits = _commit_batches(db, iter(deletes))
    setup = _setup_writes(new_tables, plan.schema_text, current_text, schema_ts)
    if setup:
        commits.append(_commit_setup(db, setup, snapshot_ts))
    inserts = (
        (Write(doc["_id"], name, None, doc), size)
        for name, number in plan.tables
        for doc, size in _documents_to_write(zf, plan, name, number)
    )
    commits += _commit_batches(db, inserts)
    if plan.variables or replace:
        ts = import_variables(db, plan.variables, replace=replace)
        if ts is not None:
            commits.append(ts)
    return ImportReport(
        tuple((name, plan.documents[name]) for name, _ in plan.tables),
        sum(plan.documents.values()),
        len(deletes),
        len(commits),
        commits[-1] if commits else None,
    )


def _documents_to_write(
    zf: zipfile.ZipFile, plan: _Plan, table: str, number: int
) -> Iterator[tuple[dict[str, Any], int]]:
    if plan.parsed is not None:
        yield from plan.parsed[table]
        return
    for doc in _read_documents(zf, table, number, zf.namelist(), check=False):
        yield doc, value_size(doc)


def _check_table_free(name: str, number: int, found: int | None, owner: str | None) -> None:
    if (found is not None and found != number) or (owner is not None and owner != name):
        raise InvalidValueError(
            f"Cannot import table {name!r} with number {number}: this deployment "
            + (
                f"numbers {name!r} {found}"
                if found is not None and found != number
                else f"already uses number {number} for table {owner!r}"
            )
            + ", so the snapshot's ids would change meaning. Import into a new deployment.",
            code="ImportTableConflict",
        )


def _live_documents(snapshot: Snapshot, everything: bool) -> Iterator[tuple[str, str, int]]:
    """(table, id, version ts) of live user documents: all of them, or just one if any."""
    for name, _ in user_tables_at(snapshot):
        for version_ts, doc in iter_table_at(snapshot, name):
            yield name, doc["_id"], version_ts
            if not everything:
                return


def _check_empty(existing: list[tuple[str, str, int]], plan: _Plan, current_text: str) -> None:
    if existing:
        raise InvalidValueError(
            f"Cannot import into a deployment that holds documents (table {existing[0][0]!r} "
            "has some). Import into an empty deployment, or pass replace to delete them first.",
            code="ImportTargetNotEmpty",
        )
    empty_text = schema_text(Schema.empty())
    if plan.schema_text is not None and current_text not in (empty_text, plan.schema_text):
        raise InvalidValueError(
            "Cannot import: the deployment has a different schema than the snapshot. Import "
            "into an empty deployment, or pass replace to replace its schema.",
            code="ImportTargetNotEmpty",
        )


def _setup_writes(
    new_tables: list[tuple[str, int]],
    new_schema: str | None,
    current_schema: str,
    schema_ts: int | None,
) -> list[Write]:
    now_ms = time.time_ns() / 1e6
    writes = []
    tables_number = SYSTEM_TABLE_NUMBERS[TABLES_TABLE]
    for name, number in new_tables:
        now_ms = math.nextafter(now_ms, math.inf)
        doc_id = encode_id(tables_number, new_internal_id(os.urandom, now_ms))
        doc = {"_id": doc_id, "_creationTime": now_ms, "name": name, "number": number}
        writes.append(Write(doc_id, TABLES_TABLE, None, doc))
    if new_schema is not None and new_schema != current_schema:
        doc = {"_id": SCHEMA_DOC_ID, "_creationTime": now_ms, "json": new_schema}
        writes.append(Write(SCHEMA_DOC_ID, SCHEMAS_TABLE, schema_ts, doc))
    return writes


def _commit_setup(db: Database, writes: list[Write], snapshot_ts: int) -> int:
    # Reading all of _tables makes a table created concurrently a conflict, not a clash.
    reads = ReadSetBuilder()
    reads.add(f"{TABLES_TABLE}.by_id", b"", None)
    reads.add_point(f"{SCHEMAS_TABLE}.by_id", encode_key([SCHEMA_DOC_ID]))
    try:
        return db.committer.commit(PendingCommit(snapshot_ts, reads.build(), tuple(writes)))
    except ConflictError:
        raise ConflictError(
            "Cannot import: tables or the schema changed while the import was being "
            "prepared. Nothing was imported after the deletes; run it again."
        ) from None


def _commit_batches(db: Database, writes: Iterator[tuple[Write, int]]) -> list[int]:
    """Commit (write, size) pairs in order, in batches within the per-transaction limits."""
    limits = db.limits
    committed: list[int] = []
    group: list[tuple[Write, ...]] = []
    batch: list[Write] = []
    total = 0
    for write, size in writes:
        full = len(batch) >= limits.documents_written_max
        if batch and (full or total + size > limits.written_bytes_max):
            group.append(tuple(batch))
            batch, total = [], 0
            if len(group) == _BATCHES_PER_GROUP:
                committed += _commit_group(db, group)
                group = []
        batch.append(write)
        total += size
    if batch:
        group.append(tuple(batch))
    if group:
        committed += _commit_group(db, group)
    return committed


def _commit_group(db: Database, group: list[tuple[Write, ...]]) -> list[int]:
    # An empty read set never conflicts; a fresh snapshot ts keeps OCC from refusing it as old.
    snapshot_ts = db.latest_ts()
    return db.committer.commit_entries(
        [PendingCommit(snapshot_ts, ReadSet.empty(), batch) for batch in group]
    )


@contextlib.contextmanager
def _database(target: Database | str | os.PathLike[str], *, create: bool) -> Iterator[Database]:
    if isinstance(target, Database):
        yield target
        return
    path = os.fspath(target)
    if not create and not os.path.isdir(path):
        raise FileNotFoundError(f"No data folder at {path!r}.")
    # An export only reads: beside a running server it opens the folder read-only.
    with Database.open(path) if create else Database.open_reader(path) as db:
        yield db
