"""The executor's view of component instances: which code runs a call, in which pool.

A call's ``component_path`` picks the instance; the instance's definition has
its own modules and analysis (``Deployment.for_component``), so isolates are
pooled per definition (every instance of one definition shares them) and per
nesting level. A function of an instance sees its own tables only
(``udf.component_namespace``): ids in its arguments and results are checked
against its own table names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.components import ROOT, parent_path
from engine.errors import HeadwaterError
from engine.ids import decode_id
from udf.call_errors import not_found_any, not_found_public, wrong_kind
from udf.calls import FunctionCall, FunctionError, FunctionOutcome
from udf.component_namespace import ComponentNamespace
from udf.deployment import Deployment
from udf.outcome import FunctionInfo
from udf.pool import IsolatePool


def parse_udf_path(path: str) -> tuple[str, str]:
    """``"messages:send"`` → ``("messages.js", "send")``; no export means ``default``."""
    module, _, export = path.partition(":")
    module = module.removesuffix(".js")
    return f"{module}.js", export or "default"


def display_path(module: str, export: str) -> str:
    stem = module.removesuffix(".js")
    return stem if export == "default" else f"{stem}:{export}"


def failed(message: str) -> FunctionOutcome:
    return FunctionOutcome(error=FunctionError(message))


class ExecutorComponents:
    """Mixin of ``udf.executor.Executor``: resolving calls in component instances."""

    db: Any
    limits: Any
    _lock: Any
    _pools: dict[tuple[str, str, int], IsolatePool]
    _deployment: Deployment | None
    _validators: Any
    _env: Any

    def component_deployment(self, component_path: str) -> Deployment | None:
        deployment = self._deployment
        return None if deployment is None else deployment.for_component(component_path)

    def component_env(self, component_path: str, tx: Any) -> Mapping[str, str]:
        """``process.env`` of a call: the app's variables for the app; for a component
        only what its parent passed at ``use(..., {env})`` — a value, or a variable of
        the parent's own env (Convex's ``component_env`` in crates/isolate/src/
        environment/udf/phase.rs)."""
        if component_path == ROOT:
            return self._env.snapshot(tx)
        deployment = self._deployment
        instance = None if deployment is None else deployment.tree.instance(component_path)
        if instance is None or not instance.env:
            return {}
        parent: Mapping[str, str] | None = None
        env: dict[str, str] = {}
        for arg in instance.env:
            if arg.env_var is None:
                if arg.value is not None:
                    env[arg.name] = arg.value
                continue
            if parent is None:
                parent = self.component_env(parent_path(component_path) or ROOT, tx)
            if arg.env_var in parent:
                env[arg.name] = parent[arg.env_var]
        return env

    def _definition_path(self, component_path: str) -> str:
        deployment = self._deployment
        instance = None if deployment is None else deployment.tree.instance(component_path)
        return ROOT if instance is None else instance.definition_path

    def _resolve(
        self, call: FunctionCall, depth: int, table_of_id: Callable[[str], str | None] | None = None
    ) -> FunctionOutcome | tuple[FunctionInfo, Deployment]:
        if depth > self.limits.nested_call_depth_max:
            return failed(
                f"Nested function calls are limited to depth {self.limits.nested_call_depth_max}."
            )
        deployment = self.component_deployment(call.component_path)
        module, export = parse_udf_path(call.path)
        shown = display_path(module, export)
        info = None if deployment is None else deployment.function(module, export)
        # An HTTP action is found by a typed call only to be refused as the wrong kind
        # (crates/udf/src/validation.rs); /api/function never finds one (any_udf).
        visible = (
            info is not None
            and (info.kind != "httpAction" or call.kind is not None)
            and (info.visibility == "public" or call.identity.admin or depth > 0)
        )
        if info is None or deployment is None or not visible:
            return failed(not_found_public(shown) if call.kind else not_found_any(shown))
        if call.kind is not None and call.kind != info.kind:
            return failed(wrong_kind(f"{module}:{export}", call.kind, info.kind))
        lookup = self.local_table_of_id(call.component_path, table_of_id or self._table_of_id)
        problem = self._validators.args_problem(info, call.args, lookup)
        if problem is not None:
            # The function was found: the log names its kind even for an /api/function call.
            return FunctionOutcome(error=FunctionError(problem), udf_type=info.kind)
        return info, deployment

    @staticmethod
    def local_table_of_id(
        component_path: str, table_of_id: Callable[[str], str | None]
    ) -> Callable[[str], str | None]:
        """``table_of_id`` as the component sees tables: its own by their local names,
        no other's (an id of another component's table is an id of no table of its)."""
        namespace = ComponentNamespace(component_path)

        def lookup(id_string: str) -> str | None:
            name = table_of_id(id_string)
            if name is None or not namespace.owns(name):
                return None
            return namespace.local(name)

        return lookup

    def _table_of_id(self, id_string: str) -> str | None:
        try:
            return self.db.table_name(decode_id(id_string).table_number)
        except HeadwaterError:
            return None

    def _isolate(self, info: FunctionInfo, depth: int, component_path: str = ROOT) -> Any:
        family = "action" if info.kind == "action" else "transactional"
        return self._pool(family, depth, component_path).isolate()

    def _pool(self, family: str, depth: int, component_path: str = ROOT) -> IsolatePool:
        definition = self._definition_path(component_path)
        deployment = self.component_deployment(component_path)
        assert deployment is not None
        key = (definition, family, depth)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = IsolatePool(
                    deployment.runnable,
                    size=(
                        self.limits.actions_concurrent_max
                        if family == "action"
                        else self.limits.isolates_per_level_max
                    ),
                    heap_bytes_max=self.limits.isolate_heap_bytes_max,
                )
        return pool
