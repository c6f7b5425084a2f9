"""The component parts of the push answers (npm 1.48's zod shapes), added to the app's.

``start_push``: ``analysis`` gets one entry per child definition path (its
definition metadata from ``convex.config``, schema and analysed functions: the
CLI generates ``components`` in ``_generated/api.d.ts`` from them) and the app's
entry its own ``definition``; ``app`` becomes the checked instance tree;
``schemaChange.indexDiffs`` is split by component path (index names as the
component knows its tables). ``finish_push``: ``componentDiffs`` per component path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.components import ROOT, split_table
from engine.schema import parse_schema
from gateway.push_shapes import functions_by_module
from udf.component_tree import ComponentTree
from udf.deployment import Deployment
from udf.outcome import Analysis
from udf.push import PreparedPush

_UDF_KINDS = ("query", "mutation", "action")
_DIFF_KEYS = ("added_indexes", "removed_indexes", "enabled_indexes", "disabled_indexes")


def index_diffs_by_component(
    diff: Mapping[str, list[dict[str, Any]]], paths: list[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The whole deployment's index diff as one diff per component path."""
    found = {p: {k: [] for k in _DIFF_KEYS} for p in paths}
    for key in _DIFF_KEYS:
        for entry in diff.get(key, []):
            table, _, index = entry["name"].partition(".")
            component, local = split_table(table)
            part = found.setdefault(component, {k: [] for k in _DIFF_KEYS})
            part[key].append({**entry, "name": f"{local}.{index}"})
    return found


def _definition(path: str, evaluated: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "path": path,
        "definitionType": evaluated.get("definitionType") or {"type": "app"},
        "childComponents": evaluated.get("childComponents") or [],
        "httpMounts": evaluated.get("httpMounts") or {},
        "exports": evaluated.get("exports") or {"type": "branch", "branch": []},
        "envVars": evaluated.get("envVars") or [],
    }


def file_based_exports(analysis: Analysis) -> dict[str, Any]:
    """A child definition's ``exports``: its public functions as a branch tree by module
    path parts (``lib/math.js`` ``add`` → ``lib`` → ``math`` → ``add``), as the reference
    fills them in (``crates/model/src/components/file_based_routing.rs``)."""
    tree: dict[str, Any] = {}
    for function in analysis.functions:
        if function.visibility != "public" or function.kind not in _UDF_KINDS:
            continue
        parts = function.module.removesuffix(".js").split("/")
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
        node[function.name] = f"_reference/function/{function.module}:{function.name}"
    return _branch(tree)


def _branch(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "branch",
        "branch": [
            [key, {"type": "leaf", "leaf": value} if isinstance(value, str) else _branch(value)]
            for key, value in sorted(tree.items())
        ],
    }


def _child_analysis(path: str, child: Deployment, evaluated: Mapping[str, Any]) -> dict[str, Any]:
    schema_json = child.analysis.schema_json
    definition = _definition(path, evaluated)
    definition["exports"] = file_based_exports(child.analysis)
    return {
        "definition": definition,
        "schema": None if schema_json is None else parse_schema(schema_json).to_json(),
        "functions": functions_by_module(child.analysis, sorted(m.path for m in child.modules)),
        "udfConfig": {
            "serverVersion": child.udf_server_version or "",
            "importPhaseRngSeed": None,
            "importPhaseUnixTimestamp": None,
        },
    }


def _checked(tree: ComponentTree, path: str, app: dict[str, Any] | None) -> dict[str, Any]:
    instance = tree.instances[path]
    base = app or {
        "args": {},
        "httpRoutes": {"httpModuleRoutes": None, "mounts": []},
        "exports": {},
    }
    return {
        **base,
        "definitionPath": instance.definition_path,
        "componentPath": path,
        "childComponents": {c.name: _checked(tree, c.path, None) for c in tree.children(path)},
    }


def add_components(response: dict[str, Any], prepared: PreparedPush) -> dict[str, Any]:
    """``start_push_response`` with the push's components in it."""
    tree = prepared.components.tree
    if not tree.has_components:
        return response
    definitions = tree.definitions
    analysis = response["analysis"]
    analysis[ROOT]["definition"] = _definition(ROOT, definitions.get(ROOT, {}))
    if prepared.app_schema.to_json() != prepared.new_schema.to_json():
        app_schema = prepared.app_schema
        analysis[ROOT]["schema"] = (
            None if prepared.analysis.schema_json is None else app_schema.to_json()
        )
    for path, child in sorted(prepared.components.definitions.items()):
        analysis[path] = _child_analysis(path, child, definitions.get(path, {}))
    response["componentDefinitionPackages"] = {p: None for p in analysis}
    response["app"] = _checked(tree, ROOT, response["app"])
    response["schemaChange"]["indexDiffs"] = index_diffs_by_component(
        prepared.index_diff, sorted(tree.instances)
    )
    return response


def add_component_diffs(
    diff: dict[str, Any], prepared: PreparedPush, previous: Deployment | None
) -> dict[str, Any]:
    """``finish_push_diff`` with one ``componentDiffs`` entry per instance."""
    tree = prepared.components.tree
    old_tree = None if previous is None else previous.tree
    if not tree.has_components and (old_tree is None or not old_tree.has_components):
        return diff
    paths = sorted(set(tree.instances) | set(old_tree.instances if old_tree else ()))
    by_component = index_diffs_by_component(prepared.index_diff, paths)
    diffs = diff["componentDiffs"]
    diffs[ROOT]["indexDiff"] = by_component[ROOT]
    for path in paths:
        if path == ROOT:
            continue
        new = tree.instance(path)
        old = None if old_tree is None else old_tree.instance(path)
        before = _module_paths(previous, old)
        after = _module_paths_prepared(prepared, new)
        diffs[path] = {
            "diffType": {
                "type": "create" if old is None else "unmount" if new is None else "modify"
            },
            "moduleDiff": {
                "added": sorted(after - before),
                "removed": sorted(before - after),
            },
            "udfConfigDiff": None,
            "cronDiff": {"added": [], "updated": [], "deleted": []},
            "indexDiff": by_component.get(path, {k: [] for k in _DIFF_KEYS}),
            "schemaDiff": None,
        }
    return diff


def _module_paths(previous: Deployment | None, instance: Any) -> set[str]:
    if previous is None or instance is None:
        return set()
    found = previous.component_definitions.get(instance.definition_path)
    return set() if found is None else {m.path for m in found.modules}


def _module_paths_prepared(prepared: PreparedPush, instance: Any) -> set[str]:
    if instance is None:
        return set()
    found = prepared.components.definitions.get(instance.definition_path)
    return set() if found is None else {m.path for m in found.modules}
