"""The index diff a push reports: how a schema's indexes change, in Convex's words.

Every user index of a schema is in one of three states: missing, staged
(declared with ``staged: true``, not built) or enabled. Between the deployed
schema and a pushed one each index is:

- added: missing -> enabled or missing -> staged (``staged`` says which);
- removed: enabled or staged -> missing;
- enabled: staged -> enabled; disabled: enabled -> staged;
- identical otherwise (not reported).

An index whose definition changes under the same name (other fields, another
kind) is removed and added. Names are ``table.index``; each entry is the
developer index config the official CLI prints (``type`` database, search or
vector). The result is the JSON of ``schemaChange.indexDiffs[""]``
(``added_indexes``, ``removed_indexes``, ``enabled_indexes``,
``disabled_indexes``: snake_case, as the reference serializes it).
"""

from __future__ import annotations

from typing import Any

from engine.schema import IndexDef, Schema, SearchIndexDef, VectorIndexDef

AnyIndex = IndexDef | SearchIndexDef | VectorIndexDef


def index_config(index: AnyIndex, *, staged: bool) -> dict[str, Any]:
    """One developer index config: ``{"name": "table.index", "type": ..., "staged": bool}``."""
    name = f"{index.table}.{index.name}"
    if isinstance(index, IndexDef):
        return {
            "name": name,
            "type": "database",
            "fields": list(index.user_fields),
            "staged": staged,
        }
    if isinstance(index, SearchIndexDef):
        return {
            "name": name,
            "type": "search",
            "searchField": index.search_field,
            "filterFields": list(index.filter_fields),
            "staged": staged,
        }
    return {
        "name": name,
        "type": "vector",
        "dimensions": index.dimensions,
        "vectorField": index.vector_field,
        "filterFields": list(index.filter_fields),
        "staged": staged,
    }


def _states(schema: Schema) -> dict[str, tuple[AnyIndex, bool]]:
    """Every user index by ``table.index``: its definition and whether it is staged."""
    found: dict[str, tuple[AnyIndex, bool]] = {}
    for t in schema.tables.values():
        for staged, group in (
            (False, t.indexes + t.search_indexes + t.vector_indexes),
            (True, t.staged_indexes + t.staged_search_indexes + t.staged_vector_indexes),
        ):
            for index in group:
                found[f"{t.name}.{index.name}"] = (index, staged)
    return found


def index_diff(old: Schema, new: Schema) -> dict[str, list[dict[str, Any]]]:
    """What a push from ``old`` to ``new`` does to the indexes (module docstring)."""
    before, after = _states(old), _states(new)
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    enabled: list[dict[str, Any]] = []
    disabled: list[dict[str, Any]] = []
    for name, (index, staged) in after.items():
        previous = before.get(name)
        if previous is None or previous[0] != index:
            added.append(index_config(index, staged=staged))
        elif previous[1] and not staged:
            enabled.append(index_config(index, staged=False))
        elif staged and not previous[1]:
            disabled.append(index_config(index, staged=True))
    for name, (index, staged) in before.items():
        now = after.get(name)
        if now is None or now[0] != index:
            removed.append(index_config(index, staged=staged))
    return {
        "added_indexes": added,
        "removed_indexes": removed,
        "enabled_indexes": enabled,
        "disabled_indexes": disabled,
    }
