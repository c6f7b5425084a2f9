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
Component definitions (``convex.config``) are refused.
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
from engine.errors import HeadwaterError, SchemaValidationError
from engine.ids import decode_id
from engine.index_diff import index_diff
from engine.limits import LIMITS, Limits
from engine.schema import CREATION_TIME_FIELD, ID_FIELD, Schema
from engine.system_tables import DEPLOYMENT_DOC_ID
from engine.validation import validate
from udf.bundler import ISOLATE, NODE, BundledModule
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

ENVIRONMENTS = (ISOLATE, NODE)
SCHEMA_MODULE = "schema.js"
_ENV_CHANGED = "Environment variables have changed during push"
# Reading every document for the schema check is not a user function: no read limits.
_CHECK_LIMITS = dataclasses.replace(
    LIMITS, read_bytes_max=1 << 50, documents_read_max=1 << 40, index_ranges_max=1 << 40
)


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
    new_schema = schema_of(analysis)
    old_schema = Schema.empty() if base is None else schema_of(base.analysis)
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
        )
        # The crons of this deploy, in its own commit: they run from it on.
        sync_cron_jobs(tx, parse_crons(prepared.analysis.crons_json), time.time() * 1000)
        return removed

    result = executor.db.mutate(write)
    deployment = Deployment(
        prepared.modules,
        prepared.analysis,
        source_hash(prepared.modules),
        result.ts,
        prepared.runnable,
        prepared.udf_server_version,
        prepared.node_dependencies,
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


# --- the data against the new schema ------------------------------------------------


@dataclass(frozen=True)
class SchemaStatus:
    """What ``wait_for_schema`` answers: done or not, and the reference's counts."""

    validation_complete: bool
    indexes_complete: int
    indexes_total: int
    error: str | None = None
    table: str | None = None

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and self.validation_complete
            and (self.indexes_complete == self.indexes_total)
        )


class SchemaCheck:
    """Checks the stored documents against a push's schema at its base snapshot.

    Runs on its own thread from ``start``: every table whose validator the push
    changes is read whole; a table an added index covers is read too (the pass that
    prepares its backfill, which the commit then writes). Progress is counted per
    table; a violation ends the check with the reference's message."""

    def __init__(self, executor: Executor, prepared: PreparedPush) -> None:
        self._db = executor.db
        self._prepared = prepared
        new, old = prepared.new_schema, prepared.old_schema
        added_tables = {d["name"].split(".")[0] for d in prepared.index_diff["added_indexes"]}
        self._validate = [
            name
            for name, table in new.tables.items()
            if new.schema_validation
            and table.document_validator is not None
            and not (
                old.schema_validation
                and name in old.tables
                and old.tables[name].document_validator == table.document_validator
            )
        ]
        self._backfill = sorted(added_tables)
        enabled = [d for d in prepared.index_diff["added_indexes"] if not d["staged"]]
        self._added_enabled = {d["name"] for d in enabled}
        self._indexes_total = sum(
            len(t.indexes) + len(t.search_indexes) + len(t.vector_indexes)
            for t in new.tables.values()
        )
        self._lock = threading.Condition()
        self._tables_done: set[str] = set()
        self._done = not (self._validate or self._backfill)
        self._error: str | None = None
        self._error_table: str | None = None

    def start(self) -> SchemaCheck:
        if not self._done:
            threading.Thread(target=self._run, daemon=True, name="headwater-schema-check").start()
        return self

    def run_inline(self) -> None:
        if not self._done:
            self._run()

    def _run(self) -> None:
        try:
            tx = self._db.begin(writable=False, limits=_CHECK_LIMITS)
            try:
                for table in sorted(set(self._validate) | set(self._backfill)):
                    self._check_table(tx, table)
                    with self._lock:
                        self._tables_done.add(table)
                        self._lock.notify_all()
            finally:
                tx.close()
        except SchemaValidationError as exc:
            with self._lock:
                self._error = exc.message
        finally:
            with self._lock:
                self._done = True
                self._lock.notify_all()

    def _check_table(self, tx: Any, table: str) -> None:
        number = tx.table_number(table)
        schema = self._prepared.new_schema
        validator = schema.tables[table].document_validator if table in self._validate else None
        if number is None:
            return
        for _, doc in tx.snapshot.iter_table(number):
            if validator is None:
                continue
            user = {k: v for k, v in doc.items() if k not in (ID_FIELD, CREATION_TIME_FIELD)}
            try:
                validate(validator, user, table_of_id=tx.table_of_id)
            except HeadwaterError as exc:
                self._error_table = table
                raise SchemaValidationError(
                    f'Document with ID "{doc[ID_FIELD]}" in table "{table}" does not match '
                    f"the schema: {exc.message}"
                ) from None

    def status(self) -> SchemaStatus:
        with self._lock:
            return self._status()

    def _status(self) -> SchemaStatus:
        pending = {n for n in self._added_enabled if n.split(".")[0] not in self._tables_done}
        validated = self._done or set(self._validate) <= self._tables_done
        complete = self._indexes_total - (0 if self._done else len(pending))
        return SchemaStatus(
            validated, complete, self._indexes_total, self._error, self._error_table
        )

    def wait(self, timeout_s: float) -> SchemaStatus:
        """The status once the check ends or changes, at most ``timeout_s`` from now."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            seen = self._status()
            while not self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
                now = self._status()
                if now != seen:
                    return now
            return self._status()

    def raise_if_failed(self) -> None:
        status = self.wait(0)
        if status.error is not None:
            raise SchemaValidationError(status.error)
        if not status.validation_complete:
            raise PushError(
                "The data is still being checked against the new schema: wait for "
                "wait_for_schema to answer complete before finish_push.",
                code="SchemaNotReady",
            )


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
