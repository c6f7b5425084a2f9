"""Which tables belong to which component, and the ``_components`` documents.

Component tables live in the one catalog under qualified names
(``engine.components``); every surface that shows tables to a user (exports,
imports, streaming export, Kafka) asks this module which component a table is
in and under what name the component knows it.

``_components`` holds one document per component instance, in the shape of
Convex's ``SerializedComponentMetadata`` (backend
``crates/common/src/bootstrap_model/components/mod.rs``)::

    {"definitionId": <id in _component_definitions>, "parent": <parent's _id> | null,
     "name": <name> | null, "args": [] | null, "env": [[name, binding], ...] | null,
     "state": "active" | "unmounted", "httpPrefix": str | null}

The app's document has null ``parent``/``name``/``args``/``env``. Ids are fixed
per component path, so a parent's id is known without reading. A component
that is no longer used stays, "unmounted", with its tables (Convex keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.components import ROOT, SEPARATOR, parent_path, split_table
from engine.key_encoding import encode_key, prefix_successor
from engine.limits import LIMITS
from engine.snapshot import Snapshot
from engine.system_tables import (
    COMPONENT_DEFINITIONS_TABLE,
    COMPONENTS_TABLE,
    TABLES_TABLE,
    is_system_table,
    keyed_system_id,
)

ACTIVE = "active"
UNMOUNTED = "unmounted"


def component_id(path: str) -> str:
    """The fixed ``_id`` of the ``_components`` document of the instance at ``path``."""
    return keyed_system_id(COMPONENTS_TABLE, f"component:{path}")


def definition_id(definition_path: str) -> str:
    """The fixed id naming a component definition (``definitionId``)."""
    return keyed_system_id(COMPONENT_DEFINITIONS_TABLE, f"definition:{definition_path}")


def component_document(
    path: str,
    definition_path: str,
    *,
    state: str = ACTIVE,
    env: Iterable[list[Any]] = (),
    http_prefix: str | None = None,
) -> dict[str, Any]:
    """The ``_components`` fields of one instance (Convex's serialized metadata)."""
    parent = parent_path(path)
    is_app = parent is None
    return {
        "definitionId": definition_id(definition_path),
        "parent": None if is_app else component_id(parent),
        "name": None if is_app else path.rpartition(SEPARATOR)[2],
        "args": None if is_app else [],
        "env": None if is_app else [list(e) for e in env],
        "state": state,
        "httpPrefix": http_prefix,
    }


def iter_table_at(
    snapshot: Snapshot, table: str, after_id: str | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(version ts, document) of a table at the snapshot, in ``_id`` order."""
    lo = b""
    if after_id is not None:
        # Past every key that starts with the id's key: history keys carry a version suffix.
        after = prefix_successor(encode_key([after_id]))
        if after is None:
            return
        lo = after
    for _, storage_key in snapshot.scan(f"{table}.by_id", lo, None, False):
        found = snapshot.get(storage_key)
        if found is not None:
            yield found


def component_documents_at(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """Every ``_components`` document at the snapshot, by component path."""
    docs = {doc["_id"]: doc for _, doc in iter_table_at(snapshot, COMPONENTS_TABLE)}
    return {_path_of(doc, docs): doc for doc in docs.values()}


def _path_of(doc: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str:
    names: list[str] = []
    while doc.get("parent") is not None:
        names.append(doc["name"])
        parent = by_id.get(doc["parent"])
        if parent is None:
            break
        doc = parent
    return SEPARATOR.join(reversed(names))


@dataclass(frozen=True)
class ComponentTable:
    """A user table as its component knows it."""

    qualified: str  # the catalog's name ("limiter/rateLimits")
    number: int
    component: str  # "" for the app
    table: str  # "rateLimits"


def component_tables_at(snapshot: Snapshot) -> list[ComponentTable]:
    """Every user table of every component at the snapshot, by (component, table)."""
    out = []
    for _, doc in iter_table_at(snapshot, TABLES_TABLE):
        name = doc["name"]
        component, table = split_table(name)
        if not is_system_table(table):
            out.append(ComponentTable(name, doc["number"], component, table))
    return sorted(out, key=lambda t: (t.component, t.table))


def tables_of_component(snapshot: Snapshot, path: str) -> list[ComponentTable]:
    """The user tables of the component at ``path`` (the app's: ``""``)."""
    return [t for t in component_tables_at(snapshot) if t.component == path]


def components_at(snapshot: Snapshot) -> list[str]:
    """Every component path the deployment knows: those with a ``_components``
    document and those holding tables (the app always), sorted."""
    paths = {ROOT, *component_documents_at(snapshot)}
    paths.update(t.component for t in component_tables_at(snapshot))
    return sorted(paths)


def path_segments(path: str) -> list[str]:
    return [] if path == ROOT else path.split(SEPARATOR)


def component_path_problem(path: str) -> str | None:
    """Why ``path`` is no component path (Convex's identifier texts), or None."""
    for name in path.split(SEPARATOR) if path else ():
        problem = _identifier_problem(name)
        if problem is not None:
            return problem
    return None


def _identifier_problem(s: str) -> str | None:
    # The texts of Convex's check_valid_identifier (sync_types/src/identifier.rs).
    if not s:
        return "Identifier cannot be empty"
    if not (s[0].isascii() and (s[0].isalpha() or s[0] == "_")):
        return (
            f"Invalid first character {s[0]!r} in {s}: Identifiers must start with an "
            "alphabetic character or underscore"
        )
    for c in s[1:]:
        if not (c.isascii() and (c.isalnum() or c == "_")):
            return (
                f"Identifier {s} has invalid character {c!r}: Identifiers can only contain "
                "alphanumeric characters or underscores"
            )
    if len(s) > LIMITS.identifier_chars_max:
        return f"Identifier is too long ({len(s)} > maximum {LIMITS.identifier_chars_max})"
    if set(s) == {"_"}:
        return f"Identifier {s} cannot have exclusively underscores"
    return None
