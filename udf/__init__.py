"""Headwater's function runtime: bundle a Convex functions folder, run it in V8.

    bundle(functions_dir) -> Bundle            esbuild through node, as the Convex CLI does
    Isolate(bundle.modules)                    compiled (udf.module_compiler), loaded once, then:
        .run(kind, module, export, args_json, handler, seed=, now_ms=, ...) -> CallOutcome
        .analyze() -> Analysis                 functions, schema, auth config, crons, routes
    IsolatePool(bundle.modules, size=n)        the same, for concurrent callers

The host answers the function's async syscalls through a ``SyscallHandler``
(``handle(op, args_json) -> result_json``) and raises ``SyscallError`` for
user errors. Names resolve lazily (PEP 562), so importing ``udf.errors`` or
``udf.calls`` does not load V8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy_exports import lazy_exports

_EXPORTS = {
    "Analysis": "udf.outcome",
    "AnalysisError": "udf.errors",
    "Bundle": "udf.bundler",
    "BundleError": "udf.errors",
    "BundledModule": "udf.bundler",
    "CallError": "udf.outcome",
    "CallOutcome": "udf.outcome",
    "FunctionInfo": "udf.outcome",
    "HttpRoute": "udf.outcome",
    "Isolate": "udf.isolate",
    "IsolatePool": "udf.pool",
    "NodeSetupError": "udf.errors",
    "SyscallError": "udf.errors",
    "SyscallHandler": "udf.driver",
    "bundle": "udf.bundler",
    "ensure_node_modules": "udf.node",
    "write_generated": "udf.codegen",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from udf.bundler import Bundle, BundledModule, bundle  # noqa: F401
    from udf.codegen import write_generated  # noqa: F401
    from udf.driver import SyscallHandler  # noqa: F401
    from udf.errors import AnalysisError, BundleError, NodeSetupError, SyscallError  # noqa: F401
    from udf.isolate import Isolate  # noqa: F401
    from udf.node import ensure_node_modules  # noqa: F401
    from udf.outcome import Analysis, CallError, CallOutcome, FunctionInfo, HttpRoute  # noqa: F401
    from udf.pool import IsolatePool  # noqa: F401
