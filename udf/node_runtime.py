"""Node actions: ``"use node"`` modules run in a pool of Node.js workers the server owns.

A deployment's node modules are written to a folder of their own
(``<root>/deployments/<hash>/modules``, beside a ``node_modules`` link to its
installed external packages, ``udf.node_packages``), named by the hash of the
modules and packages, so a restart or a redeploy of the same code reuses it.
At deploy time ``analyze`` loads every node module in a fresh worker and
reports its functions like the V8 analysis does, refusing a query or mutation
with Convex's words. ``run`` runs one action on a pooled worker
(``udf.node_worker``): its syscalls go to the same ``CallHandler`` a V8
action's go to, each on a thread of its own (a node action may await several
nested calls at once), and the answer comes back as the ``CallOutcome`` the V8
runtime gives, so the executor validates it, maps its stack and logs it the
same way.

Workers are reused between calls of one deployment and never serve another:
``install`` swaps in a new pool and drains the old one (calls in flight
finish on their old workers, which are then stopped). A worker that failed —
crashed, exited, timed out, passed its memory bound, broke the protocol — is
killed and its call fails; the next call gets a fresh worker. A worker whose
heap grew past half its bound after a call is retired.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import posixpath
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import HeadwaterError
from engine.limits import LIMITS, Limits
from udf.bundler import NODE, BundledModule
from udf.driver import SyscallHandler
from udf.errors import AnalysisError, SyscallError
from udf.module_compiler import DEPS_DIR, display_sources
from udf.node_packages import NodeDependency, install_packages
from udf.node_worker import (
    EXITED,
    OUT_OF_MEMORY,
    PROTOCOL,
    TIMED_OUT,
    NodeWorker,
    WorkerFailed,
)
from udf.outcome import CallError, CallOutcome, FunctionInfo
from udf.source_map import SourceMap, render_stack

_READY_MARKER = ".headwater-ready"
_ANALYZE_TIMEOUT_S = 120.0
_DEPLOYMENT_DIRS_KEPT = 4
_ids = itertools.count(1)


def node_modules_of(modules: tuple[BundledModule, ...]) -> tuple[BundledModule, ...]:
    return tuple(m for m in modules if m.environment == NODE)


def _folder_hash(modules: tuple[BundledModule, ...], deps: tuple[NodeDependency, ...]) -> str:
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.path):
        digest.update(f"{module.path}\x00{module.sha256}\x00".encode())
    for dep in deps:
        digest.update(f"{dep.name}@{dep.version}\x00".encode())
    return digest.hexdigest()[:24]


class NodeRuntime:
    """The node side of one executor: deployment folders, analysis and worker pools."""

    def __init__(self, root: str | os.PathLike[str], limits: Limits = LIMITS) -> None:
        self._root = Path(root)
        self._limits = limits
        self._lock = threading.Lock()
        self._pools: dict[int, _WorkerPool] = {}
        self._folder: Path | None = None
        self._deployment_key: tuple[str, ...] | None = None
        self._maps: dict[str, SourceMap | None] = {}
        self._modules: dict[str, BundledModule] = {}
        self._deps: tuple[NodeDependency, ...] = ()

    # -- deployment folders -----------------------------------------------------------

    def folder_for(
        self, modules: tuple[BundledModule, ...], deps: tuple[NodeDependency, ...]
    ) -> Path:
        """The folder holding these node modules and packages (installing them if needed).

        Raises NodePackagesError when the packages cannot be installed."""
        node = node_modules_of(modules)
        target = self._root / "deployments" / _folder_hash(node, deps)
        if (target / _READY_MARKER).is_file():
            return target
        packages = None
        if deps:
            packages = install_packages(
                deps, self._root / "packages", timeout_s=self._limits.node_install_time_max_s
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".write-", dir=target.parent))
        try:
            (scratch / "modules").mkdir()
            (scratch / "modules" / "package.json").write_text('{"type":"module"}\n')
            for module in node:
                file = scratch / "modules" / module.path
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(module.source, encoding="utf-8")
            if packages is not None:
                os.symlink(packages / "node_modules", scratch / "node_modules")
            (scratch / _READY_MARKER).write_text("", encoding="utf-8")
            try:
                os.rename(scratch, target)
            except OSError:
                if not (target / _READY_MARKER).is_file():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._prune(keep=target)
        return target

    def _prune(self, keep: Path) -> None:
        """Drop the oldest deployment folders (never the one in use or ``keep``)."""
        folders = sorted(
            (p for p in (self._root / "deployments").iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        for old in folders[:-_DEPLOYMENT_DIRS_KEPT]:
            if old not in (keep, self._folder):
                shutil.rmtree(old, ignore_errors=True)

    # -- analysis -------------------------------------------------------------------

    def analyze(
        self,
        modules: tuple[BundledModule, ...],
        deps: tuple[NodeDependency, ...],
        env: Mapping[str, str],
    ) -> tuple[FunctionInfo, ...]:
        """Load every node module in a fresh worker and list the actions it defines.

        Raises AnalysisError (a module throws at import, or defines a query or
        mutation) or NodePackagesError."""
        node = node_modules_of(modules)
        if not node:
            return ()
        folder = self.folder_for(modules, deps)
        paths = [m.path for m in node if not m.path.startswith(DEPS_DIR)]
        worker = self._start_worker(folder)
        try:
            message = {"type": "analyze", "id": next(_ids), "modules": paths, "env": dict(env)}
            done = worker.request(message, _no_syscalls, _ANALYZE_TIMEOUT_S)
        except WorkerFailed as exc:
            raise AnalysisError(
                f"Failed to analyze the Node.js modules: {_failure_text(exc)}"
            ) from exc
        finally:
            worker.kill()
        if done.get("error") is not None:
            maps = {m.path: m for m in node}
            stack = render_stack(
                done["error"].get("stack", ""), _lookup_in(maps, {}), _is_user_source
            )
            raise AnalysisError("\n".join((done["error"]["message"], *stack)))
        return _functions(json.loads(done["result"]))

    # -- deployments in force ---------------------------------------------------------

    def install(self, modules: tuple[BundledModule, ...], deps: tuple[NodeDependency, ...]) -> None:
        """Serve calls from this module set from now on; the old workers drain."""
        node = node_modules_of(modules)
        key = (_folder_hash(node, deps),)
        with self._lock:
            if key == self._deployment_key:
                return
            old, self._pools = self._pools, {}
            self._deployment_key = key
            self._modules = {m.path: m for m in node}
            self._deps = deps
            self._folder = None
            self._maps = {}
        for pool in old.values():
            pool.close()

    def close(self) -> None:
        with self._lock:
            old, self._pools = self._pools, {}
        for pool in old.values():
            pool.close()

    def statistics(self) -> dict[str, int]:
        with self._lock:
            pools = list(self._pools.values())
        return {
            "workers_started": sum(p.started for p in pools),
            "workers_live": sum(p.live for p in pools),
        }

    def _pool(self, depth: int) -> _WorkerPool:
        with self._lock:
            pool = self._pools.get(depth)
            if pool is not None:
                return pool
            if self._folder is None:
                self._folder = self.folder_for(tuple(self._modules.values()), self._deps)
            pool = self._pools[depth] = _WorkerPool(
                lambda folder=self._folder: self._start_worker(folder),
                self._limits.node_workers_per_level_max,
            )
            return pool

    def _acquire(self, depth: int) -> tuple[_WorkerPool, NodeWorker]:
        for _ in range(3):  # a redeploy may close the pool between lookup and acquire
            pool = self._pool(depth)
            try:
                return pool, pool.acquire()
            except WorkerFailed:
                if not pool.closed:
                    raise
        raise WorkerFailed(EXITED, "the deployment kept being replaced")

    def _start_worker(self, folder: Path) -> NodeWorker:
        return NodeWorker(
            folder,
            memory_bytes_max=self._limits.node_heap_bytes_max,
            frame_bytes_max=4 * self._limits.value_bytes_max,
        )

    # -- calls ------------------------------------------------------------------------

    def run(
        self,
        info: FunctionInfo,
        args_json: str,
        handler: SyscallHandler,
        *,
        env: Mapping[str, str],
        request_id: str,
        depth: int,
    ) -> CallOutcome:
        """Run one node action; failures of the worker come back as the outcome's error."""
        time_limit_s = self._limits.node_action_time_max_ms / 1000
        message = {
            "type": "run",
            "id": next(_ids),
            "module": info.module,
            "export": info.name,
            "args": args_json,
            "requestId": request_id,
            "env": dict(env),
            "logLinesMax": self._limits.log_lines_max,
            "logLineBytesMax": self._limits.log_line_bytes_max,
        }
        syscalls = 0
        try:
            pool, worker = self._acquire(depth)
        except (WorkerFailed, HeadwaterError) as exc:
            detail = exc.detail if isinstance(exc, WorkerFailed) else exc.message
            error = CallError("NodeWorkerFailed", f"Could not start a Node.js worker: {detail}")
            return CallOutcome(None, error, (), 0, 0.0)

        def on_syscall(frame: dict[str, Any]) -> None:
            nonlocal syscalls
            syscalls += 1
            threading.Thread(
                target=_answer, args=(worker, handler, frame), daemon=True, name="node-syscall"
            ).start()

        broken = True
        try:
            done = worker.request(message, on_syscall, time_limit_s)
            # Retired: a worker that stops after this answer (process.exit, an error
            # outside the call's promise), or whose heap keeps growing.
            broken = bool(done.get("exiting")) or (
                worker.heap_used_bytes > self._limits.node_heap_bytes_max // 2
            )
        except WorkerFailed as exc:
            error = CallError(
                _FAILURE_CODES.get(exc.kind, "NodeWorkerFailed"),
                _call_failure_text(exc, info, time_limit_s, self._limits),
            )
            return CallOutcome(None, error, (), syscalls, 0.0)
        finally:
            pool.release(worker, broken=broken)
        return self._outcome(done, syscalls)

    def _outcome(self, done: dict[str, Any], syscalls: int) -> CallOutcome:
        logs = tuple(done.get("logLines") or ())
        raw = done.get("error")
        if raw is None:
            return CallOutcome(done.get("result"), None, logs, syscalls, 0.0)
        stack = render_stack(
            raw.get("stack") or "", _lookup_in(self._modules, self._maps), _is_user_source
        )
        error = CallError(raw.get("code", "UncaughtError"), raw["message"], raw.get("data"), stack)
        return CallOutcome(None, error, logs, syscalls, 0.0)


_FAILURE_CODES = {TIMED_OUT: "TimeLimitExceeded", OUT_OF_MEMORY: "MemoryLimitExceeded"}


def _call_failure_text(
    exc: WorkerFailed, info: FunctionInfo, time_limit_s: float, limits: Limits
) -> str:
    if exc.kind == TIMED_OUT:
        return f"Action `{info.name}` execution timed out (maximum duration {time_limit_s:g}s)"
    return _failure_text(exc, limits)


def _failure_text(exc: WorkerFailed, limits: Limits = LIMITS) -> str:
    if exc.kind == OUT_OF_MEMORY:
        return (
            "JavaScript execution ran out of memory "
            f"(maximum memory usage: {limits.node_heap_bytes_max >> 20} MB)"
        )
    if exc.kind == PROTOCOL:
        return (
            "The Node.js process running this action wrote to Headwater's protocol channel "
            f"({exc.detail}); it was stopped."
        )
    if exc.kind == TIMED_OUT:
        return "The Node.js process did not answer in time; it was stopped."
    return f"The Node.js process running this action exited unexpectedly ({exc.detail})."


def _answer(worker: NodeWorker, handler: SyscallHandler, frame: dict[str, Any]) -> None:
    op_id = frame.get("opId")
    try:
        value = handler.handle(str(frame.get("op")), str(frame.get("args")))
        reply: dict[str, Any] = {"type": "syscallResult", "opId": op_id, "ok": True, "value": value}
    except SyscallError as exc:
        reply = {
            "type": "syscallResult",
            "opId": op_id,
            "ok": False,
            "message": exc.message,
            "data": exc.data_json,
        }
    except Exception as exc:  # noqa: BLE001 - a host failure fails the op, not the server
        reply = {
            "type": "syscallResult",
            "opId": op_id,
            "ok": False,
            "message": f"Internal error while running {frame.get('op')}: {type(exc).__name__}",
            "data": None,
        }
    worker.send(reply)


def _no_syscalls(frame: dict[str, Any]) -> None:
    raise WorkerFailed(PROTOCOL, "a syscall while loading modules")


def _functions(found: dict[str, list[dict[str, Any]]]) -> tuple[FunctionInfo, ...]:
    functions = []
    for path in sorted(found):
        for f in found[path]:
            if f["kind"] != "action":
                kind = "HttpAction" if f["kind"] == "httpAction" else f["kind"].capitalize()
                raise AnalysisError(
                    f"`{f['name']}` defined in `{path}` is a {kind} function. Only actions can "
                    "be defined in Node.js. See https://docs.convex.dev/functions/actions for "
                    "more details.",
                    code="InvalidNodeFunction",
                )
            functions.append(
                FunctionInfo(path, f["name"], "action", f["visibility"], f["args"], f["returns"])
            )
    return tuple(functions)


_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""")


def check_isolate_imports(modules: tuple[BundledModule, ...]) -> None:
    """Refuse a V8 module that imports a node module (Convex's words)."""
    node = {m.path for m in modules if m.environment == NODE}
    for module in modules:
        if module.environment == NODE:
            continue
        for spec in _IMPORT.findall(module.source):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(module.path), spec))
            if target in node:
                raise AnalysisError(
                    f"Failed to analyze {module.path}: Trying to execute {target} in isolate, "
                    "but it is bundled for Node.",
                    code="IsolateImportsNodeModule",
                )


def _lookup_in(modules: Mapping[str, BundledModule], maps: dict[str, SourceMap | None]) -> Any:
    def lookup(path: str, line: int, column: int) -> Any:
        if path not in maps:
            module = modules.get(path)
            text = None if module is None else display_sources(module.source_map, module.path)
            maps[path] = SourceMap.from_json(text) if text else None
        found = maps[path]
        return None if found is None else found.lookup(line, column)

    return lookup


def _is_user_source(source: str) -> bool:
    return source.startswith("../") and "node_modules/" not in source


class _WorkerPool:
    """Up to ``size`` workers of one deployment and nesting level, started on demand."""

    def __init__(self, start: Any, size: int) -> None:
        self._start = start
        self._size = max(1, size)
        self._cond = threading.Condition()
        self._free: list[NodeWorker] = []
        self._live = 0
        self.started = 0
        self._closed = False

    @property
    def live(self) -> int:
        return self._live

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> NodeWorker:
        """A free worker (started if there is room), waiting while all are busy."""
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerFailed(EXITED, "the deployment was replaced")
                if self._free:
                    idle = self._free.pop()
                    if idle.alive:
                        return idle
                    self._live -= 1  # died while idle (a timer's uncaught error)
                    idle.kill()
                    continue
                if self._live < self._size:
                    self._live += 1
                    break
                self._cond.wait()
        try:
            worker = self._start()
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise
        self.started += 1
        return worker

    def release(self, worker: NodeWorker, *, broken: bool) -> None:
        """Hand a worker back; a broken one (or any, once the pool closed) is stopped."""
        with self._cond:
            keep = not (broken or self._closed) and worker.alive
            if keep:
                self._free.append(worker)
            else:
                self._live -= 1
            self._cond.notify()
        if not keep:
            worker.kill()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            free, self._free = self._free, []
            self._live -= len(free)
            self._cond.notify_all()
        for worker in free:
            worker.kill()
