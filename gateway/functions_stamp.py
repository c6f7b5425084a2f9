"""Skip bundling on restart when the functions folder has not changed since its deploy.

``headwater serve --functions DIR`` deploys DIR on every start, and bundling
runs esbuild in a Node process (~0.8 s), most of a restart. The deploy itself
is already skipped when the bundle is unchanged; this skips the bundling too.
After a deploy from DIR the server writes ``functions_stamp.json`` in the data
folder: a hash of every input the bundle is made of (DIR's files, its
``node_modules`` lock, our ``js/bundle.mjs`` and the convex package lock) and
the deployed code's ``source_hash``, and the hash of each file outside DIR the
modules import (``../lib/x.ts``, known from the last bundle). A later start whose
inputs hash the same,
and whose deployed code is still that code (no deploy through the admin API in
between), keeps the deployed code as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from udf.node import JS_DIR

STAMP_FILE = "functions_stamp.json"
_BUNDLER_INPUTS = ("bundle.mjs", "package-lock.json")
_DEPENDENCY_LOCK = Path("node_modules") / ".package-lock.json"
# Not hashed file by file: packages are stood for by their lock, and `_generated/`
# is written by the deploy itself (codegen), so hashing it would make the first
# restart after a first deploy bundle again.
_NOT_INPUTS = ("node_modules", "_generated")


def functions_inputs_hash(functions_dir: Path, js_dir: Path = JS_DIR) -> str:
    """A hash of everything the bundle of ``functions_dir`` depends on."""
    root = functions_dir.resolve()
    digest = hashlib.sha256()
    for here, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_INPUTS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(here) / name
            digest.update(str(path.relative_to(root)).encode() + b"\x00")
            digest.update(path.read_bytes() + b"\x00")
    lock = root / _DEPENDENCY_LOCK
    if lock.exists():
        stat = lock.stat()
        digest.update(f"deps {stat.st_mtime_ns} {stat.st_size}\x00".encode())
    for name in _BUNDLER_INPUTS:
        path = js_dir / name
        if path.exists():
            digest.update(name.encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()


def outside_hashes(paths: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The sha256 of each file (``""`` for one that is gone)."""
    hashes = {}
    for path in sorted(paths):
        try:
            hashes[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            hashes[path] = ""
    return hashes


def _stamp(
    functions_dir: Path, inputs: str, source_hash: str, outside: dict[str, str]
) -> dict[str, object]:
    return {
        "functions_dir": str(functions_dir.resolve()),
        "inputs": inputs,
        "source_hash": source_hash,
        "outside": outside,
    }


def is_deployed_unchanged(data_dir: Path, functions_dir: Path, source_hash: str | None) -> bool:
    """True when ``functions_dir`` is exactly what was last deployed from it here."""
    if source_hash is None:
        return False
    try:
        recorded = json.loads((data_dir / STAMP_FILE).read_text())
        inputs = functions_inputs_hash(functions_dir)
        outside = outside_hashes(list(recorded.get("outside", {})))
        return bool(recorded == _stamp(functions_dir, inputs, source_hash, outside))
    except (OSError, ValueError):
        return False


def record_deployed(
    data_dir: Path,
    functions_dir: Path,
    inputs: str,
    source_hash: str,
    outside: tuple[str, ...] = (),
) -> None:
    """Remember that ``functions_dir`` with ``inputs`` (hashed BEFORE bundling, so an edit
    made during the deploy is seen on the next start) and the files ``outside`` it that
    its modules import is the deployed code."""
    path = data_dir / STAMP_FILE
    partial = path.with_suffix(".tmp")
    stamp = _stamp(functions_dir, inputs, source_hash, outside_hashes(outside))
    partial.write_text(json.dumps(stamp) + "\n")
    os.replace(partial, path)


def recorded_outside(data_dir: Path) -> tuple[str, ...]:
    """The files outside the functions folder the recorded deploy's modules import."""
    try:
        return tuple(json.loads((data_dir / STAMP_FILE).read_text()).get("outside", {}))
    except (OSError, ValueError, AttributeError):
        return ()
