"""The snapshot ZIP layout: Convex's snapshot export, plus two folders of our own.

Entries, in this order (every entry deflated, dated 1980-01-01 00:00, mode 0644):

    README.md                             what the file is (fixed text)
    _tables/documents.jsonl               {"name": <table>, "id": <table number>} per
                                          user table, by number
    <table>/documents.jsonl               one document per line, by _id, in export
                                          JSON (Int64 a JSON integer, a float always
                                          with a point or exponent, bytes and
                                          non-finite floats tagged $bytes/$float)
    <table>/generated_schema.jsonl        "uniform": the documents are export JSON
    _storage/documents.jsonl, _storage/<id><ext>   stored files (include_storage,
                                          when there are any: engine.storage_snapshot)
    _schema/schema.json                   ours: the schema in force (canonical JSON text)
    _environment_variables/documents.jsonl   ours: {"name", "value"} per variable, if any

The tables of a component go under ``_components/<name>/`` per segment of its path
(``_components/workpool/_components/batch/tasks/documents.jsonl``), each component
with its own ``_tables/documents.jsonl`` listing its tables by their plain names,
as Convex writes them (backend ``crates/exports/src/lib.rs``,
``get_export_path_prefix``). Reading, a prefix of ``_components/<name>/`` pairs
names the component; anything before them is ignored, as Convex's importer does
(``crates/application/src/snapshot_import/parse.rs``).

Convex's importer reads ``_tables``, ``<table>/documents.jsonl``,
``generated_schema.jsonl`` and ``_storage``; it skips documents of other system
tables and files matching no pattern, so our two folders do not disturb it.
Nothing depends on when or where the file was written (no commit ts, no clock):
the same data always gives the same bytes.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from engine.convex_json import to_export_json

README_ENTRY = "README.md"
TABLES_ENTRY = "_tables/documents.jsonl"
SCHEMA_ENTRY = "_schema/schema.json"
ENV_ENTRY = "_environment_variables/documents.jsonl"
STORAGE_FOLDER = "_storage"
DOCUMENTS_FILE = "documents.jsonl"
GENERATED_SCHEMA_FILE = "generated_schema.jsonl"
UNIFORM_SCHEMA = b'"uniform"\n'

DOCUMENTS_PATTERN = re.compile(r"^(.*/)?([^/]+)/documents\.jsonl$")
GENERATED_SCHEMA_PATTERN = re.compile(r"^(.*/)?([^/]+)/generated_schema\.jsonl$")
STORAGE_FILE_PATTERN = re.compile(r"(.*/)?_storage/([^/.]+)(?:\.[^/]+)?$")

README_TEXT = """# Snapshot export

This ZIP file holds the tables of a deployment at one moment, in the layout of
a Convex snapshot export.

- <table>/documents.jsonl: the table's documents, one JSON object per line
  (Int64 as a JSON integer, a float always with a decimal point, bytes as
  {"$bytes": base64}).
- _tables/documents.jsonl: each table's name and number (ids embed the number).
- _schema/schema.json: the schema in force at that moment.
- _environment_variables/documents.jsonl: the deployment's environment
  variables, if it has any.

Import it with `npx convex import FILE.zip` or `headwater import FILE.zip`.
"""

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644 << 16
_ZIP_UNIX = 3
_WRITE_CHUNK_BYTES = 1 << 20


COMPONENTS_FOLDER = "_components"
_COMPONENT_NAME_PATTERN = re.compile(r"^(.*/)?_components/([^/]+)/$")


def component_prefix(component_path: str) -> str:
    """The folder of a component's entries ("" for the app)."""
    if not component_path:
        return ""
    return "".join(f"{COMPONENTS_FOLDER}/{name}/" for name in component_path.split("/"))


def component_of_prefix(prefix: str) -> str:
    """The component path an entry's folder prefix names (the inverse of ``component_prefix``)."""
    names = []
    while (found := _COMPONENT_NAME_PATTERN.match(prefix)) is not None:
        prefix = found.group(1) or ""
        names.append(found.group(2))
    return "/".join(reversed(names))


def documents_entry(table: str, component_path: str = "") -> str:
    return f"{component_prefix(component_path)}{table}/{DOCUMENTS_FILE}"


def generated_schema_entry(table: str, component_path: str = "") -> str:
    return f"{component_prefix(component_path)}{table}/{GENERATED_SCHEMA_FILE}"


def storage_entry(storage_id: str, extension: str = "") -> str:
    """Where a stored file's bytes go (``extension`` like ``.png``, from its content type)."""
    return f"{STORAGE_FOLDER}/{storage_id}{extension}"


def export_line(doc: dict[str, Any]) -> str:
    return json.dumps(
        to_export_json(doc), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _ZIP_MODE
    info.create_system = _ZIP_UNIX
    return info


def put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(entry_info(name), data)


def write_lines(zf: zipfile.ZipFile, name: str, docs: Iterable[dict[str, Any]]) -> int:
    """One entry of JSON lines (export JSON), written in chunks; the number of lines."""
    with zf.open(entry_info(name), "w", force_zip64=True) as out:
        return _write_lines(out, iter(docs))


def _write_lines(out: IO[bytes], docs: Iterator[dict[str, Any]]) -> int:
    count = 0
    buffered: list[str] = []
    size = 0
    for doc in docs:
        line = export_line(doc)
        buffered.append(line)
        size += len(line)
        count += 1
        if size >= _WRITE_CHUNK_BYTES:
            out.write(("\n".join(buffered) + "\n").encode())
            buffered, size = [], 0
    if buffered:
        out.write(("\n".join(buffered) + "\n").encode())
    return count
