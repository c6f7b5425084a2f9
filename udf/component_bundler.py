"""Bundle an app that uses components exactly as the official CLI does: by running it.

An app with ``convex/convex.config.ts`` (``app.use(rateLimiter)``) pushes its own
bundled ``convex.config.js``, the definition paths it depends on, and one
definition per component folder (its ``convex.config.js``, schema and function
modules, each bundled on its own). How the CLI finds those folders (package
``exports`` of ``./convex.config``, nested ``use``), names them
(``../node_modules/<pkg>/dist/component``) and bundles them is its business, so
we ask it: ``convex deploy --write-push-request`` writes the StartPushRequest it
would send to a file instead of sending it. The CLI is pointed at a closed
loopback port and told to push every module, so it never needs a server.

Apps without ``convex.config`` keep ``udf.bundler`` (no CLI run needed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udf.bundler import Bundle, BundledModule, app_root, bundle
from udf.codegen import GENERATED_DIR, write_generated
from udf.component_tree import DefinitionUpload
from udf.errors import BundleError
from udf.node import JS_DIR, node_executable
from udf.node_packages import parse_dependencies
from udf.push import PushRequest

CONFIG_FILES = ("convex.config.ts", "convex.config.js")
_CLI_TIMEOUT_S = 300
_SCHEMA_MODULE = "schema.js"
# Settings of the caller's shell that would point the CLI at a real deployment.
_CLI_TARGET_VARS = (
    "CONVEX_DEPLOYMENT",
    "CONVEX_DEPLOY_KEY",
    "CONVEX_SELF_HOSTED_URL",
    "CONVEX_SELF_HOSTED_ADMIN_KEY",
    "CONVEX_URL",
)


@dataclass(frozen=True)
class ComponentParts:
    """What a push with components adds to the app's modules (``PushRequest``'s fields)."""

    app_definition: BundledModule
    app_dependencies: tuple[str, ...]
    components: tuple[DefinitionUpload, ...]


def has_component_config(functions_dir: str | Path) -> bool:
    """Whether the functions folder defines the app's components (``convex.config``)."""
    return any((Path(functions_dir) / name).is_file() for name in CONFIG_FILES)


def bundle_app(functions_dir: str | Path, *, js_dir: str | Path = JS_DIR) -> PushRequest:
    """The push the official CLI makes of ``functions_dir`` (an app with ``convex.config``)."""
    return push_request_from_json(cli_push_request(functions_dir, js_dir=js_dir))


def bundle_folder(
    functions_dir: str | Path, *, js_dir: str | Path = JS_DIR
) -> tuple[Bundle, ComponentParts | None]:
    """A folder's modules, and its component parts when it has ``convex.config``
    (bundled by the CLI); otherwise ``udf.bundler`` alone and ``None``."""
    if not has_component_config(functions_dir):
        return bundle(functions_dir, js_dir=js_dir), None
    request = bundle_app(functions_dir, js_dir=js_dir)
    modules = list(request.changed)
    if request.schema is not None:
        modules.append(
            BundledModule(_SCHEMA_MODULE, request.schema.source, request.schema.source_map)
        )
    parts = ComponentParts(
        request.app_definition or _missing("appDefinition.definition"),
        request.app_dependencies,
        request.components,
    )
    built = Bundle(
        tuple(sorted(modules, key=lambda m: m.path)),
        outside_inputs=outside_inputs(functions_dir, request),
        node_dependencies=request.node_dependencies,
    )
    return built, parts


def outside_inputs(functions_dir: str | Path, request: PushRequest) -> tuple[str, ...]:
    """Source files outside the functions folder the push's modules were bundled from,
    packages left out (as ``udf.bundler`` reports them): read from the source maps,
    whose ``sources`` are relative to each module's place in its definition folder."""
    root = Path(functions_dir).resolve()
    placed: list[tuple[Path, BundledModule | None]] = [
        (root, m) for m in (*request.changed, request.schema, request.app_definition)
    ]
    for upload in request.components:
        folder = root / upload.definition_path
        for module in (upload.definition, upload.schema, *upload.functions):
            placed.append((folder, module))
    found: set[str] = set()
    for folder, module in placed:
        if module is None or module.source_map is None:
            continue
        base = (folder / module.path).parent
        for source in json.loads(module.source_map).get("sources", ()):
            path = Path(os.path.normpath(base / source))
            if "node_modules" in path.parts or path.is_relative_to(root):
                continue
            if path.is_file():
                found.add(str(path))
    return tuple(sorted(found))


def cli_push_request(functions_dir: str | Path, *, js_dir: str | Path = JS_DIR) -> dict[str, Any]:
    """Run ``convex deploy --write-push-request`` on the app; its StartPushRequest JSON."""
    root = Path(functions_dir).resolve()
    if not root.is_dir():
        raise BundleError(f"functions folder {functions_dir} does not exist")
    project = app_root(root)
    if root != project / "convex" and not (project / "convex.json").is_file():
        raise BundleError(
            f"{functions_dir} is not the convex/ folder of {project}: an app with components "
            "is bundled from its project folder (name the folder in convex.json's functions)."
        )
    if not (root / GENERATED_DIR).is_dir():
        write_generated(root)
    cli = Path(js_dir) / "node_modules" / "convex" / "bin" / "main.js"
    with tempfile.TemporaryDirectory(prefix="headwater-push-") as out_dir:
        target = Path(out_dir) / "push"
        command = [
            node_executable(),
            str(cli),
            "deploy",
            "--write-push-request",
            str(target),
            "--typecheck",
            "disable",
            "--codegen",
            "disable",
            "--push-all-modules",
            "-y",
        ]
        try:
            done = subprocess.run(
                command,
                cwd=project,
                env=_cli_env(),
                capture_output=True,
                text=True,
                timeout=_CLI_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BundleError(f"bundling took longer than {_CLI_TIMEOUT_S} s") from None
        written = target.with_name("push.json")
        if done.returncode != 0 or not written.is_file():
            raise BundleError("bundling failed:\n" + _cli_message(done.stdout + done.stderr))
        return json.loads(written.read_text(encoding="utf-8"))


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLI_TARGET_VARS}
    env["CONVEX_SELF_HOSTED_URL"] = f"http://127.0.0.1:{_closed_port()}"
    env["CONVEX_SELF_HOSTED_ADMIN_KEY"] = "headwater-bundle-only"
    env["NO_COLOR"] = "1"
    return env


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli_message(output: str) -> str:
    """The CLI's diagnostics without its deploy banner and spinner lines."""
    lines = [
        line
        for line in output.splitlines()
        if line.strip() and not line.lstrip().startswith(("▌", "- Deploying", "Deploying"))
    ]
    return "\n".join(lines).strip() or "the Convex CLI failed without a message"


def push_request_from_json(raw: Mapping[str, Any]) -> PushRequest:
    """A StartPushRequest (the CLI's JSON) as a ``PushRequest``."""
    app = raw.get("appDefinition")
    if not isinstance(app, Mapping):
        _missing("appDefinition")
    return PushRequest(
        tuple(module_from_json(m) for m in app.get("changedModules") or ()),
        (),
        _optional_module(app.get("schema")),
        raw.get("dryRun") is True,
        app.get("udfServerVersion"),
        node_dependencies=parse_dependencies(raw.get("nodeDependencies") or []),
        app_definition=_optional_module(app.get("definition")),
        app_dependencies=tuple(app.get("dependencies") or ()),
        components=tuple(definition_from_json(d) for d in raw.get("componentDefinitions") or ()),
    )


def definition_from_json(raw: Mapping[str, Any]) -> DefinitionUpload:
    """One of the CLI's ``componentDefinitions``."""
    definition = _optional_module(raw.get("definition"))
    return DefinitionUpload(
        raw["definitionPath"],
        definition,
        tuple(raw.get("dependencies") or ()),
        _optional_module(raw.get("schema")),
        tuple(module_from_json(m) for m in raw.get("functions") or ()),
        raw.get("udfServerVersion"),
    )


def module_from_json(raw: Mapping[str, Any]) -> BundledModule:
    return BundledModule(
        raw["path"], raw["source"], raw.get("sourceMap"), raw.get("environment", "isolate")
    )


def module_json(module: BundledModule) -> dict[str, Any]:
    """A module as the CLI sends it (``sourceMap`` only when there is one)."""
    found: dict[str, Any] = {
        "path": module.path,
        "source": module.source,
        "environment": module.environment,
    }
    if module.source_map is not None:
        found["sourceMap"] = module.source_map
    return found


def definition_json(upload: DefinitionUpload) -> dict[str, Any]:
    """A ``DefinitionUpload`` as the CLI's ``componentDefinitions`` element."""
    return {
        "definitionPath": upload.definition_path,
        "definition": None if upload.definition is None else module_json(upload.definition),
        "dependencies": list(upload.dependencies),
        "schema": None if upload.schema is None else module_json(upload.schema),
        "functions": [module_json(m) for m in upload.functions],
        "udfServerVersion": upload.udf_server_version,
    }


def _optional_module(raw: Any) -> BundledModule | None:
    return None if raw is None else module_from_json(raw)


def _missing(what: str) -> Any:
    raise BundleError(f"the Convex CLI's push request has no {what}")
