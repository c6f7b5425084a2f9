"""Bundle a Convex functions folder exactly as the Convex CLI does.

The folder has the Convex layout: ``*.ts``/``*.js`` modules, nested folders,
``schema.ts``, ``auth.config.ts``, ``crons.ts``, ``http.ts`` and a
``_generated/`` folder that user code imports from (written by
``udf.codegen`` when missing). Which files are entry points follows the
Convex CLI: JS/TS sources only; not ``_generated/``, dotfiles, editor
temp files, names with spaces, names with more than one dot (``*.d.ts``,
``*.test.ts``) except ``auth.config``; not TypeScript files without an import
or export (not modules); not ``convex.config.ts`` nor component folders (an app
with ``convex.config`` is bundled by the Convex CLI: ``udf.component_bundler``).
``"use node"`` files are bundled for Node.js (environment ``node``), leaving the
packages ``convex.json`` names in ``node.externalPackages`` as imports
(``udf.node_packages``); their actions run in Node.js workers (``udf.node_runtime``).

``js/bundle.mjs`` runs esbuild as the CLI does (npm convex's
``bundler/index.js``): ESM modules, code shared by several modules in
``_deps/<hash>.js`` chunks, source maps naming ``../convex/messages.ts``
(esbuild works in the app root: the folder of the nearest ``package.json``
above the functions folder). So ``headwater deploy`` and ``npx convex
deploy`` produce the same modules, and one pipeline (``udf.module_compiler``)
makes them runnable.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from udf.codegen import GENERATED_DIR, write_generated
from udf.errors import BundleError, BundleMessage
from udf.node import JS_DIR, run_json_script
from udf.node_packages import (
    NodeDependency,
    external_allow_list,
    external_packages,
    pinned_dependencies,
)

ENTRY_EXTENSIONS = (".js", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".jsx")
_RESERVED_DEPS = "_deps"
_MULTI_DOT_ALLOWED = ("auth.config",)
_COMPONENT_CONFIG = "convex.config.ts"
_IS_MODULE = re.compile(r"^\s{0,100}(import|export)", re.MULTILINE)
_USE_NODE = re.compile(r"""^\s*("|')use node("|');?\s*$""", re.MULTILINE)
_BUNDLE_TIMEOUT_S = 300
# Modules the CLI bundles in runs of their own, and those that must not be "use node".
_SCHEMA_FILES = ("schema.ts", "schema.js")
_AUTH_CONFIG_FILES = ("auth.config.ts", "auth.config.js")
_MUST_BE_ISOLATE = ("http", "crons", "schema", "auth.config")
_ACTIONS_DIR = "actions"
ISOLATE = "isolate"
NODE = "node"
# The CLI's advice when a V8 module's code uses Node APIs (bundler/index.js).
_RECOMMEND_USE_NODE = (
    'It looks like you are using Node APIs from a file without the "use node" directive.\n'
    "Split out actions using Node.js APIs like this into a new file only containing actions "
    'that uses "use node" so these actions will run in a Node.js environment.\n'
    "For more information see https://docs.convex.dev/functions/runtimes#nodejs-runtime"
)


@dataclass(frozen=True)
class BundledModule:
    """One module as the CLI pushes it: ``path`` like ``messages.js`` or
    ``_deps/H7RC4ZFC.js``, its ESM source and source map, and where it runs."""

    path: str
    source: str
    source_map: str | None
    environment: str = ISOLATE

    @property
    def sha256(self) -> str:
        """The CLI's hash of a module (``hash()`` in its ``cli/lib/components.js``)."""
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
    # Source files outside the functions folder the modules import (``../lib/x.ts``):
    # a change to them changes the bundle too.
    outside_inputs: tuple[str, ...] = ()
    # External packages the "use node" modules import (convex.json's externalPackages).
    node_dependencies: tuple[NodeDependency, ...] = ()

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
        return "component definition (bundled with the components, udf.component_bundler)"
    if text is not None and base.endswith((".ts", ".tsx")) and not _IS_MODULE.search(text):
        return "not a module (no import or export)"
    return None


def uses_node(text: str) -> bool:
    """Whether a source starts with the ``"use node"`` directive."""
    return _USE_NODE.search(text) is not None


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
                skipped.append(SkippedFile(str(rel), "component folder (its own definition)"))
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


def app_root(functions_dir: Path) -> Path:
    """The folder esbuild works in: the nearest one above ``functions_dir`` with a
    ``package.json`` (the CLI runs there), else ``functions_dir``'s parent."""
    for folder in functions_dir.parents:
        if (folder / "package.json").is_file():
            return folder
    return functions_dir.parent


def _entries_by_run(root: Path, entries: list[str]) -> dict[str, Any]:
    """The CLI's bundler runs: the schema, isolate modules, "use node" modules, auth config."""
    runs: dict[str, Any] = {"schema": None, "isolate": [], "node": [], "authConfig": None}
    for entry in entries:
        if entry in _SCHEMA_FILES:
            runs["schema"] = runs["schema"] or entry
            continue
        if entry in _AUTH_CONFIG_FILES:
            if runs["authConfig"] is not None:
                raise BundleError(
                    f"Found both {root / _AUTH_CONFIG_FILES[1]} and "
                    f"{root / _AUTH_CONFIG_FILES[0]}, choose one."
                )
            runs["authConfig"] = entry
            continue
        text = (root / entry).read_text(encoding="utf-8", errors="replace")
        if uses_node(text):
            if PurePosixPath(entry).with_suffix("").as_posix() in _MUST_BE_ISOLATE:
                raise BundleError(f'"use node" directive is not allowed for {entry}.')
            runs["node"].append(entry)
        elif entry.startswith(_ACTIONS_DIR + "/"):
            raise BundleError(
                f'{entry} is in /actions subfolder but has no "use node"; directive. '
                'Mark it "use node" or move it out of actions/.'
            )
        else:
            runs["isolate"].append(entry)
    if runs["authConfig"] == _AUTH_CONFIG_FILES[1] and (root / _AUTH_CONFIG_FILES[0]).exists():
        runs["authConfig"] = _AUTH_CONFIG_FILES[0]
    # The CLI's order (a depth-first walk, names sorted): esbuild's output depends on it.
    for run in ("isolate", "node"):
        runs[run].sort(key=lambda entry: PurePosixPath(entry).parts)
    return runs


def _run_esbuild(root: Path, runs: dict[str, Any], js_dir: Path, external: list[str]) -> dict:
    request = {
        "appRoot": str(app_root(root)),
        "functionsDir": str(root),
        **runs,
        "nodePaths": [str(js_dir / "node_modules")],
        "nodeExternal": external,
    }
    return run_json_script(
        js_dir / "bundle.mjs",
        request,
        timeout_s=_BUNDLE_TIMEOUT_S,
        timeout_error=BundleError(f"bundling took longer than {_BUNDLE_TIMEOUT_S} s"),
    )


def bundle(functions_dir: str | Path, *, js_dir: str | Path = JS_DIR) -> Bundle:
    """Bundle every entry point of ``functions_dir`` (writing ``_generated/`` if missing)."""
    root = Path(functions_dir).resolve()
    if not root.is_dir():
        raise BundleError(f"functions folder {functions_dir} does not exist")
    if not (root / GENERATED_DIR).is_dir():
        write_generated(root)
    entries, skipped = find_entry_points(root)
    runs = _entries_by_run(root, entries)
    available = {}
    if runs["node"]:
        available = external_packages(app_root(root), external_allow_list(app_root(root)))
    answer = _run_esbuild(root, runs, Path(js_dir), sorted(available))
    if not answer["ok"]:
        errors = tuple(
            BundleMessage(e["text"], e["file"], e["line"], e["column"], e["lineText"])
            for e in answer["errors"]
        )
        text = "bundling failed:\n" + "\n".join(e.render() for e in errors)
        notes = [n for e in answer["errors"] for n in e.get("notes", [])]
        if any("Are you trying to bundle for node?" in n for n in notes):
            text += "\n" + _RECOMMEND_USE_NODE
        raise BundleError(text, errors)
    modules = tuple(
        BundledModule(m["path"], m["source"], m["sourceMap"], m["environment"])
        for m in answer["modules"]
    )
    outside = tuple(p for p in answer["inputs"] if not Path(p).is_relative_to(root))
    pinned = pinned_dependencies(answer.get("externalImports", []), available)
    return Bundle(modules, tuple(skipped), outside, pinned)
