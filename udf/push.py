"""A code push in two steps: prepare it (start), then commit it (finish).

Every deploy goes through here: the official CLI's ``start_push`` /
``finish_push``, ``headwater deploy`` to a server, and ``Executor.deploy`` of a
folder in-process.

``prepare_push`` rebuilds the full module set (the changed modules sent, plus
the stored modules named by their sha256), loads it into a fresh isolate to
find what it defines (``prepare_module_set``: the one seam between the module
format and the pipeline), evaluates ``auth.config`` under the deployment's
environment variables and diffs the schema's indexes. Nothing is written. The
data is then checked against the new schema by a ``SchemaCheck`` pass at the
push's base snapshot (``wait_for_schema`` reports its progress).

``commit_push`` writes the prepared set as ONE log entry (``store_deployment``:
modules, analysis, schema and index changes) and installs it. It is refused
with ``RaceDetected`` when the deployment or its environment variables changed
since the push was prepared (read inside the commit's transaction, so a
concurrent change conflicts instead of slipping past), and it then changes
nothing.

Node modules (``"use node"``) are analysed in Node.js (``Executor.analyze_node``,
``udf.node_runtime``) after their external packages are installed: a package
that does not install, a node module defining a query or mutation, or a V8
module importing a node module refuses the push before anything is written.
A push with ``convex.config`` also brings the component definitions
(``udf.component_push``): they are evaluated, the instance tree checked and each
child definition analysed before anything is written; the schema checked and
applied is the deployment's whole schema, every instance's tables included.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine import Database
from engine.cron_jobs import check_targets, parse_crons, sync_cron_jobs
from engine.environment_variables import read_all
from engine.errors import HeadwaterError
from engine.ids import decode_id
from engine.index_diff import index_diff
from engine.limits import LIMITS, Limits
from engine.schema import Schema
from engine.system_tables import DEPLOYMENT_DOC_ID
from udf.bundler import ISOLATE, NODE, BundledModule
from udf.component_crons import all_cron_specs
from udf.component_push import (
    PreparedComponents,
    deployment_schema,
    prepare_components,
    whole_schema,
)
from udf.component_tree import DefinitionUpload
from udf.deployment import (
    Deployment,
    check_not_emptying,
    prepare_modules,
    schema_of,
    source_hash,
    store_deployment,
)
from udf.module_compiler import RunnableModule
from udf.node_packages import NodeDependency
from udf.node_runtime import check_isolate_imports
from udf.outcome import Analysis, FunctionInfo
from udf.schema_check import SchemaCheck, SchemaStatus

ENVIRONMENTS = (ISOLATE, NODE)
SCHEMA_MODULE = "schema.js"
_ENV_CHANGED = "Environment variables have changed during push"
__all__ = ["SchemaCheck", "SchemaStatus"]  # kept importable from here


class Executor(Protocol):
    """What a push needs of the executor (``udf.executor.Executor`` implements it)."""

    db: Database
    limits: Limits

    @property
    def deployment(self) -> Deployment | None: ...

    def environment_snapshot(self) -> Mapping[str, str]: ...

    def install(self, deployment: Deployment) -> None: ...

    def analyze_node(
        self,
        modules: tuple[BundledModule, ...],
        node_dependencies: tuple[NodeDependency, ...],
        env: Mapping[str, str],
    ) -> tuple[FunctionInfo, ...]: ...


class PushError(HeadwaterError):
    """A push refused; ``code`` is the reference's (RaceDetected, MissingExistingModule...)."""

    code = "PushFailed"


@dataclass(frozen=True)
class ModuleHash:
    """A module the client did not send because the server holds it unchanged."""

    path: str
    environment: str
    sha256: str


@dataclass(frozen=True)
class PushRequest:
    changed: tuple[BundledModule, ...]
    unchanged: tuple[ModuleHash, ...] = ()
    schema: BundledModule | None = None  # sent apart from the modules; stored as schema.js
    dry_run: bool = False
    udf_server_version: str | None = None
    refuse_empty: bool = False  # headwater deploy without --allow-empty
    node_dependencies: tuple[NodeDependency, ...] = ()  # the CLI's nodeDependencies
    # Components: the app's bundled convex.config.js and the definition paths it imports,
    # and every child component definition (the CLI's ``componentDefinitions``).
    app_definition: BundledModule | None = None
    app_dependencies: tuple[str, ...] = ()
    components: tuple[DefinitionUpload, ...] = ()


def module_set(current: Deployment | None, request: PushRequest) -> tuple[BundledModule, ...]:
    """The whole new module set: what was sent, and the stored modules named by hash.

    A hash the server does not hold (the module changed, or another push replaced it
    since the client asked) is refused with the reference's codes."""
    stored = {} if current is None else {m.path: m for m in current.modules}
    found: dict[str, BundledModule] = {}
    for module in request.changed:
        _check_module(module)
        found[module.path] = module
    for named in request.unchanged:
        held = stored.get(named.path)
        if held is None:
            raise PushError(
                f"Could not find existing unchanged module {named.path}: push all modules.",
                code="MissingExistingModule",
            )
        if held.sha256 != named.sha256:
            raise PushError(
                f"Existing module hash does not match for {named.path}.",
                code="ExistingModuleHashConflict",
            )
        if held.environment != named.environment:
            raise PushError(
                f"Existing module environment does not match for {named.path}.",
                code="ExistingModuleEnvConflict",
            )
        found[named.path] = held
    if request.schema is not None:
        _check_module(request.schema)
        found[SCHEMA_MODULE] = dataclasses.replace(request.schema, path=SCHEMA_MODULE)
    return tuple(found[p] for p in sorted(found))


def _check_module(module: BundledModule) -> None:
    if module.environment not in ENVIRONMENTS:
        raise PushError(
            f"Module {module.path} has environment {module.environment!r}: "
            f"expected one of {', '.join(ENVIRONMENTS)}.",
            code="InvalidModuleEnvironment",
        )
    parts = module.path.split("/")
    if not module.path.endswith(".js") or module.path.startswith("/") or ".." in parts:
        raise PushError(
            f"Invalid module path {module.path!r}: a relative path ending in .js.",
            code="InvalidModulePath",
        )


def prepare_module_set(
    modules: tuple[BundledModule, ...], env: Mapping[str, str], *, heap_bytes_max: int
) -> tuple[tuple[RunnableModule, ...], Analysis]:
    """Compile a module set and load it into a fresh isolate to learn what it defines.

    The seam between the module format and the push pipeline (node modules are
    stored, not loaded): raises ModuleCompileError or AnalysisError (a module that
    throws at import; ``auth.config`` naming a missing variable)."""
    return prepare_modules(modules, env, heap_bytes_max=heap_bytes_max)


@dataclass
class PreparedPush:
    """A push analysed and ready to commit (kept by ``PendingPushes`` between the calls)."""

    push_id: str
    modules: tuple[BundledModule, ...]
    runnable: tuple[RunnableModule, ...]
    analysis: Analysis
    base: Deployment | None  # what the push starts from; a commit finds it still in force
    env: dict[str, str]
    new_schema: Schema
    old_schema: Schema
    index_diff: dict[str, list[dict[str, Any]]]
    dry_run: bool
    udf_server_version: str | None
    created_s: float
    check: SchemaCheck | None = None
    node_dependencies: tuple[NodeDependency, ...] = ()
    components: PreparedComponents = dataclasses.field(default_factory=PreparedComponents)
    app_schema: Schema = dataclasses.field(default_factory=Schema.empty)  # the app's own

    @property
    def schema_unchanged(self) -> bool:
        return self.new_schema.to_json() == self.old_schema.to_json()


def prepare_push(executor: Executor, request: PushRequest, push_id: str = "") -> PreparedPush:
    """Rebuild, load and analyse a push against the deployment in force; writes nothing."""
    base = executor.deployment
    modules = module_set(base, request)
    env = dict(executor.environment_snapshot())
    check_isolate_imports(modules)
    runnable, analysis = prepare_module_set(
        modules, env, heap_bytes_max=executor.limits.isolate_heap_bytes_max
    )
    if any(m.environment == NODE for m in modules):
        node_functions = executor.analyze_node(modules, request.node_dependencies, env)
        analysis = dataclasses.replace(analysis, functions=analysis.functions + node_functions)
    if request.refuse_empty:
        check_not_emptying(analysis, base, "The pushed folder")
    check_targets(parse_crons(analysis.crons_json), _kind_in(analysis))
    components = prepare_components(
        request.app_definition,
        request.app_dependencies,
        request.components,
        heap_bytes_max=executor.limits.isolate_heap_bytes_max,
        analyze_node=lambda found: executor.analyze_node(found, request.node_dependencies, env),
    )
    app_schema = schema_of(analysis)
    new_schema = whole_schema(app_schema, components.tree, components.definitions)
    old_schema = deployment_schema(base)
    return PreparedPush(
        push_id,
        modules,
        runnable,
        analysis,
        base,
        env,
        new_schema,
        old_schema,
        index_diff(old_schema, new_schema),
        request.dry_run,
        request.udf_server_version,
        time.monotonic(),
        node_dependencies=request.node_dependencies,
        components=components,
        app_schema=app_schema,
    )


@dataclass(frozen=True)
class CommittedPush:
    deployment: Deployment
    previous: Deployment | None
    removed: tuple[str, ...]


def commit_push(executor: Executor, prepared: PreparedPush) -> CommittedPush:
    """Write the prepared push as one commit and install it (module docstring)."""
    if prepared.check is not None:
        prepared.check.raise_if_failed()
    base_ts = None if prepared.base is None else prepared.base.ts
    staged = Deployment(
        prepared.modules,
        prepared.analysis,
        source_hash(prepared.modules),
        0,  # the commit's ts, set once committed
        prepared.runnable,
        prepared.udf_server_version,
        prepared.node_dependencies,
        prepared.components.tree,
        dict(prepared.components.definitions),
    )

    def write(tx: Any) -> list[str]:
        if _deployment_ts(tx) != base_ts:
            raise PushError(
                "The deployment changed during this push (another push finished first): "
                "push again.",
                code="RaceDetected",
            )
        if read_all(tx) != prepared.env:
            raise PushError(_ENV_CHANGED, code="RaceDetected")
        removed = store_deployment(
            tx,
            prepared.modules,
            prepared.analysis,
            prepared.runnable,
            udf_server_version=prepared.udf_server_version,
            check_data=not prepared.schema_unchanged,
            node_dependencies=prepared.node_dependencies,
            schema=prepared.new_schema,
            tree=prepared.components.tree,
            component_definitions=prepared.components.definitions,
        )
        # The crons of this deploy (the app's and every component instance's), in its own
        # commit: they run from it on.
        sync_cron_jobs(tx, all_cron_specs(staged), time.time() * 1000)
        return removed

    result = executor.db.mutate(write)
    deployment = dataclasses.replace(
        staged,
        ts=result.ts,
        component_definitions={
            path: dataclasses.replace(child, ts=result.ts)
            for path, child in prepared.components.definitions.items()
        },
    )
    executor.install(deployment)
    executor.db.wait_for_search_indexes(executor.limits.deploy_search_backfill_wait_s)
    return CommittedPush(deployment, prepared.base, tuple(result.value))


def _kind_in(analysis: Analysis) -> Any:
    def kind_of(module: str, export: str) -> str | None:
        found = analysis.function(module, export)
        return None if found is None else found.kind

    return kind_of


def _deployment_ts(tx: Any) -> int | None:
    """The commit ts of the deployment in force at ``tx``'s snapshot (read-tracked)."""
    if tx.get(DEPLOYMENT_DOC_ID) is None:
        return None
    version = tx.snapshot.get(decode_id(DEPLOYMENT_DOC_ID).storage_key())
    return None if version is None else int(version[0])


# --- pushes between start and finish -------------------------------------------------


class PendingPushes:
    """Prepared pushes by id, from ``start_push`` until ``finish_push`` (bounded, in memory)."""

    def __init__(self, limits: Any = LIMITS) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, PreparedPush] = {}
        self._finished: dict[str, None] = {}  # recent ids, to say "already finished"
        self._count_max = limits.pending_pushes_max
        self._age_max_s = limits.pending_push_age_s

    def add(self, prepared: PreparedPush) -> None:
        with self._lock:
            now = time.monotonic()
            for key, old in list(self._pending.items()):
                if now - old.created_s > self._age_max_s:
                    del self._pending[key]
            while len(self._pending) >= self._count_max:
                del self._pending[next(iter(self._pending))]
            self._pending[prepared.push_id] = prepared

    def get(self, push_id: object) -> PreparedPush:
        with self._lock:
            found = self._pending.get(push_id) if isinstance(push_id, str) else None
            if found is not None:
                return found
            if isinstance(push_id, str) and push_id in self._finished:
                raise PushError(
                    "This push was already finished: start a new push.",
                    code="PushAlreadyFinished",
                )
        raise PushError(
            "This push was not started on this server, or it expired (the server "
            "restarted or kept newer pushes): start the push again.",
            code="PushNotStarted",
        )

    def pop(self, push_id: str) -> None:
        with self._lock:
            self._pending.pop(push_id, None)
            self._finished[push_id] = None
            while len(self._finished) > 4 * self._count_max:
                del self._finished[next(iter(self._finished))]
