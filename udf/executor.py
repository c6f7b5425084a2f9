"""Runs deployed functions against the engine: the ``FunctionExecutor`` the gateway uses.

One call: resolve the function in the current deployment, check visibility
and kind, validate the arguments against its exported validator, run it in
an isolate with a ``CallHandler`` over an engine transaction, validate the
return value, and (mutations) commit — retrying from scratch on an OCC
conflict. Queries read at a snapshot and return their read set; mutations
return their commit ts; actions run outside any transaction and reach the
database only through nested queries and mutations. Actions of "use node"
modules run on Node.js workers (``udf.node_runtime``) with the same syscalls.

Isolates are pooled per nesting level: a call at level d waits only for
isolates of level d+1, so nested calls can never deadlock on the pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import Database
from engine.commit_ts import loads_result, max_view, resolve_value
from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import (
    ConflictError,
    HeadwaterError,
    InvalidValueError,
    SnapshotOutOfRangeError,
)
from engine.file_storage import FileStorage
from engine.limits import LIMITS, Limits
from engine.occ_retry import Attempt, attempts
from engine.transaction import Transaction
from udf.call_handler import CallContext, CallHandler
from udf.call_validators import CallValidators
from udf.calls import (
    FunctionCall,
    FunctionError,
    FunctionKind,
    FunctionOutcome,
    MutationHook,
)
from udf.commit_origins import CommitOrigins
from udf.component_namespace import ComponentNamespace
from udf.dashboard_functions import DashboardContext, is_dashboard_path, run_dashboard_function
from udf.database_syscalls import BufferedWriteFailed
from udf.deployment import (
    Deployment,
    load_deployment,
)
from udf.environment import EnvironmentSnapshots
from udf.errors import SyscallError
from udf.executor_components import ExecutorComponents, failed, parse_udf_path
from udf.executor_deploys import ExecutorDeploys
from udf.executor_query_cache import ExecutorQueryCache
from udf.fetch_client import FetchOps
from udf.function_log import FunctionLog
from udf.isolate import Isolate
from udf.node_runtime import NodeRuntime
from udf.outcome import CallOutcome, FunctionInfo
from udf.pool import IsolatePool
from udf.return_value import return_value_problem
from udf.session_requests import earlier_outcome, record_outcome
from udf.storage_syscalls import StorageSyscalls
from udf.system_functions import is_system_path, run_system_query
from udf.v8_context import start_v8

NODE_IN_COMPONENTS = '"use node" actions of components are not supported by Headwater yet.'
# A mutation given up on after its OCC retries: not the function's fault (the scheduler
# tries such a job again later, as Convex retries conflicts of scheduled mutations).
TOO_MANY_CONFLICTS = (
    "Documents read by this mutation changed while it ran, on every retry; it was not "
    "applied. Reduce contention on the documents it reads."
)


class Executor(ExecutorComponents, ExecutorDeploys, ExecutorQueryCache):
    def __init__(
        self, db: Database, *, instance_name: str = "headwater", limits: Limits = LIMITS
    ) -> None:
        start_v8()  # on the main thread, before worker threads make isolates
        self.db = db
        self.instance_name = instance_name
        self.limits = limits
        self._lock = threading.Lock()
        self._deployment: Deployment | None = load_deployment(db)
        self._pools: dict[tuple[str, str, int], IsolatePool] = {}
        self._validators = CallValidators(limits)
        self._on_deploy: list[Callable[[Deployment], None]] = []
        # Every execution a client or an action starts is appended here (serve reads it).
        self.function_log: FunctionLog | None = None
        # The URL the deployment serves at, once the server knows it (`convexUrl:cloudUrl`).
        self.cloud_url: str | None = None
        # The site origin HTTP actions are served at (`convexSiteUrl`), once known.
        self.site_url: str | None = None
        # The dashboard's `_system/dashboard/...` functions; the gateway adds its gauges.
        self.dashboard = DashboardContext(db, self)
        # Which function made each recent commit (the dashboard's log and commit views).
        self.commit_origins = CommitOrigins()
        self._env = EnvironmentSnapshots(db)
        self._file_storage: FileStorage | None = None
        # "use node" actions: a pool of Node.js workers per deployment (udf.node_runtime).
        self._node = NodeRuntime(Path(db.path) / "node", limits)
        if self._deployment is not None:
            self._node.install(self._deployment.modules, self._deployment.node_dependencies)
        self.query_cache = self._start_query_cache()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()
        self._node.close()

    # -- FunctionExecutor -------------------------------------------------------------

    def run(self, call: FunctionCall) -> FunctionOutcome:
        return self.run_at_depth(call, 0)

    def watch(self, read_set: Any, since_ts: int, on_invalidated: Callable[[int], None]) -> Any:
        return self.db.watch(read_set, since_ts, on_invalidated)

    def processed_ts(self) -> int:
        return self.db.processed_ts

    def wait_processed(self, ts: int, timeout_s: float = 10.0) -> bool:
        return self.db.wait_processed(ts, timeout_s)

    def latest_ts(self) -> int:
        return self.db.latest_ts()

    def fetch_ops(self) -> FetchOps:
        return FetchOps(
            timeout_s=self.limits.fetch_timeout_ms / 1000,
            body_bytes_max=self.limits.fetch_body_bytes_max,
        )

    def vector_search(self, args: dict[str, Any]) -> Any:
        """``1.0/actions/vectorSearch``: ``{"query": {indexName, vector, limit, expressions}}``."""
        query = args.get("query")
        if not isinstance(query, dict) or not isinstance(query.get("indexName"), str):
            raise SyscallError("vectorSearch needs a query with an indexName.")
        table, _, index = query["indexName"].partition(".")
        limit = query.get("limit")
        try:
            found = self.db.vector_search(
                table,
                index,
                query.get("vector"),  # type: ignore[arg-type]
                None if limit is None else int(limit),
                query.get("expressions"),
            )
        except HeadwaterError as exc:
            raise SyscallError(exc.message) from exc
        return {"results": [{"_id": doc_id, "_score": score} for doc_id, score in found]}

    @property
    def file_storage(self) -> FileStorage:
        """The data folder's stored files (opened on first use)."""
        with self._lock:
            if self._file_storage is None:
                self._file_storage = FileStorage(self.db, limits=self.limits)
            return self._file_storage

    def storage_syscalls(self, kind: str, tx: Transaction | None) -> StorageSyscalls:
        return StorageSyscalls(self.file_storage, kind, tx, self.cloud_url)

    # -- calls ------------------------------------------------------------------------

    def run_job(self, call: FunctionCall, hook: MutationHook) -> FunctionOutcome:
        """A scheduled or cron run: a mutation's transaction also gets ``hook``'s writes
        (its job's state); an action runs as from a client. ``None`` when the hook
        skipped the run (the job was no longer waiting)."""
        return self.run_at_depth(call, 0, hook)

    def run_at_depth(
        self, call: FunctionCall, depth: int, hook: MutationHook | None = None
    ) -> FunctionOutcome:
        """A call in its own transaction (from a client, or from an action), recorded in
        the function log: exactly one entry per call, whatever its outcome."""
        if depth == 0 and is_dashboard_path(call.path):
            return run_dashboard_function(self.dashboard, call)
        if depth == 0 and is_system_path(call.path):
            return run_system_query(
                self.db, call, self.cloud_url
            )  # the CLI's `_system/cli/...` reads
        started_s, started = time.time(), time.perf_counter()
        try:
            outcome = self._run_at_depth(call, depth, hook)
        except InvalidValueError as exc:
            # A result that is no Convex value is the function's own error, naming it as
            # Convex's udf/src/helpers.rs does (the canonical path, ``module.js:export``).
            module, export = parse_udf_path(call.path)
            message = f"Function {module}:{export} return value invalid: {exc.message}"
            outcome = FunctionOutcome(error=FunctionError(message), udf_type=call.kind)
        if self.function_log is not None:
            self.function_log.record(
                call,
                outcome,
                started_s=started_s,
                execution_time_s=time.perf_counter() - started,
                nested=depth > 0,
            )
        return outcome

    def _run_at_depth(
        self, call: FunctionCall, depth: int, hook: MutationHook | None = None
    ) -> FunctionOutcome:
        resolved = self._resolve(call, depth)
        if isinstance(resolved, FunctionOutcome):
            return resolved
        info, deployment = resolved
        if info.kind == "query":
            return self._run_query(call, info, depth)
        if info.kind == "mutation":
            return self._run_mutation(call, info, depth, hook)
        return self._run_action(call, info, depth)

    def run_nested(self, call: FunctionCall, tx: Transaction, depth: int) -> FunctionOutcome:
        """``runQuery``/``runMutation`` from a query or mutation: the caller's transaction.

        As Convex's ``run_udf``: a call refused before it runs (not found, wrong kind,
        bad arguments) and a result its returns validator refuses raise SyscallError
        with the bare text; an error of the function itself comes back in the outcome."""
        resolved = self._resolve(call, depth, tx.table_of_id)
        if isinstance(resolved, FunctionOutcome):
            assert resolved.error is not None
            raise SyscallError(resolved.error.message)
        info, _ = resolved
        with self._isolate(info, depth, call.component_path) as isolate:
            if call.kind == "mutation":
                savepoint = tx.savepoint()
                outcome = self._invoke(
                    isolate, call, info, depth, tx, tx.snapshot_ts, check_returns=False
                )
                if outcome.error is not None:
                    tx.rollback_to(savepoint)
            else:
                outcome = self._invoke(
                    isolate,
                    call,
                    info,
                    depth,
                    tx,
                    tx.snapshot_ts,
                    kind="query",
                    check_returns=False,
                )
        if outcome.error is None:
            lookup = self.local_table_of_id(call.component_path, tx.table_of_id)
            problem = self._validators.returns_problem(info, max_view(outcome.value), lookup)
            if problem is not None:
                raise SyscallError(problem)
        return outcome

    def _run_query(self, call: FunctionCall, info: FunctionInfo, depth: int) -> FunctionOutcome:
        cache, key = self.query_cache, None
        if cache is not None:
            key = self._cache_key(call, info)
            hit = cache.get(key, self.db.latest_ts() if call.ts is None else call.ts)
            if hit is not None:
                return hit
        # The isolate first, then the snapshot: waiting for an isolate must not age it.
        with self._isolate(info, depth, call.component_path) as isolate:
            try:
                tx = self.db.begin(writable=False, ts=call.ts)
            except SnapshotOutOfRangeError as exc:
                return failed(exc.message)
            try:
                outcome = self._invoke(
                    isolate, call, info, depth, tx, tx.snapshot_ts, read_set=True
                )
            finally:
                tx.close()
        if cache is not None and key is not None:
            cache.put(key, outcome)
        return outcome

    def _run_mutation(
        self,
        call: FunctionCall,
        info: FunctionInfo,
        depth: int,
        hook: MutationHook | None = None,
    ) -> FunctionOutcome:
        # A refused buffered insert (udf/js/syscalls.js) runs the mutation again at
        # once, every write a round trip, so its error surfaces at its call.
        reserving_ids = True
        attempt_list = attempts(self.limits)
        attempt = next(attempt_list, None)
        while attempt is not None:
            if attempt.pause_s:
                time.sleep(attempt.pause_s)
            tx: Transaction | None = None
            try:
                with self.db.contention.attempt(attempt.exclusive):
                    with self._isolate(info, depth, call.component_path) as isolate:
                        tx = self.db.begin(writable=True)
                        tx.reserving_ids = reserving_ids
                        replay = earlier_outcome(tx, call)
                        if replay is not None:
                            return replay
                        if hook is not None and not hook.start(tx):
                            return FunctionOutcome(udf_type="mutation", ts=tx.snapshot_ts)
                        outcome = self._invoke(isolate, call, info, depth, tx, tx.snapshot_ts)
                        if outcome.error is not None:
                            return outcome
                        if hook is not None:
                            hook.finish(tx)
                        if call.idempotency_key is not None:
                            record_outcome(tx, call, outcome)
                    # The isolate is free again while the commit waits for its fsync.
                    wrote = tx.has_writes()
                    ts = self.db.commit(tx)
                    if wrote:
                        self.commit_origins.record_call(ts, call, nested=depth > 0)
            except BufferedWriteFailed:
                if not reserving_ids:
                    raise
                reserving_ids = False
                attempt = Attempt(0.0, attempt.exclusive)
                continue
            except ConflictError:
                attempt = next(attempt_list, None)
                continue
            finally:
                if tx is not None:
                    tx.close()
            return FunctionOutcome(
                resolve_value(outcome.value, ts),
                None,
                outcome.log_lines,
                ts,
                None,
                None,
                "mutation",
            )
        return failed(TOO_MANY_CONFLICTS)

    def _run_action(self, call: FunctionCall, info: FunctionInfo, depth: int) -> FunctionOutcome:
        deployment = self.component_deployment(call.component_path)
        if deployment is not None and info.module in deployment.node_paths:
            if call.component_path:
                return failed(NODE_IN_COMPONENTS)
            return self._run_node_action(call, info, depth)
        with self._isolate(info, depth, call.component_path) as isolate:
            return self._invoke(isolate, call, info, depth, None, None)

    def action_isolate(self, depth: int = 0) -> Any:
        """An isolate of the actions' pool at ``depth`` (a context manager): HTTP actions."""
        return self._pool("action", depth).isolate()

    def _run_node_action(
        self, call: FunctionCall, info: FunctionInfo, depth: int
    ) -> FunctionOutcome:
        """A "use node" action on a Node.js worker, with the V8 action's syscalls."""
        context = CallContext(
            "action", info.udf_path, call.identity, call.request_id, depth, call.scheduled_job_id
        )
        args_json = json.dumps([to_convex_json(call.args)], separators=(",", ":"))
        raw = self._node.run(
            info,
            args_json,
            CallHandler(self, context, None),
            env=self._env.snapshot(None),
            request_id=call.request_id,
            depth=depth,
        )
        return self._outcome(raw, info, self.db.latest_ts(), self._table_of_id)

    def _invoke(
        self,
        isolate: Isolate,
        call: FunctionCall,
        info: FunctionInfo,
        depth: int,
        tx: Transaction | None,
        snapshot_ts: int | None,
        *,
        kind: FunctionKind | None = None,
        read_set: bool = False,
        check_returns: bool = True,
    ) -> FunctionOutcome:
        kind = kind or info.kind  # type: ignore[assignment]
        context = CallContext(
            kind,  # type: ignore[arg-type]
            info.udf_path,
            call.identity,
            call.request_id,
            depth,
            call.scheduled_job_id,
            call.component_path,
        )
        # Only a subscription's own run gets its journal (nested queries start afresh).
        handler = CallHandler(self, context, tx, journal=call.journal if read_set else None)
        args_json = json.dumps([to_convex_json(call.args)], separators=(",", ":"))
        is_action = info.kind == "action"
        now_ms = time.time() * 1000 if is_action or tx is None else _call_now_ms(tx)
        seed = _seed(
            info.udf_path, args_json, snapshot_ts, random_seed=is_action or kind == "mutation"
        )
        time_max_ms = (
            self.limits.action_time_max_ms if is_action else self.limits.function_time_max_ms
        )
        raw = isolate.run(
            info.kind,
            info.module,
            info.name,
            args_json,
            handler,
            env=self.component_env(call.component_path, tx),
            seed=seed,
            now_ms=now_ms,
            table_numbers=ComponentNamespace(call.component_path).table_numbers(
                self.db.table_numbers()
            ),
            snapshot_ts=snapshot_ts,
            request_id=call.request_id,
            time_limit_s=time_max_ms / 1000,
            log_lines_max=self.limits.log_lines_max,
            log_line_bytes_max=self.limits.log_line_bytes_max,
            crypto_key=os.urandom(32) if is_action else None,
        )
        ts = snapshot_ts if snapshot_ts is not None else self.db.latest_ts()
        table_of_id = self.local_table_of_id(
            call.component_path, self._table_of_id if tx is None else tx.table_of_id
        )
        outcome = self._outcome(raw, info, ts, table_of_id if check_returns else None)
        if read_set and tx is not None:
            return FunctionOutcome(
                outcome.value,
                outcome.error,
                outcome.log_lines,
                ts,
                tx.read_set,
                handler.next_journal,
                "query",
            )
        return outcome

    def _outcome(
        self,
        raw: CallOutcome,
        info: FunctionInfo,
        ts: int,
        table_of_id: Callable[[str], str | None] | None,
    ) -> FunctionOutcome:
        """The call's outcome; its value checked against the returns validator unless
        ``table_of_id`` is None (a nested call, whose caller checks it)."""
        logs = tuple(raw.log_lines)
        kind: Any = info.kind
        if raw.error is not None:
            data = None
            if raw.error.data_json is not None:
                data = from_convex_json(json.loads(raw.error.data_json))
            error = FunctionError(raw.error.text, data, raw.error.is_convex_error)
            return FunctionOutcome(None, error, logs, ts, None, None, kind)
        value = None
        if raw.result_json is not None:
            value = loads_result(raw.result_json, kind == "mutation")
        checked = max_view(value)  # a mutation's placeholders as the Int64 they become
        too_large = return_value_problem(
            info.module, info.name, checked, self.limits.value_bytes_max
        )
        if too_large is not None:
            return FunctionOutcome(None, FunctionError(too_large), logs, ts, None, None, kind)
        problem = (
            None
            if table_of_id is None
            else self._validators.returns_problem(info, checked, table_of_id)
        )
        if problem is not None:
            return FunctionOutcome(None, FunctionError(problem), logs, ts, None, None, kind)
        return FunctionOutcome(value, None, logs, ts, None, None, kind)


def _call_now_ms(tx: Transaction) -> float:
    """What ``Date.now()`` says in a query or mutation: the wall clock when its
    transaction began, frozen for the call (nested calls share it), and never
    before the snapshot it reads (a clock behind the newest commit)."""
    return max(tx.begin_ms, tx.snapshot_ts / 1e6)


def _seed(path: str, args_json: str, snapshot_ts: int | None, *, random_seed: bool) -> int:
    """Queries: the same query with the same arguments sees the same Math.random sequence."""
    if random_seed:
        return int.from_bytes(os.urandom(8), "little")
    digest = hashlib.sha256(f"{path}\x00{args_json}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
