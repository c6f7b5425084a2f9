"""``ops:functions``: every deployed function, internal ones included, for the dashboard's
function list and its "run function" form (which needs each one's args validator).

Read from the ``_deployment`` document through the query's transaction, so the list is
live across deploys and readable at a past commit. A component instance's functions
are listed under its path (``component``), the app's under ``""``.
"""

from __future__ import annotations

import json
from typing import Any

from engine.components import ROOT
from engine.convex_json import from_convex_json
from engine.system_tables import DEPLOYMENT_DOC_ID
from engine.transaction import Transaction
from udf.component_tree import ComponentTree
from udf.dashboard_ops_args import check_keys
from udf.deployment import analysis_from_json
from udf.outcome import Analysis


def list_functions(_context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    check_keys(args, (), "ops:functions")
    record = tx.get(DEPLOYMENT_DOC_ID)
    if record is None:
        return []
    found = _describe(analysis_from_json(record["analysis"]), ROOT)
    components = record.get("components") or {}
    definitions = components.get("definitions") or {}
    tree = ComponentTree.from_json(components.get("tree"))
    for path, instance in sorted(tree.instances.items()):
        stored = definitions.get(instance.definition_path)
        if path != ROOT and stored is not None:
            found.extend(_describe(analysis_from_json(stored["analysis"]), path))
    return found


def _describe(analysis: Analysis, component: str) -> list[dict[str, Any]]:
    return [
        {
            "module": fn.module,
            "name": fn.name,
            "identifier": fn.udf_path,
            "kind": fn.kind,
            "visibility": fn.visibility or "public",
            "args": _validator(fn.args_json),
            "returns": _validator(fn.returns_json),
            "component": component,
        }
        for fn in sorted(analysis.functions, key=lambda f: (f.module, f.name))
    ]


def _validator(text: str | None) -> Any:
    """A declared validator as JSON; None when the function declared none."""
    if text is None or text == "null":
        return None
    return from_convex_json(json.loads(text))
