"""``_generated/api.d.ts`` and ``api.js`` of an app with components, as the CLI writes them.

App code calls a component as ``components.counter.lib.add``: the CLI types that
object from the push's analysis (each child instance's exported functions, their
args and returns), next to ``api``/``internal`` typed from the app's modules. The
text comes from the CLI's own templates, run by ``js/component_api.mjs``; the
other generated files (``server``, ``dataModel``) are ``udf.codegen``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from udf.codegen import GENERATED_DIR, write_generated
from udf.errors import BundleError
from udf.node import JS_DIR, run_json_script

_CODEGEN_TIMEOUT_S = 120


def component_api_files(
    functions_dir: str | Path, start_push: Mapping[str, Any], *, js_dir: str | Path = JS_DIR
) -> dict[str, str]:
    """``api.d.ts`` and ``api.js`` for ``functions_dir`` from a StartPushResponse's analysis."""
    if "" not in (start_push.get("analysis") or {}):
        raise BundleError('the push analysis has no entry for the app (definition path "")')
    answer = run_json_script(
        Path(js_dir) / "component_api.mjs",
        {"functionsDir": str(Path(functions_dir).resolve()), "startPush": dict(start_push)},
        timeout_s=_CODEGEN_TIMEOUT_S,
        timeout_error=BundleError(f"codegen took longer than {_CODEGEN_TIMEOUT_S} s"),
    )
    if not answer["ok"]:
        raise BundleError(f"codegen failed: {answer['error']}")
    return {"api.d.ts": answer["apiDts"], "api.js": answer["apiJs"]}


def write_component_api(
    functions_dir: str | Path, start_push: Mapping[str, Any], *, js_dir: str | Path = JS_DIR
) -> Path:
    """Write ``_generated/`` with ``components`` typed from ``start_push``; its folder."""
    files = component_api_files(functions_dir, start_push, js_dir=js_dir)
    generated = Path(functions_dir) / GENERATED_DIR
    if not generated.is_dir():
        write_generated(functions_dir)
    for name, text in files.items():
        (generated / name).write_text(text, encoding="utf-8")
    return generated
