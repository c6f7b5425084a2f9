"""What an import file holds, read the way Convex's importer reads it.

Formats: ``zip`` (a snapshot: ``engine.snapshot_zip``), ``jsonl`` (one object
per line), ``json_array`` (one array, at most ``import_json_array_bytes_max``)
and ``csv`` (a header row of field names; a cell that reads as a number is a
float, every other cell a string). A table's rows are read lazily and may be
read twice (check, then write); every problem is an ``ImportFileError`` with
Convex's kind as its code and Convex's text.

Row values: a snapshot table with ``generated_schema.jsonl`` "uniform" (every
Convex and Headwater export) is export JSON (a JSON integer is an Int64);
anything else is convex encoded JSON (every number a float, ``$integer`` etc.).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from engine.components import ROOT, qualified_table, split_table
from engine.environment_variables import EnvChange, variables_from_export
from engine.errors import InvalidValueError
from engine.limits import LIMITS, Limits
from engine.schema import parse_schema
from engine.schema_apply import schema_text
from engine.snapshot_zip import (
    DOCUMENTS_PATTERN,
    ENV_ENTRY,
    GENERATED_SCHEMA_PATTERN,
    SCHEMA_ENTRY,
    STORAGE_FILE_PATTERN,
    STORAGE_FOLDER,
    component_of_prefix,
)
from engine.system_tables import TABLES_TABLE, is_system_table
from engine.values import field_name_problem, is_identifier

FORMATS = ("zip", "jsonl", "json_array", "csv")
_BOM = b"\xef\xbb\xbf"
# Rust's f64 grammar (what Convex's CSV cells are tried against), not Python's float().
_RUST_FLOAT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\Z", re.IGNORECASE
)


class ImportFileError(InvalidValueError):
    """A file the importer refuses; ``code`` is Convex's error kind."""


def _err(kind: str, message: str) -> ImportFileError:
    return ImportFileError(message, code=kind)


@dataclass(frozen=True)
class SourceTable:
    name: str
    number: int | None  # from the snapshot's _tables, else None (assigned on import)
    rows: Callable[[], Iterator[tuple[int, Any]]]  # (row number from 1, parsed JSON)
    export_json: bool  # rows are export JSON (generated_schema "uniform")


@dataclass(frozen=True)
class ImportSource:
    tables: tuple[SourceTable, ...]
    is_zip: bool
    schema_text: str | None = None  # _schema/schema.json (ours), canonical
    variables: tuple[EnvChange, ...] = ()  # _environment_variables (ours)
    storage_files: tuple[str, ...] = field(default=())  # _storage/<id> entries
    zip_data: Any = None  # the ZIP (a path or a file), for reading its stored files


def table_name_problem(name: str) -> str | None:
    if not is_identifier(name):
        return "Table names must be valid identifiers"
    if is_system_table(name):
        return "Table names cannot start with '_'"
    return None


def open_source(
    data: str | os.PathLike[str] | IO[bytes],
    fmt: str,
    table: str | None = None,
    limits: Limits = LIMITS,
    component_path: str = ROOT,
) -> ImportSource:
    """The tables of the import file ``data`` (a path or a seekable binary file), as
    catalog names: a single table is ``table`` of the component at ``component_path``;
    a ZIP's ``_components/<name>/`` folders are components under it (Convex's base
    component path)."""
    if fmt == "zip":
        return _zip_source(data, component_path)
    assert table is not None, "a single-table format needs a table"
    problem = table_name_problem(table)
    if problem:
        raise _err("ImportInvalidName", f"invalid table name {table}: {problem}")
    table = qualified_table(component_path, table)
    path = data
    if fmt == "jsonl":
        return ImportSource((SourceTable(table, None, lambda: _jsonl_rows(path), False),), False)
    if fmt == "json_array":
        rows = _json_array_rows(path, limits)  # read (and checked) once: it is small
        return ImportSource((SourceTable(table, None, lambda: iter(rows), False),), False)
    if fmt == "csv":
        return ImportSource((SourceTable(table, None, lambda: _csv_rows(path), False),), False)
    raise _err("InvalidFormat", f"unknown import format {fmt!r}")


def _open(data: str | os.PathLike[str] | IO[bytes]) -> contextlib.AbstractContextManager[Any]:
    """The file at a path, or the caller's file from its start (left open)."""
    if isinstance(data, str | os.PathLike):
        return open(data, "rb")
    data.seek(0)
    return contextlib.nullcontext(data)


def _parse_lines(lines: Iterator[bytes]) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(lines, start=1):
        if lineno == 1 and line.startswith(_BOM):
            raise _err(
                "Utf8BomNotSupported",
                "UTF-8 BOM is not supported. Please save your file without BOM.",
            )
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise _err("NotUtf8", f"Import wasn't valid UTF8: {exc}") from None
        try:
            yield lineno, json.loads(text)
        except ValueError as exc:
            raise _err("JsonInvalidRow", f"Row {lineno} wasn't valid JSON: {exc}") from None


def _jsonl_rows(path: Any) -> Iterator[tuple[int, Any]]:
    with _open(path) as f:
        yield from _parse_lines(iter(f))


def _json_array_rows(path: Any, limits: Limits) -> list[tuple[int, Any]]:
    with _open(path) as f:
        raw = f.read(limits.import_json_array_bytes_max + 1)
    if len(raw) > limits.import_json_array_bytes_max:
        limit_mib = limits.import_json_array_bytes_max / (1 << 20)
        raise _err(
            "JsonArrayTooLarge",
            f"Import is too large for JSON ({len(raw)} bytes > maximum {limit_mib:g} MiB). "
            "Consider converting data to JSONLines",
        )
    if raw.startswith(_BOM):
        raise _err(
            "Utf8BomNotSupported", "UTF-8 BOM is not supported. Please save your file without BOM."
        )
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise _err("NotJson", f"Not valid JSON: {exc}") from None
    if not isinstance(value, list):
        raise _err("NotJsonArray", "Not a JSON array")
    return list(enumerate(value, start=1))


def _csv_rows(path: Any) -> Iterator[tuple[int, Any]]:
    with _open(path) as f:
        try:
            reader = csv.reader(line.decode() for line in f)
            header = next(reader, None)
            if header is None:
                raise _err("CsvMissingHeaders", "CSV file doesn't have headers")
            names = [_csv_header(cell) for cell in header]
            lineno = 0
            while True:
                start_line = reader.line_num + 1  # Convex names the record's line in the file
                row = next(reader, None)
                if row is None:
                    break
                if not row:
                    continue  # a blank line
                if len(row) != len(names):
                    raise _err(
                        "CsvRowMissingFields",
                        f"CSV row {start_line} doesn't have all of the fields in the header",
                    )
                lineno += 1
                yield lineno, dict(zip(names, map(_csv_cell, row), strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _err("CsvInvalidRow", f"Failed to parse CSV row: {exc}") from None


def _csv_header(cell: str) -> str:
    name = cell.strip(" ")
    problem = field_name_problem(name) or (
        "field names starting with '_' are reserved" if name.startswith("_") else None
    )
    if problem and name not in ("_id", "_creationTime"):
        raise _err("CsvInvalidHeader", f"CSV header {name!r} isn't a valid field name: {problem}")
    return name


def _csv_cell(cell: str) -> Any:
    if _RUST_FLOAT.match(cell):
        number = float(cell)
        return number if math.isfinite(number) else None  # JSON has no NaN: Convex stores null
    return cell


# -- ZIP snapshots -----------------------------------------------------------------------


def _zip_source(data: str | os.PathLike[str] | IO[bytes], base: str = ROOT) -> ImportSource:
    try:
        with zipfile.ZipFile(data) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            sizes = {i.filename: i.file_size for i in infos}
            if len(set(names)) != len(names):
                raise _err("InvalidZip", "invalid zip file: the same entry appears twice")
            generated = _generated_schemas(zf, names, base)
            listed = [
                (qualified_table(_component_of(name, prefix, base), table), number)
                for name, prefix in _listings(names)
                for table, number in _tables_listing(zf, name)
            ]
            schema = (
                schema_text(parse_schema(zf.read(SCHEMA_ENTRY))) if SCHEMA_ENTRY in names else None
            )
            variables = variables_from_export(zf.read(ENV_ENTRY)) if ENV_ENTRY in names else ()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise _err("InvalidZip", f"invalid zip file: {exc}") from None
    documents: dict[str, str] = {}
    storage: list[str] = []
    for name in names:
        found = DOCUMENTS_PATTERN.match(name)
        if found is None:
            if STORAGE_FILE_PATTERN.match(name):
                storage.append(name)
            continue
        component, table = _component_of(name, found.group(1) or "", base), found.group(2)
        if table == STORAGE_FOLDER:
            if component:
                raise _err(
                    "InvalidComponentName",
                    f"{name}: importing stored files into components is not supported",
                )
            if sizes[name]:  # an export with file storage but no files has it empty
                storage.append(name)
        elif not is_system_table(table):
            if table_name_problem(table):
                raise _err(
                    "InvalidTableName", f"table name '{table}' invalid: {table_name_problem(table)}"
                )
            documents[qualified_table(component, table)] = name
    numbers = dict(listed)
    tables = []
    for table in sorted(set(documents) | set(numbers), key=split_table):
        entry = documents.get(table)
        rows = _zip_rows(data, entry) if entry else (lambda: iter(()))
        tables.append(SourceTable(table, numbers.get(table), rows, generated.get(table, False)))
    return ImportSource(tuple(tables), True, schema, variables, tuple(storage), data)


def _zip_rows(data: Any, entry: str) -> Callable[[], Iterator[tuple[int, Any]]]:
    def rows() -> Iterator[tuple[int, Any]]:
        if not isinstance(data, str | os.PathLike):
            data.seek(0)
        with zipfile.ZipFile(data) as zf, zf.open(entry) as f:
            yield from _parse_lines(iter(f))

    return rows


def _component_of(entry: str, prefix: str, base: str) -> str:
    """The component an entry's folder names (``engine.snapshot_zip``) under ``base``,
    checked."""
    component = component_of_prefix(prefix)
    for part in component.split("/") if component else ():
        if not is_identifier(part):
            raise _err("InvalidComponentName", f"component name '{part}' invalid: {entry}")
    if not component:
        return base
    return component if base == ROOT else f"{base}/{component}"


def _listings(names: list[str]) -> list[tuple[str, str]]:
    """(entry, folder prefix) of every ``_tables/documents.jsonl`` (one per component)."""
    found = []
    for name in names:
        match = DOCUMENTS_PATTERN.match(name)
        if match is not None and match.group(2) == TABLES_TABLE:
            found.append((name, match.group(1) or ""))
    return found


def _generated_schemas(zf: zipfile.ZipFile, names: list[str], base: str) -> dict[str, bool]:
    """Per catalog table: whether its rows are export JSON ("uniform")."""
    found = {}
    for name in names:
        match = GENERATED_SCHEMA_PATTERN.match(name)
        if match is None:
            continue
        first = zf.read(name).split(b"\n", 1)[0]
        try:
            shape = json.loads(first)
        except ValueError as exc:
            raise _err("JsonInvalidRow", f"Row 1 wasn't valid JSON: {exc}") from None
        if shape != "uniform":
            raise _err(
                "InvalidGeneratedSchema",
                f'cannot parse {name}: only "uniform" generated schemas are supported',
            )
        component = _component_of(name, match.group(1) or "", base)
        found[qualified_table(component, match.group(2))] = True
    return found


def _tables_listing(zf: zipfile.ZipFile, entry: str) -> list[tuple[str, int]]:
    """(name, number) of each user table a ``_tables/documents.jsonl`` lists."""
    listed: list[tuple[str, int]] = []
    with zf.open(entry) as f:
        for lineno, row in _parse_lines(iter(f)):
            if not isinstance(row, dict):
                raise _err("NotAnObject", f"Row {lineno} wasn't an object")
            name = row.get("name")
            if not isinstance(name, str):
                raise _err(
                    "InvalidConvexValue",
                    f"Row {lineno} wasn't a valid Convex value: table requires name",
                )
            if table_name_problem(name):
                if name == TABLES_TABLE or is_system_table(name):
                    continue
                raise _err(
                    "InvalidName", f"{name!r} isn't a valid table name: {table_name_problem(name)}"
                )
            number: Any = row.get("id", row.get("number"))  # "number": earlier exports
            if (
                type(number) not in (int, float)
                or number != int(number)
                or not 0 < number < 1 << 32
            ):
                raise _err(
                    "InvalidConvexValue",
                    f"Row {lineno} wasn't a valid Convex value: table requires id "
                    f"(received {number!r})",
                )
            listed.append((name, int(number)))
    return listed
