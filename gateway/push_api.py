"""The code push endpoints the official CLI uses (``npx convex deploy`` / ``dev``), admin only.

    POST /api/get_config_hashes            stored modules' sha256, so unchanged ones are not sent
    POST /api/deploy2/evaluate_push        the schema change a push would make (nothing kept)
    POST /api/deploy2/start_push           prepare a push: analysis, index diff, schema check
    POST /api/deploy2/wait_for_schema      block up to timeoutMs for the schema check
    POST /api/deploy2/finish_push          commit the prepared push (one log entry)
    POST /api/deploy2/report_push_completed   the CLI's timing spans (accepted, dropped)
    GET  /api/v1/get_canonical_urls        the URLs ``deploy --cmd`` hands its command

``/api/deploy2/evaluate_schema`` is not served (404): the CLI treats it as best
effort and falls back to ``evaluate_push``.

Bodies of start/evaluate/finish come brotli-compressed (``Content-Encoding:
br``); they are decompressed up to ``push_bytes_max`` (Convex's 200 MB), and a
malformed or truncated stream is a 400 that changes nothing. The admin key is
taken from ``Authorization: Convex <key>`` and from the body's ``adminKey``:
a wrong key is 401 ``BadAdminKey``, none (or a user token) 403 ``BadDeployKey``.
Refusals are ``{"code", "message"}`` with the reference's codes; push errors
read "Hit an error while pushing:" first, as the reference words them.

Client versions (``Convex-Client: npm-cli-X`` and the body's
``udfServerVersion``): npm below 0.19.1 is refused as the reference refuses it
(``ClientVersionUnsupported``), and so is a major version above 1, whose module
and push formats this server does not know.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import anyio
import brotli
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import HeadwaterError
from engine.limits import LIMITS, Limits, format_bytes
from gateway.admin_auth import bad_deploy_key
from gateway.context import AuthenticationError, GatewayContext
from gateway.http_errors import HttpError, bad_request, error_response, json_response
from gateway.json_input import JsonInputError, parse_json
from gateway.push_client import PUSH_ERROR_PREFIX
from gateway.push_component_shapes import (
    add_component_diffs,
    add_components,
    index_diffs_by_component,
)
from gateway.push_shapes import (
    PUSH_ID_KEY,
    ROOT,
    TS_KEY,
    empty_finish_diff,
    finish_push_diff,
    module_hashes,
    schema_change,
    schema_status,
    start_push_response,
)
from udf.bundler import BundledModule
from udf.component_tree import DefinitionUpload
from udf.executor import Executor
from udf.node_packages import NodeDependency, NodePackagesError, parse_dependencies
from udf.push import (
    ModuleHash,
    PendingPushes,
    PushRequest,
    SchemaCheck,
    commit_push,
    prepare_push,
)

_WAIT_FOR_SCHEMA_S_MAX = 60.0
_DEFAULT_SCHEMA_TIMEOUT_MS = 10_000
_INFLATE_CHUNK_BYTES = 1 << 20
# The reference's deprecation threshold for npm clients (crates/common/deprecation.json).
_NPM_UNSUPPORTED_BELOW = (0, 19, 1)
_NPM_MAJOR_MAX = 1
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def push_routes(
    context: GatewayContext, executor: Executor, *, limits: Limits = LIMITS
) -> list[BaseRoute]:
    pending = PendingPushes(limits)

    async def get_config_hashes(request: Request) -> Response:
        try:
            body = await _admin_body(context, request, limits)
            _check_version(request, body.get("version"))
            deployment = executor.deployment
            version = None if deployment is None else deployment.udf_server_version
            return json_response(
                {
                    "config": {"functions": "convex/", "authInfo": []},
                    "moduleHashes": module_hashes(deployment),
                    "udfServerVersion": version,
                    # No "nodeVersion" key: the CLI's config diff compares it with its own
                    # (undefined), and null would show as a change of Node version.
                }
            )
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as code + message
            return error_response(exc)

    async def evaluate_push(request: Request) -> Response:
        try:
            push = _push_request(await _admin_body(context, request, limits), request)
            prepared = await anyio.to_thread.run_sync(prepare_push, executor, push)
            change = schema_change(prepared)
            change["schemaIds"] = {ROOT: None}
            if prepared.components.tree.has_components:
                paths = sorted(prepared.components.tree.instances)
                change["indexDiffs"] = index_diffs_by_component(prepared.index_diff, paths)
            return json_response({"schemaChange": change})
        except Exception as exc:  # noqa: BLE001
            return error_response(_pushing(exc))

    async def start_push(request: Request) -> Response:
        try:
            push = _push_request(await _admin_body(context, request, limits), request)
            push_id = uuid.uuid4().hex
            prepared = await anyio.to_thread.run_sync(prepare_push, executor, push, push_id)
            prepared.check = SchemaCheck(executor, prepared).start()
            pending.add(prepared)
            return json_response(add_components(start_push_response(prepared), prepared))
        except Exception as exc:  # noqa: BLE001
            return error_response(_pushing(exc))

    async def wait_for_schema(request: Request) -> Response:
        try:
            body = await _admin_body(context, request, limits)
            change = body.get("schemaChange")
            ids = change.get("schemaIds") if isinstance(change, dict) else None
            push_id = ids.get(ROOT) if isinstance(ids, dict) else None
            prepared = pending.get(push_id)
            timeout_ms = body.get("timeoutMs", _DEFAULT_SCHEMA_TIMEOUT_MS)
            if not isinstance(timeout_ms, (int, float)) or timeout_ms < 0:
                raise bad_request("BadJsonBody", "timeoutMs must be a non-negative number.")
            deployment = executor.deployment
            if _base_ts(prepared.base) != _base_ts(deployment):
                return json_response({"type": "raceDetected"})
            assert prepared.check is not None
            timeout_s = min(timeout_ms / 1000, _WAIT_FOR_SCHEMA_S_MAX)
            status = await anyio.to_thread.run_sync(prepared.check.wait, timeout_s)
            return json_response(schema_status(status))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)

    async def finish_push(request: Request) -> Response:
        try:
            body = await _admin_body(context, request, limits)
            start = body.get("startPush")
            if not isinstance(start, dict):
                raise bad_request("BadJsonBody", "finish_push needs the start_push response.")
            push_id = start.get(PUSH_ID_KEY)
            prepared = pending.get(push_id)
            if body.get("dryRun") is True or prepared.dry_run:
                pending.pop(prepared.push_id)
                return json_response(empty_finish_diff())
            try:
                committed = await anyio.to_thread.run_sync(commit_push, executor, prepared)
            finally:
                pending.pop(prepared.push_id)
            diff = finish_push_diff(prepared, committed.previous, committed.removed)
            diff = add_component_diffs(diff, prepared, committed.previous)
            diff[TS_KEY] = committed.deployment.ts
            return json_response(diff)
        except Exception as exc:  # noqa: BLE001
            return error_response(_pushing(exc))

    async def report_push_completed(request: Request) -> Response:
        try:
            await _admin_body(context, request, limits)
            return json_response(None)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)

    async def canonical_urls(request: Request) -> Response:
        try:
            _require_admin_header(context, request, required=True)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        origin = f"{request.url.scheme}://{request.url.netloc}"
        site = executor.site_url or origin + "/http"  # the site port, when serving one
        return json_response({"convexCloudUrl": origin, "convexSiteUrl": site})

    return [
        Route("/api/get_config_hashes", get_config_hashes, methods=["POST"]),
        Route("/api/deploy2/evaluate_push", evaluate_push, methods=["POST"]),
        Route("/api/deploy2/start_push", start_push, methods=["POST"]),
        Route("/api/deploy2/wait_for_schema", wait_for_schema, methods=["POST"]),
        Route("/api/deploy2/finish_push", finish_push, methods=["POST"]),
        Route("/api/deploy2/report_push_completed", report_push_completed, methods=["POST"]),
        Route("/api/v1/get_canonical_urls", canonical_urls, methods=["GET"]),
    ]


def _base_ts(deployment: Any) -> int | None:
    return None if deployment is None else deployment.ts


def _pushing(exc: BaseException) -> BaseException:
    """A push error in the reference's words: ``Hit an error while pushing:`` first."""
    if isinstance(exc, HeadwaterError):
        return HeadwaterError(PUSH_ERROR_PREFIX + exc.message, code=exc.code)
    return exc


# --- auth and body -------------------------------------------------------------------


def _require_admin_header(context: GatewayContext, request: Request, *, required: bool) -> bool:
    """Check ``Authorization``; whether it carried the admin key."""
    header = request.headers.get("authorization")
    if header is None and not required:
        return False
    try:
        identity = context.authenticator.from_authorization_header(header)
    except AuthenticationError as exc:
        raise HttpError(401, exc.code, exc.message) from None
    if not identity.admin:
        raise bad_deploy_key(context)
    return True


async def _admin_body(context: GatewayContext, request: Request, limits: Limits) -> dict:
    """The request's JSON object, once the admin key (header or ``adminKey``) checks out."""
    had_header = _require_admin_header(context, request, required=False)
    raw = _decoded(
        await request.body(), request.headers.get("content-encoding"), limits.push_bytes_max
    )
    try:
        body: Any = parse_json(raw)
    except JsonInputError as exc:
        raise bad_request("BadJsonBody", f"Invalid JSON body: {exc.message}") from None
    if not isinstance(body, dict):
        raise bad_request("BadJsonBody", "The body must be a JSON object.")
    key = body.get("adminKey")
    if key is not None:
        if not isinstance(key, str) or not context.authenticator.is_admin_key(key):
            raise HttpError(
                401, "BadAdminKey", "The provided admin key was invalid for this instance"
            )
    elif not had_header:
        raise bad_deploy_key(context)
    return body


def _decoded(raw: bytes, encoding: str | None, bytes_max: int) -> bytes:
    """The body, brotli-decompressed when so marked, never past ``bytes_max``."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        if len(raw) > bytes_max:
            raise _too_large(bytes_max)
        return raw
    if coding != "br":
        raise HttpError(
            415,
            "UnsupportedContentEncoding",
            f"Content-Encoding {encoding!r} is not supported: send br or an uncompressed body.",
        )
    inflater = brotli.Decompressor()
    parts: list[bytes] = []
    size = 0
    try:
        chunk = inflater.process(raw, output_buffer_limit=_INFLATE_CHUNK_BYTES)
        while True:
            size += len(chunk)
            if size > bytes_max:
                raise _too_large(bytes_max)
            parts.append(chunk)
            # All input is given at once: ask for more output until the stream ends or
            # no more comes (brotli may hand out more than the limit, and report that it
            # can take input while output is still pending).
            if inflater.is_finished() or not chunk:
                break
            chunk = inflater.process(b"", output_buffer_limit=_INFLATE_CHUNK_BYTES)
    except brotli.error:
        raise bad_request(
            "BadCompressedBody", "The body is not valid brotli (Content-Encoding: br)."
        ) from None
    if not inflater.is_finished():
        raise bad_request(
            "BadCompressedBody",
            "The brotli body ends before its stream does (truncated): nothing was pushed.",
        )
    return b"".join(parts)


def _too_large(bytes_max: int) -> HttpError:
    return HttpError(
        413,
        "PayloadTooLarge",
        f"The push is larger than {format_bytes(bytes_max)} once decompressed.",
    )


# --- the push request ----------------------------------------------------------------


def _check_version(request: Request, body_version: object) -> None:
    client = request.headers.get("convex-client", "")
    versions = [client.removeprefix("npm-cli-")] if client.startswith("npm-cli-") else []
    if isinstance(body_version, str):
        versions.append(body_version)
    for text in versions:
        found = _SEMVER.match(text)
        if found is None:
            raise bad_request("InvalidVersion", f"Failed to parse client version string: '{text}'.")
        version = tuple(int(part) for part in found.groups())
        if version < _NPM_UNSUPPORTED_BELOW:
            raise bad_request(
                "ClientVersionUnsupported",
                f"The Convex npm package at version {text} is no longer supported. "
                "Update your Convex npm version with `npx convex update` or `npm update`.",
            )
        if version[0] > _NPM_MAJOR_MAX:
            raise bad_request(
                "ClientVersionUnsupported",
                f"The Convex npm package at version {text} is newer than this server "
                f"supports (npm {_NPM_MAJOR_MAX}.x): use a convex package of version "
                f"{_NPM_MAJOR_MAX}.x to push here.",
            )


def _push_request(body: dict, request: Request) -> PushRequest:
    """A StartPushRequest (npm 1.48's shape) as a ``PushRequest``, components included."""
    app = body.get("appDefinition")
    if not isinstance(app, dict):
        raise bad_request("InvalidConfig", "The push has no appDefinition.")
    version = app.get("udfServerVersion")
    if version is not None and not isinstance(version, str):
        raise bad_request("InvalidConfig", "udfServerVersion must be a string.")
    _check_version(request, version)
    # npm 1.48 always sends a root ``definition`` (a synthesized ``defineApp()`` when the
    # app has no convex.config.ts); components show as dependencies and their definitions.
    definition = app.get("definition")
    dependencies = _paths(app.get("dependencies"), "appDefinition.dependencies")
    raw_components = body.get("componentDefinitions") or []
    if not isinstance(raw_components, list):
        raise bad_request("InvalidConfig", "componentDefinitions must be a list.")
    changed = app.get("changedModules")
    unchanged = app.get("unchangedModuleHashes", [])
    if not isinstance(changed, list) or not isinstance(unchanged, list):
        raise bad_request(
            "InvalidConfig", "changedModules and unchangedModuleHashes must be lists."
        )
    schema = app.get("schema")
    return PushRequest(
        tuple(_module(m) for m in changed),
        tuple(_module_hash(h) for h in unchanged),
        None if schema is None else _module(schema),
        body.get("dryRun") is True,
        version,
        refuse_empty=body.get("headwaterRefuseEmpty") is True,
        node_dependencies=_node_dependencies(body.get("nodeDependencies")),
        app_definition=None if definition is None else _module(definition),
        app_dependencies=dependencies,
        components=tuple(_component(c) for c in raw_components),
    )


def _paths(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise bad_request("InvalidConfig", f"{where} must be a list of definition paths.")
    return tuple(raw)


def _component(raw: object) -> DefinitionUpload:
    """One ``componentDefinitions`` entry (npm 1.48's ComponentDefinitionConfig)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("definitionPath"), str):
        raise bad_request("InvalidConfig", "Each component definition needs a definitionPath.")
    path = raw["definitionPath"]
    functions = raw.get("functions")
    if not isinstance(functions, list):
        raise bad_request("InvalidConfig", f"The functions of component {path} must be a list.")
    schema = raw.get("schema")
    version = raw.get("udfServerVersion")
    return DefinitionUpload(
        path,
        _module(raw.get("definition")),
        _paths(raw.get("dependencies"), f"The dependencies of component {path}"),
        None if schema is None else _module(schema),
        tuple(_module(m) for m in functions),
        version if isinstance(version, str) else None,
    )


def _node_dependencies(raw: object) -> tuple[NodeDependency, ...]:
    try:
        return parse_dependencies(raw)
    except NodePackagesError as exc:
        raise bad_request("InvalidConfig", exc.message) from exc


def _module(raw: object) -> BundledModule:
    if not isinstance(raw, dict):
        raise bad_request("InvalidConfig", "Each module must be an object.")
    path, source = raw.get("path"), raw.get("source")
    source_map, environment = raw.get("sourceMap"), raw.get("environment", "isolate")
    if not isinstance(path, str) or not isinstance(source, str):
        raise bad_request("InvalidConfig", "Each module needs a string path and source.")
    if source_map is not None and not isinstance(source_map, str):
        raise bad_request("InvalidConfig", f"The sourceMap of {path} must be a string.")
    if not isinstance(environment, str):
        raise bad_request("InvalidConfig", f"The environment of {path} must be a string.")
    return BundledModule(path, source, source_map, environment)


def _module_hash(raw: object) -> ModuleHash:
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(k), str) for k in ("path", "environment", "sha256")
    ):
        raise bad_request(
            "InvalidConfig", "Each unchanged module hash needs a path, environment and sha256."
        )
    return ModuleHash(raw["path"], raw["environment"], raw["sha256"])
