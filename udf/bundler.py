"""Bundle a Convex functions folder into modules V8 can run.

The folder has the Convex layout: ``*.ts``/``*.js`` modules, nested folders,
``schema.ts``, ``auth.config.ts``, ``crons.ts``, ``http.ts`` and a
``_generated/`` folder that user code imports from (written by
``udf.codegen`` when missing). Which files are entry points follows the
Convex CLI: JS/TS sources only; not ``_generated/``, dotfiles, editor
temp files, names with spaces, names with more than one dot (``*.d.ts``,
``*.test.ts``) except ``auth.config``; not TypeScript files without an import
or export (not modules); not ``"use node"`` files (they need Node.js, which
this runtime is not); not ``convex.config.ts`` nor component folders.

All entry points go to one esbuild run (``js/bundle.mjs``). Each becomes one
IIFE script with an external source map; imports of the convex package
resolve to the shared ``_deps/convex.js`` module (see bundle.mjs). Source map
paths are rewritten to ``../<folder>/<file>`` for user files and
``../node_modules/...`` for packages, so no machine paths are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from udf.codegen import GENERATED_DIR, write_generated
from udf.errors import BundleError, BundleMessage, NodeSetupError
from udf.node import JS_DIR, node_executable

ENTRY_EXTENSIONS = (".js", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".jsx")
LIBRARY_MODULE = "_deps/convex.js"
_RESERVED_DEPS = "_deps"
_MULTI_DOT_ALLOWED = ("auth.config",)
_COMPONENT_CONFIG = "convex.config.ts"
_IS_MODULE = re.compile(r"^\s{0,100}(import|export)", re.MULTILINE)
_USE_NODE = re.compile(r"""^\s*("|')use node("|');?\s*$""", re.MULTILINE)
_BUNDLE_TIMEOUT_S = 300


@dataclass(frozen=True)
class BundledModule:
    """One bundled module: ``path`` like ``messages.js``, its script and source map.

    ``environment`` is where it runs: ``isolate`` (V8) or ``node`` ("use node" modules).
    """

    path: str
    source: str
    source_map: str | None
    environment: str = "isolate"

    @property
    def sha256(self) -> str:
        """The hex digest the official CLI compares: sha256 of the source, then the map."""
        digest = hashlib.sha256(self.source.encode())
        digest.update((self.source_map or "").encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Bundle:
    modules: tuple[BundledModule, ...]
    skipped: tuple[SkippedFile, ...] = ()

    def module(self, path: str) -> BundledModule | None:
        return next((m for m in self.modules if m.path == path), None)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(m.path for m in self.modules)


def _skip_reason(rel: PurePosixPath, text: str | None) -> str | None:
    base = rel.name
    if base.startswith("."):
        return "dotfile"
    if base.startswith("#"):
        return "editor temp file"
    if " " in str(rel):
        return "path contains a space"
    stem = base[: base.rindex(".")]
    if "." in stem and stem not in _MULTI_DOT_ALLOWED:
        return "name has more than one dot (declaration, test or config file)"
    if base == _COMPONENT_CONFIG:
        return "components are not supported"
    if text is not None and base.endswith((".ts", ".tsx")) and not _IS_MODULE.search(text):
        return "not a module (no import or export)"
    if text is not None and _USE_NODE.search(text):
        return '"use node" modules run in Node.js, which this runtime does not provide'
    return None


def find_entry_points(functions_dir: str | Path) -> tuple[list[str], list[SkippedFile]]:
    """The folder's entry points (relative POSIX paths) and the files skipped, with why."""
    root = Path(functions_dir)
    entries: list[str] = []
    skipped: list[SkippedFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = PurePosixPath(here.relative_to(root).as_posix())
        kept = []
        for name in sorted(dirnames):
            rel = rel_dir / name
            if name == _RESERVED_DEPS and here == root:
                raise BundleError(
                    f"{rel}/ is reserved for bundled dependencies: move that code elsewhere"
                )
            if name in (GENERATED_DIR, "node_modules") or name.startswith("."):
                continue
            if (here / name / _COMPONENT_CONFIG).exists():
                skipped.append(SkippedFile(str(rel), "component folders are not supported"))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = rel_dir / name if str(rel_dir) != "." else PurePosixPath(name)
            if not name.endswith(ENTRY_EXTENSIONS):
                continue
            text = (here / name).read_text(encoding="utf-8", errors="replace")
            reason = _skip_reason(rel, text)
            if reason is None:
                entries.append(str(rel))
            else:
                skipped.append(SkippedFile(str(rel), reason))
    return entries, skipped


def _normalize_source(source: str, module_path: str, root: Path) -> str:
    name = PurePosixPath(source).name
    if ":" in name:  # a virtual module of bundle.mjs, not a file
        return name
    out_dir = root / "out" / PurePosixPath(module_path).parent
    absolute = Path(os.path.normpath(out_dir / source))
    parts = absolute.parts
    if "node_modules" in parts:
        last = len(parts) - 1 - parts[::-1].index("node_modules")
        return "../node_modules/" + "/".join(parts[last + 1 :])
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        return absolute.name
    return f"../{root.name}/{rel.as_posix()}"


def _normalize_map(text: str | None, module_path: str, root: Path) -> str | None:
    if text is None:
        return None
    data = json.loads(text)
    data["sources"] = [_normalize_source(s, module_path, root) for s in data.get("sources", [])]
    data.pop("sourceRoot", None)
    return json.dumps(data, separators=(",", ":"))


def _run_esbuild(root: Path, entries: list[str], js_dir: Path) -> dict:
    request = {
        "functionsDir": str(root),
        "entryPoints": entries,
        "nodePaths": [str(js_dir / "node_modules")],
    }
    try:
        done = subprocess.run(
            [node_executable(), str(js_dir / "bundle.mjs")],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=_BUNDLE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BundleError(f"bundling took longer than {_BUNDLE_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise NodeSetupError(
            f"bundle.mjs failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return json.loads(done.stdout)


def bundle(functions_dir: str | Path, *, js_dir: str | Path = JS_DIR) -> Bundle:
    """Bundle every entry point of ``functions_dir`` (writing ``_generated/`` if missing)."""
    root = Path(functions_dir).resolve()
    if not root.is_dir():
        raise BundleError(f"functions folder {functions_dir} does not exist")
    if not (root / GENERATED_DIR).is_dir():
        write_generated(root)
    entries, skipped = find_entry_points(root)
    answer = _run_esbuild(root, entries, Path(js_dir))
    if not answer["ok"]:
        errors = tuple(
            BundleMessage(e["text"], e["file"], e["line"], e["column"], e["lineText"])
            for e in answer["errors"]
        )
        raise BundleError("bundling failed:\n" + "\n".join(e.render() for e in errors), errors)
    modules = tuple(
        BundledModule(m["path"], m["source"], _normalize_map(m["sourceMap"], m["path"], root))
        for m in sorted(answer["modules"], key=lambda m: m["path"])
    )
    return Bundle(modules, tuple(skipped))
