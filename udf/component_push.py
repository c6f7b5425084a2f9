"""The component side of a push: definitions evaluated, the tree checked, each child
definition analysed like an app, and the deployment's whole schema.

A child definition brings its function modules and schema (``functions``,
``schema``); it is compiled and loaded in a fresh isolate like the app's module
set (``prepare_modules``), so its functions, argument validators and schema are
known before anything is stored. Each instance applies its definition's schema to
its own qualified tables (``engine.component_schema``); the deployment's schema is
the app's and every instance's merged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from engine.component_schema import merge_schemas, qualify_schema
from engine.components import ROOT
from engine.schema import Schema
from udf.bundler import ISOLATE, NODE, BundledModule
from udf.component_definitions import ComponentDefinitionError, evaluate_definitions
from udf.component_tree import ComponentTree, DefinitionUpload
from udf.component_tree_build import build_tree
from udf.deployment import Deployment, prepare_modules, schema_of, source_hash
from udf.node_runtime import check_isolate_imports
from udf.outcome import FunctionInfo

SCHEMA_MODULE = "schema.js"
# Analyses a definition's "use node" modules in Node.js (the executor's, with the push's
# external packages and environment).
AnalyzeNode = Callable[[tuple[BundledModule, ...]], tuple[FunctionInfo, ...]]


@dataclass(frozen=True)
class PreparedComponents:
    """The tree a push installs and each child definition as a Deployment (ts 0 until stored)."""

    tree: ComponentTree = field(default_factory=ComponentTree.app_only)
    definitions: Mapping[str, Deployment] = field(default_factory=dict)


def prepare_components(
    app_definition: BundledModule | None,
    app_dependencies: tuple[str, ...],
    components: tuple[DefinitionUpload, ...],
    *,
    heap_bytes_max: int,
    analyze_node: AnalyzeNode | None = None,
) -> PreparedComponents:
    """Evaluate, check and analyse a push's components; raises on any refusal, stores nothing."""
    if app_definition is None and not app_dependencies and not components:
        return PreparedComponents()
    evaluated = evaluate_definitions(
        app_definition, app_dependencies, components, heap_bytes_max=heap_bytes_max
    )
    tree = build_tree(evaluated)
    # Every definition pushed is analysed, used or not: the CLI generates code for each.
    definitions = {c.definition_path: _analyse(c, heap_bytes_max, analyze_node) for c in components}
    return PreparedComponents(tree, definitions)


def _analyse(
    upload: DefinitionUpload, heap_bytes_max: int, analyze_node: AnalyzeNode | None
) -> Deployment:
    modules: dict[str, BundledModule] = {}
    for module in upload.functions:
        if module.environment != ISOLATE and analyze_node is None:
            raise ComponentDefinitionError(
                f'Component {upload.definition_path}: module {module.path} is "use node", '
                "and this push cannot analyse Node.js modules.",
                code="InvalidModuleEnvironment",
            )
        modules[module.path] = module
    if upload.schema is not None:
        modules[SCHEMA_MODULE] = replace(upload.schema, path=SCHEMA_MODULE)
    ordered = tuple(modules[p] for p in sorted(modules))
    check_isolate_imports(ordered)
    runnable, analysis = prepare_modules(ordered, {}, heap_bytes_max=heap_bytes_max)
    if analyze_node is not None and any(m.environment == NODE for m in ordered):
        analysis = replace(analysis, functions=analysis.functions + analyze_node(ordered))
    return Deployment(
        ordered, analysis, source_hash(ordered), 0, runnable, upload.udf_server_version
    )


def instance_schemas(
    app_schema: Schema, tree: ComponentTree, definitions: Mapping[str, Deployment]
) -> dict[str, Schema]:
    """Each instance's schema on its qualified tables, by component path."""
    found = {ROOT: app_schema}
    for path, instance in tree.instances.items():
        if path == ROOT:
            continue
        definition = definitions.get(instance.definition_path)
        schema = Schema.empty() if definition is None else schema_of(definition.analysis)
        found[path] = qualify_schema(schema, path)
    return found


def whole_schema(
    app_schema: Schema, tree: ComponentTree, definitions: Mapping[str, Deployment]
) -> Schema:
    """The deployment's one active schema: the app's and every instance's tables."""
    if not tree.has_components:
        return app_schema
    return merge_schemas(instance_schemas(app_schema, tree, definitions))


def deployment_schema(deployment: Deployment | None) -> Schema:
    """The whole schema a stored deployment declares (none: the empty schema)."""
    if deployment is None:
        return Schema.empty()
    return whole_schema(
        schema_of(deployment.analysis), deployment.tree, deployment.component_definitions
    )
