"""A deployment: bundled modules and what they define, stored through the engine.

A deploy is one committed transaction: every module is a ``_modules``
document (``udf.module_store``; a component definition's modules too, keyed
by its definition path); the ``_deployment`` document records the
component tree and each child definition's module list and analysis, and the
analysis (functions, validators, auth config, crons) and the source hash,
modules that are gone are deleted, and the schema is applied (existing data
checked, new indexes backfilled). So a deploy is in the log, survives a
restart, and either happens whole or not at all.

A deploy replaces the whole deployment, so a folder that is missing, is not a
functions folder, or defines no function would silently remove every function
of a running app: ``check_functions_dir`` and ``check_not_emptying`` refuse
those unless the caller explicitly allows an empty deployment.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from engine import Database
from engine.components import ROOT
from engine.errors import HeadwaterError
from engine.limits import LIMITS
from engine.schema import Schema, parse_schema
from engine.schema_apply import apply_schema
from engine.system_tables import DEPLOYMENT_DOC_ID, DEPLOYMENT_TABLE
from engine.transaction import Transaction
from udf.bundler import BundledModule, find_entry_points
from udf.component_tree import ComponentTree
from udf.isolate import DEFAULT_HEAP_BYTES_MAX, Isolate
from udf.module_compiler import RunnableModule, compile_modules
from udf.module_store import delete_modules, read_modules, stored_keys, write_modules
from udf.node_packages import NodeDependency, parse_dependencies
from udf.outcome import Analysis, FunctionInfo, HttpRoute
from udf.system_components import write_component_documents

# Reading a deployment's code is not a user function: the per-call read limits do not apply.
_LOAD_LIMITS = dataclasses.replace(
    LIMITS, read_bytes_max=1 << 50, documents_read_max=1 << 40, index_ranges_max=1 << 40
)


# Modules that configure a deployment but define no function.
_CONFIG_MODULES = ("schema", "auth.config", "convex.config")
_PROJECT_SEARCH_DEPTH = 3


class NotAFunctionsFolderError(HeadwaterError):
    """A deploy was pointed at a path that is not a Convex functions folder."""

    code = "NotAFunctionsFolder"


class EmptyDeploymentError(HeadwaterError):
    """A deploy would remove every function and the caller did not ask for that."""

    code = "EmptyDeployment"


def check_functions_dir(functions_dir: str | Path) -> None:
    """Refuse a path that is missing, a file, or a project folder rather than its ``convex/``.

    Runs before bundling, which would otherwise write ``_generated/`` into it.
    """
    root = Path(functions_dir)
    if not root.exists():
        raise NotAFunctionsFolderError(f"The functions folder {functions_dir} does not exist.")
    if not root.is_dir():
        raise NotAFunctionsFolderError(
            f"{functions_dir} is a file: give the folder of Convex functions (usually convex/)."
        )
    nested = _nested_functions_folder(root)
    if nested is not None:
        raise NotAFunctionsFolderError(
            f"{functions_dir} is a project folder, not a Convex functions folder: "
            f"deploy its {nested.relative_to(root).as_posix()} folder instead."
        )


def _nested_functions_folder(root: Path) -> Path | None:
    """A ``convex/`` folder below ``root`` (a few levels down), which means ``root`` is too high."""
    level = [root]
    for _ in range(_PROJECT_SEARCH_DEPTH):
        below = []
        for folder in level:
            for child in sorted(folder.iterdir()):
                if not child.is_dir() or child.name.startswith((".", "_")):
                    continue
                if child.name == "node_modules":
                    continue
                if child.name == "convex":
                    return child
                below.append(child)
        level = below
    return None


def function_module_paths(functions_dir: str | Path) -> list[str]:
    """The folder's modules that can define functions (not the schema or auth config)."""
    entries, _ = find_entry_points(functions_dir)
    return [e for e in entries if PurePosixPath(e).stem not in _CONFIG_MODULES]


def check_not_emptying(
    analysis: Analysis, current: Deployment | None, functions_dir: str | Path
) -> None:
    """Refuse a deploy that defines no function when the deployment in force has some."""
    if analysis.functions or analysis.http_routes:
        return
    if current is None or not (current.analysis.functions or current.analysis.http_routes):
        return
    raise EmptyDeploymentError(
        f"{functions_dir} defines no functions: deploying it would remove all "
        f"{len(current.analysis.functions)} functions of the running deployment. "
        "Point at the folder of your Convex functions, or pass --allow-empty to remove them all."
    )


@dataclass(frozen=True)
class Deployment:
    modules: tuple[BundledModule, ...]  # as pushed (ESM, every environment)
    analysis: Analysis
    source_hash: str
    ts: int  # the commit ts of the deploy
    runnable: tuple[RunnableModule, ...]  # the isolate modules as the runtime loads them
    udf_server_version: str | None = None  # the npm version that pushed it (None: headwater)
    # External npm packages of the "use node" modules (installed per deployment).
    node_dependencies: tuple[NodeDependency, ...] = ()
    # Components (convex.config): the instance tree, and each child definition's own
    # modules and analysis as a Deployment of its own (by definition path; the app's
    # definition is this one). An app without convex.config has only itself.
    tree: ComponentTree = field(default_factory=ComponentTree.app_only)
    component_definitions: Mapping[str, Deployment] = field(default_factory=dict)

    def for_component(self, component_path: str) -> Deployment | None:
        """The deployment (modules, analysis) that runs the instance at ``component_path``."""
        if component_path == ROOT:
            return self
        instance = self.tree.instance(component_path)
        if instance is None:
            return None
        return self.component_definitions.get(instance.definition_path)

    def module(self, path: str) -> BundledModule | None:
        return next((m for m in self.modules if m.path == path), None)

    def function(self, module: str, name: str) -> FunctionInfo | None:
        return self.analysis.function(module, name)

    @functools.cached_property
    def node_paths(self) -> frozenset[str]:
        """The paths of the "use node" modules (their actions run in Node.js)."""
        return frozenset(m.path for m in self.modules if m.environment == "node")


def prepare_modules(
    modules: tuple[BundledModule, ...],
    env: Mapping[str, str] | None,
    *,
    heap_bytes_max: int = DEFAULT_HEAP_BYTES_MAX,
) -> tuple[tuple[RunnableModule, ...], Analysis]:
    """Compile a module set (pushed or bundled) and load it once to learn what it defines.

    ``env`` is the deployment's variables (``auth.config`` reads them).
    Raises ModuleCompileError or AnalysisError; stores nothing.
    """
    runnable = compile_modules(modules)
    with Isolate(runnable, heap_bytes_max=heap_bytes_max) as iso:
        analysis = iso.analyze(env=env)
    return runnable, analysis


def source_hash(modules: tuple[BundledModule, ...]) -> str:
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.path):
        for part in (module.path, module.environment, module.source, module.source_map or ""):
            digest.update(part.encode())
            digest.update(b"\x00")
        if module.environment != "isolate":  # isolate modules hash as before environments
            digest.update(module.environment.encode() + b"\x00")
    return digest.hexdigest()


def analysis_to_json(analysis: Analysis) -> str:
    return json.dumps(
        {
            "functions": [dataclasses.asdict(f) for f in analysis.functions],
            "httpRoutes": [dataclasses.asdict(r) for r in analysis.http_routes],
            "schema": analysis.schema_json,
            "authConfig": analysis.auth_config_json,
            "crons": analysis.crons_json,
        },
        separators=(",", ":"),
    )


def analysis_from_json(text: str) -> Analysis:
    data = json.loads(text)
    return Analysis(
        functions=tuple(FunctionInfo(**f) for f in data["functions"]),
        http_routes=tuple(HttpRoute(**r) for r in data["httpRoutes"]),
        schema_json=data["schema"],
        auth_config_json=data["authConfig"],
        crons_json=data["crons"],
    )


def schema_of(analysis: Analysis) -> Schema:
    """The schema a deployment declares (no schema.ts: the empty schema, no validation)."""
    return Schema.empty() if analysis.schema_json is None else parse_schema(analysis.schema_json)


def store_deployment(
    tx: Transaction,
    modules: tuple[BundledModule, ...],
    analysis: Analysis,
    runnable: tuple[RunnableModule, ...],
    *,
    udf_server_version: str | None = None,
    check_data: bool = True,
    node_dependencies: tuple[NodeDependency, ...] = (),
    schema: Schema | None = None,
    tree: ComponentTree | None = None,
    component_definitions: Mapping[str, Deployment] | None = None,
) -> list[str]:
    """Write a deployment inside ``tx``; returns the module keys it removed.

    ``schema`` is the deployment's whole schema (the app's and every component
    instance's, ``udf.component_push``); by default the app's. ``check_data=False``
    skips checking the stored documents against it: only for a schema equal to the
    one in force, which every write was already checked by."""
    apply_schema(tx, schema_of(analysis) if schema is None else schema, check_data=check_data)
    before = stored_keys(tx.get(DEPLOYMENT_DOC_ID))
    after = write_modules(tx, ROOT, modules, runnable)
    definitions: dict[str, Any] = {}
    for definition_path, child in sorted((component_definitions or {}).items()):
        after |= write_modules(tx, definition_path, child.modules, child.runnable)
        definitions[definition_path] = {
            "modules": [m.path for m in child.modules],
            "analysis": analysis_to_json(child.analysis),
            "udfServerVersion": child.udf_server_version,
        }
    removed = sorted(before - after)
    delete_modules(tx, removed)
    record: dict[str, Any] = {
        "modules": [m.path for m in modules],
        "analysis": analysis_to_json(analysis),
        "sourceHash": source_hash(modules),
        "udfServerVersion": udf_server_version,
        "nodeDependencies": [d.to_json() for d in node_dependencies],
    }
    if tree is not None and tree.has_components:
        record["components"] = {"tree": tree.to_json(), "definitions": definitions}
    tx.write_system(DEPLOYMENT_TABLE, DEPLOYMENT_DOC_ID, record)
    write_component_documents(tx, tree or ComponentTree.app_only())
    return removed


def load_deployment(db: Database) -> Deployment | None:
    """The deployment in force at the newest ts, or None if nothing was deployed."""
    tx = db.begin(writable=False, limits=_LOAD_LIMITS)
    try:
        record = tx.get(DEPLOYMENT_DOC_ID)
        if record is None:
            return None
        modules, runnable = read_modules(tx, ROOT, record["modules"])
        version = tx.snapshot.get(_storage_key(DEPLOYMENT_DOC_ID))
        ts = version[0] if version is not None else tx.snapshot_ts
        components = record.get("components") or {}
        children = {}
        for definition_path, stored in (components.get("definitions") or {}).items():
            child_modules, child_runnable = read_modules(tx, definition_path, stored["modules"])
            children[definition_path] = Deployment(
                child_modules,
                analysis_from_json(stored["analysis"]),
                source_hash(child_modules),
                ts,
                child_runnable,
                stored.get("udfServerVersion"),
            )
        return Deployment(
            modules,
            analysis_from_json(record["analysis"]),
            record["sourceHash"],
            ts,
            runnable,
            record.get("udfServerVersion"),
            parse_dependencies(record.get("nodeDependencies")),
            ComponentTree.from_json(components.get("tree")),
            children,
        )
    finally:
        tx.close()


def _storage_key(doc_id: str) -> bytes:
    from engine.ids import decode_id

    return decode_id(doc_id).storage_key()
