"""Evaluating a push's ``convex.config.js`` files into their definitions' metadata.

The CLI bundles each ``convex.config.ts`` on its own; an import of another
component's config becomes an import of ``./_componentDeps/<base64url(definition
path)>``. Like the reference, we evaluate definitions dependencies first and
answer each such import with a synthetic module whose default export carries the
imported definition's ``componentDefinitionPath`` and ``defaultName`` (what
``app.use`` records) and its metadata. The config's ``export()`` (``defineApp`` /
``defineComponent`` from npm ``convex/server``) is the definition's metadata:
``definitionType``, ``childComponents`` (name, path, env), ``httpMounts``,
``exports``, ``envVars``.

The config is evaluated in a fresh isolate through the analysis pass: a small
``schema.js`` shim re-exports its ``export()`` as the text a schema's default
export gives, so no runtime change is needed for it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from engine.components import ROOT
from engine.errors import HeadwaterError
from udf.bundler import BundledModule
from udf.component_tree import DefinitionUpload
from udf.errors import AnalysisError
from udf.isolate import DEFAULT_HEAP_BYTES_MAX, Isolate

CONFIG_MODULE = "convex.config.js"
DEPS_PREFIX = "_componentDeps/"
_SHIM = (
    'import definition from "./convex.config.js";\n'
    "export default { tables: {}, export: () => JSON.stringify(definition.export()) };\n"
)
_IMPORTED = re.compile(r"_componentDeps/([A-Za-z0-9_-]+)")
APP_WITHOUT_CONFIG: dict[str, Any] = {
    "definitionType": {"type": "app"},
    "childComponents": [],
    "httpMounts": {},
    "exports": {"type": "branch", "branch": []},
}


class ComponentDefinitionError(HeadwaterError):
    """A push's component definitions cannot be evaluated or do not fit together."""

    code = "InvalidDefinition"


def definition_not_found(path: str) -> ComponentDefinitionError:
    """The reference's TypecheckError for a definition the push does not bring."""
    return ComponentDefinitionError(
        f"Component definition not found: {json.dumps(path)}", code="TypecheckError"
    )


def dependency_import(definition_path: str) -> str:
    """The module path a bundled config imports another definition under."""
    return DEPS_PREFIX + base64.urlsafe_b64encode(definition_path.encode()).decode().rstrip("=")


def _decode(encoded: str) -> str:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.urlsafe_b64decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return encoded


def evaluation_order(
    app_dependencies: tuple[str, ...], components: Mapping[str, DefinitionUpload]
) -> list[str]:
    """Definition paths, each after the definitions it imports, the app (``""``) last.

    Refuses a definition that imports itself through others (the reference's
    ``CyclicImport``) and a dependency the push does not bring."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(path: str) -> None:
        if path in done:
            return
        if path in visiting:
            raise ComponentDefinitionError(
                "Found cyclic definition dependency", code="CyclicImport"
            )
        visiting.add(path)
        if path == ROOT:
            deps = app_dependencies
        elif path in components:
            deps = components[path].dependencies
        else:
            raise definition_not_found(path)
        for dep in deps:
            visit(dep)
        visiting.discard(path)
        done.add(path)
        order.append(path)

    visit(ROOT)
    for path in sorted(components):  # definitions nothing imports are still evaluated
        visit(path)
    return order


def evaluate_definitions(
    app_definition: BundledModule | None,
    app_dependencies: tuple[str, ...],
    components: tuple[DefinitionUpload, ...],
    *,
    heap_bytes_max: int = DEFAULT_HEAP_BYTES_MAX,
) -> dict[str, dict[str, Any]]:
    """Every definition's ``export()`` JSON by definition path (the app's under ``""``)."""
    by_path = {c.definition_path: c for c in components}
    if len(by_path) != len(components) or ROOT in by_path:
        raise ComponentDefinitionError(
            "The push names a component definition path more than once.", code="InvalidConfig"
        )
    evaluated: dict[str, dict[str, Any]] = {}
    for path in evaluation_order(app_dependencies, by_path):
        if path == ROOT:
            module, deps = app_definition, app_dependencies
        else:
            module, deps = by_path[path].definition, by_path[path].dependencies
        if module is None:
            if path != ROOT:
                raise ComponentDefinitionError(
                    f"Component definition {path} has no convex.config.js.", code="InvalidConfig"
                )
            evaluated[path] = dict(APP_WITHOUT_CONFIG)
            continue
        found = _evaluate(path, module, {d: evaluated[d] for d in deps}, heap_bytes_max)
        _check_type(path, found)
        evaluated[path] = found
    return evaluated


def _evaluate(
    path: str,
    module: BundledModule,
    dependencies: Mapping[str, dict[str, Any]],
    heap_bytes_max: int,
) -> dict[str, Any]:
    for imported in _IMPORTED.findall(module.source):
        imported_path = _decode(imported)
        if imported_path not in dependencies:
            raise definition_not_found(imported_path)
    modules = [
        BundledModule(CONFIG_MODULE, module.source, module.source_map),
        BundledModule("schema.js", _SHIM, None),
    ]
    for dep_path, metadata in dependencies.items():
        if metadata.get("definitionType", {}).get("type") != "childComponent":
            raise ComponentDefinitionError(
                "App should not be imported while evaluating app definition",
                code="NoImportAppDuringDefinitionEvaluation",
            )
        stub = (
            "export default { export: () => ("
            + json.dumps(metadata)
            + "), componentDefinitionPath: "
            + json.dumps(dep_path)
            + ", defaultName: "
            + json.dumps(metadata["definitionType"]["name"])
            + " };\n"
        )
        modules.append(BundledModule(dependency_import(dep_path), stub, None))
    where = CONFIG_MODULE if path == ROOT else f"{path}/{CONFIG_MODULE}"
    try:
        with Isolate(modules, heap_bytes_max=heap_bytes_max) as iso:
            analysis = iso.analyze(env={})
    except AnalysisError as exc:
        message = exc.message.replace("Failed to analyze schema.js", f"Failed to analyze {where}")
        raise ComponentDefinitionError(message, code="InvalidDefinition") from None
    if analysis.schema_json is None:
        raise ComponentDefinitionError(
            f"{where} must export default defineApp() or defineComponent(name).",
            code="InvalidDefinition",
        )
    text = json.loads(analysis.schema_json) if analysis.schema_json.startswith('"') else None
    found = json.loads(text if text is not None else analysis.schema_json)
    if not isinstance(found, dict):
        raise ComponentDefinitionError(f"{where}: the definition is not an object.")
    return found


def _check_type(path: str, found: dict[str, Any]) -> None:
    kind = (found.get("definitionType") or {}).get("type")
    if path == ROOT and kind != "app":
        raise ComponentDefinitionError(
            "The app's convex.config must export default defineApp().", code="InvalidDefinition"
        )
    if path != ROOT and kind != "childComponent":
        raise ComponentDefinitionError(
            f"{path}/{CONFIG_MODULE} must export default defineComponent(name).",
            code="InvalidDefinition",
        )
