"""The ``_components`` documents of a stored deployment (shape: ``engine.component_tables``).

Called in the transaction that stores a pushed deployment, so the documents
always describe the deployed tree: one per instance, "active"; an instance the
new tree no longer has stays "unmounted" (its tables and data are kept, as
Convex keeps them), and comes back "active" if a later push uses it again.
"""

from __future__ import annotations

from typing import Any

from engine.component_tables import (
    ACTIVE,
    UNMOUNTED,
    component_document,
    component_documents_at,
    component_id,
)
from engine.system_tables import COMPONENTS_TABLE
from udf.component_tree import ComponentTree


def write_component_documents(tx: Any, tree: ComponentTree) -> None:
    """Make ``_components`` describe ``tree`` (writing only documents that change)."""
    existing = component_documents_at(tx.snapshot)
    for path, instance in tree.instances.items():
        wanted = component_document(
            path,
            instance.definition_path,
            state=ACTIVE,
            env=(a.to_json() for a in instance.env),
            http_prefix=instance.http_prefix,
        )
        _write_if_changed(tx, path, existing.get(path), wanted)
    for path, doc in existing.items():
        if path not in tree.instances and doc.get("state") != UNMOUNTED:
            fields = {k: v for k, v in doc.items() if not k.startswith("_")}
            _write_if_changed(tx, path, doc, {**fields, "state": UNMOUNTED})


def _write_if_changed(
    tx: Any, path: str, current: dict[str, Any] | None, wanted: dict[str, Any]
) -> None:
    if (
        current is not None
        and {k: v for k, v in current.items() if not k.startswith("_")} == wanted
    ):
        return
    tx.write_system(COMPONENTS_TABLE, component_id(path), wanted)
