"""The push protocol from our side of the wire: what ``headwater deploy --url`` sends.

The same calls as the official CLI (``gateway.push_api``): ask which module
hashes the server holds, send the others (brotli-compressed) to
``start_push``, wait for the schema, ``finish_push``. Modules are bundled
locally first, so imports from outside the functions folder resolve here.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import brotli

from udf.bundler import BundledModule
from udf.component_bundler import ComponentParts, definition_json, module_json
from udf.node_packages import NodeDependency

PUSH_TIMEOUT_S = 300
CLIENT = "headwater-cli-0.1.0"
PUSH_ERROR_PREFIX = "Hit an error while pushing:\n"  # the reference's lead-in of push errors


class PushRefused(Exception):
    """The server answered a push call with an error: ``code`` and ``message`` from it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def one_line(self) -> str:
        """``code: message`` on one line, without the reference's "while pushing" lead-in."""
        text = self.message.removeprefix(PUSH_ERROR_PREFIX)
        return f"{self.code}: " + " ".join(text.split("\n"))


@dataclass(frozen=True)
class PushResult:
    functions: int
    removed: tuple[str, ...]
    ts: int | None
    sent: tuple[str, ...]  # the modules sent in full (the others went as hashes)


def call(
    url: str, admin_key: str, route: str, body: dict[str, Any], *, compress: bool = False
) -> Any:
    """POST one push call; the answer's JSON, or PushRefused with the server's code."""
    data = json.dumps(body).encode()
    headers = {
        "Authorization": f"Convex {admin_key}",
        "Content-Type": "application/json",
        "Convex-Client": CLIENT,
    }
    if compress:
        data = brotli.compress(data, mode=brotli.MODE_TEXT, quality=4)
        headers["Content-Encoding"] = "br"
    request = urllib.request.Request(url + route, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read().decode(errors="replace")
        try:
            detail = json.loads(raw)
            raise PushRefused(exc.code, str(detail["code"]), str(detail["message"])) from None
        except (ValueError, KeyError, TypeError):
            raise PushRefused(exc.code, f"HTTP{exc.code}", raw.strip()[:200]) from None


def held_hashes(url: str, admin_key: str) -> dict[tuple[str, str], str]:
    """The server's module hashes, by (path, environment): what need not be sent again."""
    held = call(url, admin_key, "/api/get_config_hashes", {"adminKey": admin_key})
    return {(h["path"], h.get("environment", "isolate")): h["hash"] for h in held["moduleHashes"]}


def start_push_request(
    admin_key: str,
    modules: tuple[BundledModule, ...],
    hashes: dict[tuple[str, str], str],
    *,
    allow_empty: bool = False,
    node_dependencies: tuple[NodeDependency, ...] = (),
    components: ComponentParts | None = None,
) -> tuple[dict[str, Any], list[BundledModule]]:
    """The start_push body for ``modules`` (those ``hashes`` hold go as hashes only),
    and the modules it sends whole; ``components`` as the CLI sends them, whole."""
    changed = [m for m in modules if hashes.get((m.path, m.environment)) != m.sha256]
    unchanged = [
        {"path": m.path, "environment": m.environment, "sha256": m.sha256}
        for m in modules
        if hashes.get((m.path, m.environment)) == m.sha256
    ]
    request = {
        "adminKey": admin_key,
        "dryRun": False,
        "functions": "convex/",
        "appDefinition": {
            "definition": None if components is None else module_json(components.app_definition),
            "dependencies": [] if components is None else list(components.app_dependencies),
            "schema": None,
            "changedModules": [module_json(m) for m in changed],
            "unchangedModuleHashes": unchanged,
        },
        "componentDefinitions": []
        if components is None
        else [definition_json(d) for d in components.components],
        "nodeDependencies": [d.to_json() for d in node_dependencies],
        "headwaterRefuseEmpty": not allow_empty,
    }
    return request, changed


def push_modules(
    url: str,
    admin_key: str,
    modules: tuple[BundledModule, ...],
    *,
    allow_empty: bool = False,
    node_dependencies: tuple[NodeDependency, ...] = (),
    components: ComponentParts | None = None,
) -> PushResult:
    """Push a bundled module set; raises PushRefused (the server's code and message)."""
    request, changed = start_push_request(
        admin_key,
        modules,
        held_hashes(url, admin_key),
        allow_empty=allow_empty,
        node_dependencies=node_dependencies,
        components=components,
    )
    started = call(url, admin_key, "/api/deploy2/start_push", request, compress=True)
    _wait_for_schema(url, admin_key, started)
    finish = {"adminKey": admin_key, "startPush": started, "dryRun": False}
    diff = call(url, admin_key, "/api/deploy2/finish_push", finish, compress=True)
    root = started["analysis"][""]["functions"]
    count = sum(len(m["functions"]) for m in root.values())
    removed = tuple(diff["componentDiffs"][""]["moduleDiff"]["removed"])
    return PushResult(count, removed, diff.get("headwaterTs"), tuple(m.path for m in changed))


def _wait_for_schema(url: str, admin_key: str, started: dict[str, Any]) -> None:
    deadline = time.monotonic() + PUSH_TIMEOUT_S
    while True:
        body = {"adminKey": admin_key, "schemaChange": started["schemaChange"], "timeoutMs": 10000}
        status = call(url, admin_key, "/api/deploy2/wait_for_schema", body)
        if status["type"] == "complete":
            return
        if status["type"] == "failed":
            raise PushRefused(400, "SchemaValidationFailed", status["error"])
        if status["type"] == "raceDetected":
            raise PushRefused(400, "RaceDetected", "Schema was overwritten by another push.")
        if time.monotonic() > deadline:
            raise PushRefused(504, "Timeout", "The schema check did not finish in time.")
