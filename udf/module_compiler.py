"""Pushed modules (the Convex CLI's ESM) made into what the V8 runtime loads.

The CLI and ``udf.bundler`` produce ES modules that import shared code from
``_deps/<hash>.js`` chunks. The runtime must make a fresh instance of a
module for every call, which V8's own modules cannot do, so each module is
turned into CommonJS (``js/compile.mjs``, one Node run for all modules not
compiled yet) and loaded as a factory ``(require, module, exports)``.

Source maps: the pushed map is relative to the CLI's ``out/<dir>/``; its
sources are rewritten to the app-root form ``../convex/messages.ts`` before
esbuild composes it with the compile step, so stack traces name the user's
files whatever folder the module sits in.

Only isolate-environment modules are compiled; ``"use node"`` modules are
stored, not run. Results are cached in-process by path and sha256 (bounded),
so a push that changes one module compiles one module.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from udf.bundler import ISOLATE, BundledModule
from udf.errors import ModuleCompileError
from udf.node import JS_DIR, run_json_script

_COMPILE_TIMEOUT_S = 300
_CACHE_ENTRIES_MAX = 4096
DEPS_DIR = "_deps/"
# Sources of a chunk that holds no user code: packages and the generated stubs.
_LIBRARY_SOURCE_MARKERS = ("node_modules/", "/_generated/")


@dataclass(frozen=True)
class RunnableModule:
    """A module as the runtime loads it: CommonJS ``code`` and its source map."""

    path: str
    code: str
    source_map: str | None


_cache: OrderedDict[tuple[str, str], RunnableModule] = OrderedDict()
_cache_lock = threading.Lock()


def display_sources(source_map: str | None, module_path: str) -> str | None:
    """The map with sources as the app root sees them (``../convex/x.ts``), not
    relative to the CLI's output folder ``out/<dir of module_path>/``."""
    if source_map is None:
        return None
    data = json.loads(source_map)
    out_dir = posixpath.join("out", posixpath.dirname(module_path))
    data["sources"] = [
        "../" + posixpath.normpath(posixpath.join(out_dir, s)) for s in data.get("sources", [])
    ]
    data.pop("sourceRoot", None)
    return json.dumps(data, separators=(",", ":"))


def is_library_chunk(module: RunnableModule) -> bool:
    """A ``_deps`` chunk made only of packages and ``_generated/`` code: it holds no
    user state, so the runtime loads it once and shares it across calls."""
    if not module.path.startswith(DEPS_DIR) or module.source_map is None:
        return False
    sources = json.loads(module.source_map).get("sources", [])
    return all(any(m in s for m in _LIBRARY_SOURCE_MARKERS) for s in sources)


def compile_modules(modules: Iterable[BundledModule]) -> tuple[RunnableModule, ...]:
    """The isolate modules of ``modules`` as the runtime loads them (in their order).

    Raises ModuleCompileError for a module esbuild cannot read (naming it).
    """
    wanted = [m for m in modules if m.environment == ISOLATE]
    keys = [(m.path, m.sha256) for m in wanted]
    with _cache_lock:
        found = {k: _cache[k] for k in keys if k in _cache}
        for k in found:
            _cache.move_to_end(k)
    missing = [m for m, k in zip(wanted, keys, strict=True) if k not in found]
    if missing:
        compiled = _run_compiler(missing)
        with _cache_lock:
            for module, runnable in zip(missing, compiled, strict=True):
                key = (module.path, module.sha256)
                found[key] = _cache[key] = runnable
            while len(_cache) > _CACHE_ENTRIES_MAX:
                _cache.popitem(last=False)
    return tuple(found[k] for k in keys)


def _run_compiler(modules: list[BundledModule]) -> list[RunnableModule]:
    request = {
        "modules": [
            {
                "path": m.path,
                "source": m.source,
                "sourceMap": display_sources(m.source_map, m.path),
            }
            for m in modules
        ]
    }
    answer = run_json_script(
        JS_DIR / "compile.mjs",
        request,
        timeout_s=_COMPILE_TIMEOUT_S,
        timeout_error=ModuleCompileError(
            f"compiling modules took longer than {_COMPILE_TIMEOUT_S} s"
        ),
    )
    if not answer["ok"]:
        lines = [
            f"{e['path']}:{e['line']}:{e['column']}: {e['text']}"
            if e["line"] is not None
            else f"{e['path']}: {e['text']}"
            for e in answer["errors"]
        ]
        raise ModuleCompileError("Failed to load modules:\n" + "\n".join(lines))
    return [RunnableModule(m["path"], m["code"], m["sourceMap"]) for m in answer["modules"]]
