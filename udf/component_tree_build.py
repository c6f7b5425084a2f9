"""The instance tree a push's evaluated definitions describe, checked like the reference.

Starting at the app, every ``childComponents`` entry of a definition is an
instance at ``<parent path>/<name>`` of the named definition, recursively; one
definition may be used by many instances. Refusals carry the reference's
``TypecheckError`` texts (``crates/model/src/components/type_checking.rs``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.components import ROOT, child_path
from udf.component_definitions import ComponentDefinitionError, definition_not_found
from udf.component_tree import ComponentInstance, ComponentTree, EnvArg

_DEPTH_MAX = 64  # deeper is a definition that installs itself (refused before, by the import cycle)


def build_tree(definitions: Mapping[str, dict[str, Any]]) -> ComponentTree:
    """Every instance by path; raises ComponentDefinitionError (nothing is stored then)."""
    if ROOT not in definitions:
        raise ComponentDefinitionError("Root component definition not found", code="TypecheckError")
    instances: dict[str, ComponentInstance] = {}
    app_prefix = definitions[ROOT].get("httpPrefix")
    instances[ROOT] = ComponentInstance(ROOT, ROOT, "", (), app_prefix)
    _instantiate(definitions, ROOT, ROOT, app_prefix, instances, 0)
    return ComponentTree(instances, dict(definitions))


def _instantiate(
    definitions: Mapping[str, dict[str, Any]],
    definition_path: str,
    component_path: str,
    http_prefix: str | None,
    instances: dict[str, ComponentInstance],
    depth: int,
) -> None:
    if depth > _DEPTH_MAX:
        raise ComponentDefinitionError("Found cyclic definition dependency", code="CyclicImport")
    definition = definitions[definition_path]
    mounts = _mounts_by_child(definition)
    seen: set[str] = set()
    for child in definition.get("childComponents") or []:
        name, path = child.get("name"), child.get("path")
        if not isinstance(name, str) or not isinstance(path, str):
            raise ComponentDefinitionError(
                "Each child component needs a name and a definition path.",
                code="InvalidDefinition",
            )
        if path not in definitions:
            raise definition_not_found(path)
        if name in seen:
            raise ComponentDefinitionError(
                f"Component {json.dumps(definition_path)} has multiple child components "
                f"with the same name: {json.dumps(name)}",
                code="TypecheckError",
            )
        seen.add(name)
        instance_path = child_path(component_path, name)
        prefix = mounts.get(name)
        if prefix is not None and component_path != ROOT and http_prefix:
            prefix = http_prefix.rstrip("/") + prefix
        env = tuple(EnvArg.from_json(list(pair)) for pair in child.get("env") or ())
        instances[instance_path] = ComponentInstance(instance_path, path, name, env, prefix)
        _instantiate(definitions, path, instance_path, prefix, instances, depth + 1)


def _mounts_by_child(definition: Mapping[str, Any]) -> dict[str, str]:
    """``httpMounts`` (mount path → ``_reference/childComponent/<name>``) by child name."""
    found: dict[str, str] = {}
    for mount, reference in (definition.get("httpMounts") or {}).items():
        prefix = "_reference/childComponent/"
        if isinstance(reference, str) and reference.startswith(prefix):
            found[reference[len(prefix) :]] = mount
    return found
