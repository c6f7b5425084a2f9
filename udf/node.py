"""The Node side: where ``js/`` is, finding ``node``, installing the npm packages.

Bundling runs esbuild through node (``js/bundle.mjs``) against the packages
pinned in ``js/package.json`` and locked in ``js/package-lock.json``;
``node_modules`` is not checked in, so setup calls ``ensure_node_modules``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from udf.errors import NodeSetupError

JS_DIR = Path(__file__).resolve().parent.parent / "js"
# Packages that must be present for bundling and for building the runtime's Web classes.
_REQUIRED_PACKAGES = (
    "convex",
    "esbuild",
    "web-streams-polyfill",
    "whatwg-url",
    "headers-polyfill",
    "formdata-node",
    "abortcontroller-polyfill",
    "event-target-shim",
)
WEB_RUNTIME = JS_DIR.parent / "udf" / "js" / "gen" / "web_polyfills.js"
_NPM_CI_TIMEOUT_S = 600


def node_executable() -> str:
    """The ``node`` on PATH; NodeSetupError when there is none."""
    node = shutil.which("node")
    if node is None:
        raise NodeSetupError(
            "node is not on PATH: Node.js 18 or newer is needed to bundle functions"
        )
    return node


def run_json_script(
    script: Path, request: Any, *, timeout_s: float, timeout_error: Exception
) -> Any:
    """Run a ``js/`` script that reads one JSON request on stdin and prints one JSON
    answer (bundle.mjs, compile.mjs); ``timeout_error`` is raised past ``timeout_s``,
    NodeSetupError when the script itself fails."""
    try:
        done = subprocess.run(
            [node_executable(), str(script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise timeout_error from exc
    if done.returncode != 0:
        raise NodeSetupError(
            f"{script.name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return json.loads(done.stdout)


def has_node_modules(js_dir: str | Path = JS_DIR) -> bool:
    modules = Path(js_dir) / "node_modules"
    return all((modules / name / "package.json").is_file() for name in _REQUIRED_PACKAGES)


def ensure_node_modules(js_dir: str | Path = JS_DIR) -> None:
    """Run ``npm ci`` in ``js_dir`` unless its npm packages are installed already."""
    js_dir = Path(js_dir)
    if has_node_modules(js_dir):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise NodeSetupError("npm is not on PATH: it is needed to install the packages in js/")
    if not (js_dir / "package-lock.json").is_file():
        raise NodeSetupError(
            f"{js_dir / 'package-lock.json'} is missing: cannot install pinned packages"
        )
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=js_dir,
            capture_output=True,
            text=True,
            timeout=_NPM_CI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeSetupError(f"npm ci in {js_dir} took longer than {_NPM_CI_TIMEOUT_S} s") from exc
    if done.returncode != 0 or not has_node_modules(js_dir):
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise NodeSetupError(f"npm ci in {js_dir} failed (exit {done.returncode}):\n{tail}")


def ensure_web_runtime() -> Path:
    """The runtime's bundled Web classes (``udf/js/gen``), built from the npm packages
    (``js/runtime/build.mjs``) when missing; ``make setup`` builds it too."""
    if WEB_RUNTIME.is_file():
        return WEB_RUNTIME
    ensure_node_modules()
    done = subprocess.run(
        [node_executable(), str(JS_DIR / "runtime" / "build.mjs")],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or not WEB_RUNTIME.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise NodeSetupError(
            f"building {WEB_RUNTIME.name} failed (exit {done.returncode}):\n{tail}"
        )
    return WEB_RUNTIME
