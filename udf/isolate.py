"""An isolate with one deployment's modules loaded: run functions, analyze modules.

Load once, call many times. ``Isolate(modules)`` evaluates the runtime
(``udf/js/*.js``) and every bundled module into one V8 context and seals it;
``run`` then drives one call at a time through it (``udf.driver``).

Synchronous syscalls never reach the host: mini-racer can only call Python
asynchronously, so the runtime answers them inside V8 from what the host
passes at call start (``table_numbers`` for ``db.normalizeId``,
``snapshot_ts`` for ``meta.getSnapshotTs``), assigns query-stream ids itself
and hands the query JSON to the host with the stream's first
``1.0/queryStreamNext`` (as an extra ``query`` field); ``1.0/queryCleanup``
reaches the host as a fire-and-forget op in the next batch (see
``udf/js/syscalls.js``). Async syscalls are run when the JS microtask queue
has drained, in the order issued, so ops issued together (``Promise.all``)
share one round trip.

Context reuse: mini-racer offers one context per isolate (no fresh realm per
call), so the context is kept clean instead. A call instantiates its module
afresh (only the user's code and the chunks it imports; a ``_deps`` chunk
holding only packages and ``_generated/`` code, such as the convex package,
is a library chunk: instantiated once at seal and frozen, see
``udf.module_compiler.is_library_chunk``), so module-level state dies with
the call. Code esbuild did not put in a library chunk is evaluated per call:
a folder with a single function module gets the convex package inlined into
it (~0.3 ms more per call), and so does a chunk that also holds user code
(a helper every module imports); and the evaluation that ends a call resets the globals
(``udf/js/guard.js``, ~0.1 ms): the global object and the core constructors,
prototypes and console get their recorded properties back, every other
intrinsic having been frozen at seal. A change the reset cannot undo (a
property made non-configurable) rebuilds the isolate (~60 ms).

Measured on the 2-core build machine (other work running): a trivial query
~0.9 ms end to end (thread hop, start, poll + reset); one syscall round trip
~0.3 ms; loading the fixture app's 8 modules ~60 ms.

Limits: user-code time per call (``time_limit_s``, measured inside V8: the
handler's time and the messages to and from V8's thread do not count, see
``udf.driver``) and the V8 heap (``heap_bytes_max`` above what the loaded
modules use; a breach in a promise continuation is reported as one too). A
breach terminates the call's JS and comes back as an outcome error; the
isolate stays usable. The host discards the writes of any failed call.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from udf.bundler import BundledModule
from udf.driver import CallDriver, SyscallHandler
from udf.errors import AnalysisError
from udf.module_compiler import DEPS_DIR, RunnableModule, compile_modules, is_library_chunk
from udf.node import ensure_web_runtime
from udf.outcome import Analysis, CallOutcome, FunctionInfo, HttpRoute
from udf.source_map import MODULE_URL_PREFIX, OriginalPosition, SourceMap
from udf.stack_frames import render_frames
from udf.v8_context import V8Context

_JS_DIR = Path(__file__).resolve().parent / "js"
_RUNTIME_FILES = (
    "base.js",
    "encoding.js",
    "gen/web_polyfills.js",
    "web.js",
    "inspect.js",
    "ids.js",
    "syscalls.js",
    "fetch.js",
    "subtle.js",
    "errors.js",
    "guard.js",
    "calls.js",
    "http.js",
)
# The factory wrapper sits on the module's first line, so lines stay as
# generated; columns on line 1 shift by its length.
_FACTORY_PREFIX = "__hw.define({path}, function (require, module, exports) {{"
_FACTORY_SUFFIX = "\n}}, {library});\n//# sourceURL=" + MODULE_URL_PREFIX + "{name}"

DEFAULT_TIME_LIMIT_S = 1.0  # queries and mutations (spec §8)
DEFAULT_HEAP_BYTES_MAX = 64 << 20  # user heap per isolate (spec §8)
DEFAULT_LOG_LINES_MAX = 256
DEFAULT_LOG_LINE_BYTES_MAX = 32768
# Dead objects tolerated on the heap before a full collection (also headroom
# above the user heap limit, so garbage of earlier calls does not fail a call).
_GARBAGE_BYTES_MAX = 16 << 20
_HEAP_CHECK_USER_TIME_S = 0.01
_KINDS = ("query", "mutation", "action")
AUTH_CONFIG_MODULE = "auth.config.js"
# The runtime's error for a variable auth.config names but the deployment lacks.
_MISSING_AUTH_ENV = re.compile(
    r"^Uncaught Error: (?P<message>Environment variable \S+ is used[^\n]*)"
)


@cache
def _runtime_sources() -> tuple[tuple[str, str], ...]:
    ensure_web_runtime()
    return tuple((name, (_JS_DIR / name).read_text(encoding="utf-8")) for name in _RUNTIME_FILES)


def _seed_halves(seed: int) -> list[int]:
    seed &= (1 << 64) - 1
    return [seed >> 32, seed & 0xFFFFFFFF]


class Isolate:
    """One V8 isolate holding one deployment's modules. Not for concurrent use:
    ``run`` and ``analyze`` serialize on a lock (use a pool for parallelism)."""

    def __init__(
        self,
        modules: Iterable[RunnableModule | BundledModule],
        *,
        heap_bytes_max: int = DEFAULT_HEAP_BYTES_MAX,
    ):
        self._modules = {m.path: m for m in runnable_modules(modules)}
        self._heap_bytes_max = heap_bytes_max
        self._maps: dict[str, SourceMap | None] = {}
        self._lock = threading.Lock()
        self._broken = False  # the last reset could not undo a call's changes
        self._v8 = self._build()
        self.rebuilds = 0

    # --- setup -----------------------------------------------------------
    def _build(self) -> V8Context:
        v8 = V8Context()
        try:
            self._baseline_bytes = v8.run(lambda: self._load(v8))
        except BaseException:
            v8.close()
            raise
        self._user_time_since_check_s = 0.0
        return v8

    def _collect_if_needed(self, v8: V8Context, outcome: CallOutcome) -> None:
        """Collect garbage once it may crowd the heap limit (checked on the V8 loop).

        The limit counts garbage too, and V8 collects big dead objects late;
        checking the heap costs ~0.5 ms, so it happens once calls have run
        _HEAP_CHECK_USER_TIME_S of JS since the last check (allocating takes time).
        """
        self._user_time_since_check_s += outcome.user_time_s
        if self._user_time_since_check_s < _HEAP_CHECK_USER_TIME_S:
            return
        self._user_time_since_check_s = 0.0
        used = v8.heap_used_bytes()
        if used is None or used > self._baseline_bytes + _GARBAGE_BYTES_MAX:
            v8.collect_garbage()

    async def _load(self, v8: V8Context) -> int:
        for name, source in _runtime_sources():
            v8.eval(f"{source}\n//# sourceURL=headwater:/{name}")
        for module in self._modules.values():
            prefix = _FACTORY_PREFIX.format(path=json.dumps(module.path))
            library = "true" if is_library_chunk(module) else "false"
            suffix = _FACTORY_SUFFIX.format(library=library, name=module.path)
            v8.eval(prefix + module.code + suffix)
        v8.eval("__hw.seal()")
        v8.collect_garbage()
        baseline = v8.heap_used_bytes()
        if baseline is None:
            raise RuntimeError("V8 did not report its heap size after loading the modules")
        v8.set_heap_limit_bytes(baseline + self._heap_bytes_max + _GARBAGE_BYTES_MAX)
        return baseline

    def close(self) -> None:
        with self._lock:
            self._v8.close()

    def __enter__(self) -> Isolate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls -----------------------------------------------------------
    def run(
        self,
        kind: str,
        module_path: str,
        export_name: str,
        args_json: str,
        handler: SyscallHandler,
        *,
        seed: int,
        now_ms: float,
        env: Mapping[str, str] | None = None,
        table_numbers: Mapping[str, int] | None = None,
        snapshot_ts: int | None = None,
        request_id: str = "",
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        log_lines_max: int = DEFAULT_LOG_LINES_MAX,
        log_line_bytes_max: int = DEFAULT_LOG_LINE_BYTES_MAX,
        crypto_key: bytes | None = None,
    ) -> CallOutcome:
        """Run ``module_path``'s export ``export_name`` (``args_json``: a JSON array).

        ``crypto_key`` (32 bytes from ``os.urandom``, for actions) keys the ChaCha20
        stream of ``crypto.getRandomValues``; without it the stream comes from ``seed``.

        ``seed`` seeds Math.random (and, in actions, crypto.getRandomValues:
        give actions a seed from ``os.urandom``); ``now_ms`` is what Date
        says in queries and mutations (actions see the real clock).
        ``table_numbers`` (table name -> number, virtual tables included) and
        ``snapshot_ts`` answer ``db.normalizeId`` and ``meta.getSnapshotTs``.
        User errors, limits, a wrong kind and an unknown function come back in
        the outcome; exceptions from the handler other than SyscallError
        propagate (after the context is reset).
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
        config = {
            "kind": kind,
            "module": module_path,
            "export": export_name,
            "args": args_json,
            "seed": _seed_halves(seed),
            "nowMs": now_ms,
            "env": dict(env or {}),
            "tableNumbers": dict(table_numbers or {}),
            "snapshotTs": None if snapshot_ts is None else str(snapshot_ts),
            "requestId": request_id,
            "logLinesMax": log_lines_max,
            "logLineBytesMax": log_line_bytes_max,
        }
        if crypto_key is not None:
            if len(crypto_key) != 32:
                raise ValueError("crypto_key must be 32 bytes")
            config["cryptoKey"] = list(struct.unpack("<8I", crypto_key))
        code = f"__hw.start({json.dumps(json.dumps(config))})"
        self._refuse_reentry()
        with self._lock:
            return self._call(code, handler, time_limit_s)

    def run_http(
        self,
        config: Mapping[str, Any],
        handler: SyscallHandler,
        *,
        seed: int,
        time_limit_s: float,
        env: Mapping[str, str] | None = None,
        table_numbers: Mapping[str, int] | None = None,
        request_id: str = "",
        log_lines_max: int = DEFAULT_LOG_LINES_MAX,
        log_line_bytes_max: int = DEFAULT_LOG_LINE_BYTES_MAX,
    ) -> CallOutcome:
        """Run one HTTP action through ``http.js``'s router (``udf/js/http.js``):
        ``config`` holds ``path``, ``method`` and ``request`` (url, method,
        headerPairs, hasBody); the response leaves through ``handler``'s
        ``hw/http/*`` ops. The result is ``{"notFound": true}`` or ``{"route": ...}``."""
        full = {
            **config,
            "kind": "action",
            "seed": _seed_halves(seed),
            "nowMs": 0.0,
            "env": dict(env or {}),
            "tableNumbers": dict(table_numbers or {}),
            "snapshotTs": None,
            "requestId": request_id,
            "logLinesMax": log_lines_max,
            "logLineBytesMax": log_line_bytes_max,
        }
        code = f"__hw.startHttp({json.dumps(json.dumps(full))})"
        self._refuse_reentry()
        with self._lock:
            return self._call(code, handler, time_limit_s)

    def _call(
        self, start_code: str, handler: SyscallHandler | None, time_limit_s: float
    ) -> CallOutcome:
        if self._broken:
            self._rebuild()
        v8 = self._v8
        drive = CallDriver(v8, handler, time_limit_s, self._map_stack, self._heap_bytes_max)

        async def call_then_tidy() -> CallOutcome:
            outcome = await drive.call(start_code)
            if not drive.context_dead:
                # Runs on the V8 loop after this call is handed back, before the next one.
                asyncio.get_running_loop().call_soon(self._collect_if_needed, v8, outcome)
            return outcome

        try:
            return v8.run(call_then_tidy)
        finally:
            self._broken = not drive.reset_ok

    def _refuse_reentry(self) -> None:
        # The V8 loop is busy with the call whose handler is asking: waiting would deadlock.
        if self._v8.on_loop_thread():
            raise RuntimeError(
                "a syscall handler called back into the isolate running it; "
                "run nested function calls on another isolate (IsolatePool)"
            )

    def _rebuild(self) -> None:
        self._v8.close()
        self._v8 = self._build()
        self._broken = False
        self.rebuilds += 1

    # --- errors ----------------------------------------------------------
    def _source_map(self, path: str) -> SourceMap | None:
        if path not in self._maps:
            module = self._modules.get(path)
            text = module.source_map if module is not None else None
            self._maps[path] = SourceMap.from_json(text) if text else None
        return self._maps[path]

    def _lookup(self, path: str, line: int, column: int) -> OriginalPosition | None:
        source_map = self._source_map(path)
        if source_map is None:
            return None
        if line == 1:
            column -= len(_FACTORY_PREFIX.format(path=json.dumps(path)))
        return source_map.lookup(line, column)

    def _map_stack(self, frames: list[dict[str, Any]]) -> tuple[str, ...]:
        return render_frames(frames, self._lookup_url, self._has_map)

    def _module_path(self, url: str) -> str | None:
        return url.removeprefix(MODULE_URL_PREFIX) if url.startswith(MODULE_URL_PREFIX) else None

    def _has_map(self, url: str) -> bool:
        path = self._module_path(url)
        return path is not None and self._source_map(path) is not None

    def _lookup_url(self, url: str, line: int, column: int) -> OriginalPosition | None:
        path = self._module_path(url)
        return None if path is None else self._lookup(path, line, column)

    # --- analysis --------------------------------------------------------
    def analyze(
        self,
        *,
        env: Mapping[str, str] | None = None,
        seed: int = 0,
        now_ms: float = 0.0,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    ) -> Analysis:
        """Load every module once and report what it defines (raises AnalysisError)."""
        functions: list[FunctionInfo] = []
        routes: list[HttpRoute] = []
        extras: dict[str, str | None] = {"schema": None, "authConfig": None, "crons": None}
        for path in sorted(self._modules):
            if path.startswith(DEPS_DIR):
                continue
            found = self._analyze_module(path, env, seed, now_ms, time_limit_s)
            for f in found["functions"]:
                functions.append(
                    FunctionInfo(
                        path, f["name"], f["kind"], f["visibility"], f["args"], f["returns"]
                    )
                )
            if path == "http.js" and found["httpRoutes"] is not None:
                routes.extend(HttpRoute(r["path"], r["method"]) for r in found["httpRoutes"])
            for key, module in (
                ("schema", "schema.js"),
                ("authConfig", AUTH_CONFIG_MODULE),
                ("crons", "crons.js"),
            ):
                if path == module:
                    extras[key] = found[key]
        return Analysis(
            tuple(functions), tuple(routes), extras["schema"], extras["authConfig"], extras["crons"]
        )

    def analyze_auth_config(
        self, env: Mapping[str, str], *, time_limit_s: float = DEFAULT_TIME_LIMIT_S
    ) -> str | None:
        """``auth.config``'s default export (JSON) under ``env``; raises AnalysisError
        (``AuthConfigMissingEnvironmentVariable`` when it names a variable not in ``env``)."""
        if AUTH_CONFIG_MODULE not in self._modules:
            return None
        found = self._analyze_module(AUTH_CONFIG_MODULE, env, 0, 0.0, time_limit_s)
        return found["authConfig"]

    def _analyze_module(
        self,
        path: str,
        env: Mapping[str, str] | None,
        seed: int,
        now_ms: float,
        time_limit_s: float,
    ) -> dict[str, Any]:
        config = {
            "kind": "analyze",
            "module": path,
            "seed": _seed_halves(seed),
            "nowMs": now_ms,
            "env": dict(env or {}),
            "envRequired": path == AUTH_CONFIG_MODULE,
            "tableNumbers": {},
            "snapshotTs": None,
            "requestId": "",
            "logLinesMax": DEFAULT_LOG_LINES_MAX,
            "logLineBytesMax": DEFAULT_LOG_LINE_BYTES_MAX,
        }
        self._refuse_reentry()
        with self._lock:
            outcome = self._call(
                f"__hw.analyze({json.dumps(json.dumps(config))})", None, time_limit_s
            )
        if outcome.error is not None:
            missing = _MISSING_AUTH_ENV.match(outcome.error.text)
            if path == AUTH_CONFIG_MODULE and missing is not None:
                raise AnalysisError(missing["message"], code="AuthConfigMissingEnvironmentVariable")
            raise AnalysisError(f"Failed to analyze {path}: {outcome.error.text}")
        return json.loads(outcome.result_json or "{}")


def runnable_modules(
    modules: Iterable[RunnableModule | BundledModule],
) -> tuple[RunnableModule, ...]:
    """``modules`` as the runtime loads them: bundled modules are compiled (cached)."""
    given = list(modules)
    bundled = [m for m in given if isinstance(m, BundledModule)]
    compiled = iter(compile_modules(bundled))
    out = []
    for module in given:
        if isinstance(module, RunnableModule):
            out.append(module)
        elif module.environment == "isolate":
            out.append(next(compiled))
    return tuple(out)
