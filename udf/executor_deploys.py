"""The deploy half of the executor: which deployment calls run, and how it changes.

A deploy (a functions folder bundled here, or modules pushed by the official CLI),
an environment variable change (``auth.config`` evaluated again) and the install of
a committed deployment (fresh isolate pools, "use node" packages, ``on_deploy``
callbacks) all live here, apart from running calls (``udf.executor``), so each half
reads on its own. ``Executor`` inherits these methods; the attributes below are
the state the two halves share, set up by ``Executor.__init__``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from engine import Database
from engine.environment_variables import EnvChange
from engine.limits import Limits
from udf.bundler import BundledModule
from udf.call_validators import CallValidators
from udf.calls import DeployReport
from udf.component_bundler import ComponentParts, bundle_folder
from udf.deployment import Deployment, check_functions_dir, check_not_emptying, source_hash
from udf.environment import EnvironmentSnapshots, update_environment
from udf.node_packages import NodeDependency
from udf.node_runtime import NodeRuntime
from udf.outcome import FunctionInfo
from udf.pool import IsolatePool
from udf.push import PushRequest, commit_push, prepare_push


class ExecutorDeploys:
    """Deploys, installs and environment changes of an ``Executor`` (its base class)."""

    db: Database
    limits: Limits
    _lock: threading.Lock
    _deployment: Deployment | None
    _pools: dict[tuple[str, str, int], IsolatePool]
    _validators: CallValidators
    _on_deploy: list[Callable[[Deployment], None]]
    _env: EnvironmentSnapshots
    _node: NodeRuntime

    @property
    def deployment(self) -> Deployment | None:
        return self._deployment

    def on_deploy(self, callback: Callable[[Deployment], None]) -> None:
        """Call ``callback(deployment)`` after every deploy (e.g. to reload auth config)."""
        self._on_deploy.append(callback)

    def deploy(
        self, functions_dir: str | Path, *, force: bool = False, allow_empty: bool = False
    ) -> DeployReport:
        """Bundle a functions folder and push it as one commit (unless unchanged).

        The same pipeline as a push from the official CLI (``udf.push``). A folder
        that would remove every deployed function is refused unless ``allow_empty``.
        """
        check_functions_dir(functions_dir)
        built, components = bundle_folder(functions_dir)
        report = self.deploy_modules(
            built.modules,
            force=force,
            allow_empty=allow_empty,
            origin=str(functions_dir),
            node_dependencies=built.node_dependencies,
            components=components,
        )
        return dataclasses.replace(report, outside_inputs=built.outside_inputs)

    def deploy_modules(
        self,
        modules: tuple[BundledModule, ...],
        *,
        force: bool = False,
        allow_empty: bool = False,
        origin: str = "The pushed code",
        node_dependencies: tuple[NodeDependency, ...] = (),
        components: ComponentParts | None = None,
    ) -> DeployReport:
        """Compile, analyse and store a module set (bundled here or pushed by the CLI)
        as one commit, unless it is the code in force already; ``origin`` names it in errors."""
        current = self._deployment
        if (
            not force
            and components is None
            and current is not None
            and current.source_hash == source_hash(modules)
            and current.node_dependencies == node_dependencies
        ):
            return DeployReport([f.udf_path for f in current.analysis.functions], [], current.ts)
        request = PushRequest(modules, node_dependencies=node_dependencies)
        if components is not None:
            request = dataclasses.replace(
                request,
                app_definition=components.app_definition,
                app_dependencies=components.app_dependencies,
                components=components.components,
            )
        prepared = prepare_push(self, request)
        if not allow_empty:
            check_not_emptying(prepared.analysis, current, origin)
        committed = commit_push(self, prepared)
        functions = [f.udf_path for f in committed.deployment.analysis.functions]
        return DeployReport(functions, list(committed.removed), committed.deployment.ts)

    @property
    def node_runtime(self) -> NodeRuntime:
        """The Node.js worker pools of "use node" actions (``statistics()`` for benchmarks)."""
        return self._node

    def environment_snapshot(self) -> Mapping[str, str]:
        """The deployment's environment variables now (what ``auth.config`` is evaluated with)."""
        return self._env.snapshot(None)

    def install(self, deployment: Deployment) -> None:
        """Make a committed deployment the one calls run (new isolates, callbacks)."""
        self._install(deployment)

    def analyze_node(
        self,
        modules: tuple[BundledModule, ...],
        node_dependencies: tuple[NodeDependency, ...],
        env: Mapping[str, str],
    ) -> tuple[FunctionInfo, ...]:
        """The actions of a push's "use node" modules, loaded in Node.js (packages installed)."""
        return self._node.analyze(modules, node_dependencies, env)

    def _install(self, deployment: Deployment) -> None:
        with self._lock:
            self._deployment = deployment
            old, self._pools = self._pools, {}
            self._validators.clear()
        for pool in old.values():
            pool.close()
        self._node.install(deployment.modules, deployment.node_dependencies)
        for callback in self._on_deploy:
            callback(deployment)

    def update_environment_variables(self, changes: Iterable[EnvChange]) -> int:
        """Set and remove deployment variables as one commit; returns its ts.

        ``auth.config`` is evaluated again under the new values (refused when it
        names a variable the change removes)."""
        update = update_environment(self.db, self._deployment, changes, self.limits)
        if update.deployment is not None:
            self._install(update.deployment)
        return update.ts
