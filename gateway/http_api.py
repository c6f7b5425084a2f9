"""The public function API over HTTP (http-api §4): query, mutation, action and friends.

    POST /api/query | /api/mutation | /api/action   {path, args, format?}
    GET  /api/query?path=…&args=<JSON>&format=…
    POST /api/function                               admin only, any kind
                                                     {path, args, format?, componentPath?}
    POST /api/run/<module/path>/<export>             {args, format?} any public kind
    POST /api/query_ts                               -> {"ts": <base64 LE u64>}
    POST /api/query_at_ts                            {path, args, ts, format?}
    POST /api/query_batch                            {queries: [{path, args, format?}, …]}

``args`` is required everywhere it appears (``{}`` for a function without
arguments), as Convex's request types require it.

A function's own result, success or error, is a 200 ``UdfResponse`` (also a
result that is no Convex value: too many items, too deep); a
request we cannot run at all (bad JSON, bad path, bad format, bad
credentials) is a 4xx with ``{"code", "message"}``. Authentication and the
function run happen in one worker thread per request: both block.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.component_tables import component_path_problem
from engine.convex_json import from_convex_json
from engine.errors import InvalidValueError, SnapshotOutOfRangeError
from gateway.context import GatewayContext
from gateway.http_errors import (
    HttpError,
    bad_request,
    error_response,
    function_error_message,
    json_response,
)
from gateway.json_input import JsonInputError, parse_json
from gateway.timestamps import encode_ts
from gateway.value_formats import (
    ClientVersion,
    ValueFormat,
    decode_ts,
    encode_value,
    parse_client_version,
    parse_format,
)
from udf.calls import FunctionCall, FunctionKind, FunctionOutcome, Identity

_MODULE_COMPONENT = re.compile(r"[A-Za-z0-9_.]{1,64}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_REQUEST_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


# --- request parsing (pure) ----------------------------------------------------------


def _bad_path(path: object, why: str) -> HttpError:
    return bad_request("BadConvexFunctionIdentifier", f"Invalid function path {path!r}: {why}")


def parse_function_path(path: object) -> str:
    """Check ``<module path>[:<export>]`` syntax (http-api §4.1); the path as given."""
    if not isinstance(path, str) or not path:
        raise _bad_path(path, 'expected a string like "messages:list"')
    module, colon, export = path.partition(":")
    if colon and not (_IDENTIFIER.fullmatch(export) and export.strip("_")):
        raise _bad_path(path, f"{export!r} is not a valid export name")
    for part in module.split("/"):
        if not _MODULE_COMPONENT.fullmatch(part) or not any(c.isalnum() for c in part):
            raise _bad_path(
                path,
                "each module path component must be 1-64 letters, digits, '_' or '.', "
                "with at least one letter or digit",
            )
    return path


def parse_args(raw: object) -> dict[str, Any]:
    """``args`` as an object or a one-element array of an object (http-api §4.2)."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise bad_request(
                "BadQueryArgs", f"args as an array must hold exactly one object, got {len(raw)}"
            )
        raw = raw[0]
    if not isinstance(raw, dict):
        raise bad_request("BadQueryArgs", "args must be a JSON object of named arguments")
    try:
        return from_convex_json(raw, path="args")
    except InvalidValueError as exc:
        raise bad_request("BadQueryArgs", f"Invalid arguments: {exc.message}") from None


def parse_json_body(raw: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """A request body that must be one JSON object; 400 BadJsonBody otherwise."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("BadJsonBody", "The request body is empty: expected a JSON object.")
    try:
        obj = parse_json(raw)
    except JsonInputError as exc:
        raise bad_request("BadJsonBody", f"Invalid JSON body: {exc.message}") from None
    if not isinstance(obj, dict):
        raise bad_request("BadJsonBody", "The JSON body must be an object.")
    return obj


@dataclass(frozen=True)
class CallSpec:
    """One function call as a request names it, before auth."""

    path: str
    args: dict[str, Any]
    format: ValueFormat | None


def required_args(body: dict[str, Any]) -> dict[str, Any]:
    """The ``args`` of a request body, which every endpoint requires (Convex's request
    types have no default for it), even for a function without arguments: ``{}``."""
    if "args" not in body:
        raise bad_request(
            "BadJsonBody",
            "Failed to deserialize the JSON body into the target type: missing field `args`",
        )
    return parse_args(body["args"])


def parse_call(body: dict[str, Any]) -> CallSpec:
    return CallSpec(
        parse_function_path(body.get("path")),
        required_args(body),
        parse_format(body.get("format")),
    )


def parse_component_path(raw: object) -> str:
    """``componentPath`` of an admin call: absent or "" is the app (Convex's
    ``ComponentPath::deserialize``: a bad name is 400 InvalidComponentPath)."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise bad_request(
            "BadJsonBody",
            "Failed to deserialize the JSON body into the target type: componentPath: "
            f"invalid type: {type(raw).__name__}, expected a string",
        )
    problem = component_path_problem(raw)
    if problem is not None:
        raise bad_request("InvalidComponentPath", problem)
    return raw


def udf_response(outcome: FunctionOutcome, fmt: ValueFormat, request_id: str) -> dict[str, Any]:
    """The ``UdfResponse`` body of http-api §4.4."""
    if outcome.error is None:
        body: dict[str, Any] = {"status": "success", "value": encode_value(outcome.value, fmt)}
    else:
        body = {
            "status": "error",
            "errorMessage": function_error_message(request_id, outcome.error.message),
        }
        if outcome.error.is_convex_error:
            body["errorData"] = encode_value(outcome.error.data, fmt)
    if outcome.log_lines:
        body["logLines"] = list(outcome.log_lines)
    return body


# --- the endpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class _Caller:
    request_id: str
    client: ClientVersion
    authorization: str | None

    @classmethod
    def of(cls, request: Request) -> _Caller:
        given = request.headers.get("convex-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        authorization = request.headers.get("authorization")
        if authorization is None and "adminKey" in request.query_params:
            authorization = f"Convex {request.query_params['adminKey']}"
        client = parse_client_version(request.headers.get("convex-client"))
        return cls(request_id, client, authorization)


Handler = Callable[[Request], Awaitable[Response]]


def _answers_errors(handler: Handler) -> Handler:
    """Every failure leaves as ``{"code","message"}`` with its status."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # mapped (and unexpected ones logged) by to_http_error
            return error_response(exc)

    wrapped.__name__ = handler.__name__
    return wrapped


class FunctionApi:
    """The endpoints of the module docstring over one GatewayContext."""

    def __init__(self, context: GatewayContext) -> None:
        self.context = context

    def routes(self) -> list[BaseRoute]:
        e = _answers_errors
        return [
            Route("/api/query", e(self.query_get), methods=["GET"]),
            Route("/api/query", e(self.query), methods=["POST"]),
            Route("/api/mutation", e(self.mutation), methods=["POST"]),
            Route("/api/action", e(self.action), methods=["POST"]),
            Route("/api/function", e(self.any_function), methods=["POST"]),
            Route("/api/run/{function_path:path}", e(self.run_by_path), methods=["POST"]),
            Route("/api/query_ts", e(self.query_ts), methods=["GET", "POST"]),
            Route("/api/query_at_ts", e(self.query_at_ts), methods=["POST"]),
            Route("/api/query_batch", e(self.query_batch), methods=["POST"]),
        ]

    # -- one function per request ---------------------------------------------------

    async def query(self, request: Request) -> Response:
        return await self._one(request, "query")

    async def mutation(self, request: Request) -> Response:
        return await self._one(request, "mutation")

    async def action(self, request: Request) -> Response:
        return await self._one(request, "action")

    async def query_get(self, request: Request) -> Response:
        caller = _Caller.of(request)
        params = request.query_params
        if "args" not in params:
            raise bad_request(
                "BadQueryArgs", "Failed to deserialize query string: missing field `args`"
            )
        try:
            raw_args = parse_json(params["args"])
        except JsonInputError as exc:
            raise bad_request(
                "BadQueryArgs", f"The args parameter is not valid JSON: {exc.message}"
            ) from None
        spec = CallSpec(
            parse_function_path(params.get("path")),
            parse_args(raw_args),
            parse_format(params.get("format")),
        )
        return await self._call(caller, spec, "query")

    async def any_function(self, request: Request) -> Response:
        caller = _Caller.of(request)
        body = parse_json_body(await request.body())
        spec = parse_call(body)
        component = parse_component_path(body.get("componentPath"))
        return await self._call(caller, spec, None, admin_only=True, component_path=component)

    async def run_by_path(self, request: Request) -> Response:
        caller = _Caller.of(request)
        raw = request.scope.get("raw_path") or request.url.path.encode()
        tail = raw.decode("latin-1").split("/api/run/", 1)[-1]
        parts = [urllib.parse.unquote(p) for p in tail.split("/")]
        if len(parts) < 2 or not all(parts):
            raise bad_request(
                "MissingIdentifier",
                "Path or function name not provided in path, e.g. /api/run/messages/list",
            )
        path = parse_function_path(f"{'/'.join(parts[:-1])}:{parts[-1]}")
        body = parse_json_body(await request.body())
        fmt = parse_format(body.get("format")) or ValueFormat.CLEAN_JSON
        return await self._call(caller, CallSpec(path, required_args(body), fmt), None)

    async def query_at_ts(self, request: Request) -> Response:
        caller = _Caller.of(request)
        body = parse_json_body(await request.body())
        if "ts" not in body:
            raise bad_request("InvalidTimestamp", "query_at_ts needs a ts (from /api/query_ts).")
        return await self._call(caller, parse_call(body), "query", ts=decode_ts(body["ts"]))

    async def _one(self, request: Request, kind: FunctionKind) -> Response:
        caller = _Caller.of(request)
        spec = parse_call(parse_json_body(await request.body()))
        return await self._call(caller, spec, kind)

    async def _call(
        self,
        caller: _Caller,
        spec: CallSpec,
        kind: FunctionKind | None,
        *,
        admin_only: bool = False,
        ts: int | None = None,
        component_path: str = "",
    ) -> Response:
        def work() -> FunctionOutcome:
            identity = self._identity(caller, admin_only=admin_only)
            if ts is not None:
                self._check_readable(ts)
            call = self._function_call(caller, spec, kind, identity, ts, component_path)
            return self.context.executor.run(call)

        outcome = self._cached(caller, spec, kind, ts, admin_only, component_path)
        if outcome is None:
            outcome = await anyio.to_thread.run_sync(work)
        fmt = spec.format or caller.client.default_format()
        return json_response(udf_response(outcome, fmt, caller.request_id))

    # -- timestamps and batches -------------------------------------------------------

    async def query_ts(self, request: Request) -> Response:
        _Caller.of(request)  # a malformed Convex-Client is refused here too
        ts = await anyio.to_thread.run_sync(self.context.executor.latest_ts)
        return json_response({"ts": encode_ts(ts)})

    async def query_batch(self, request: Request) -> Response:
        caller = _Caller.of(request)
        body = parse_json_body(await request.body())
        queries = body.get("queries")
        if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
            raise bad_request("BadJsonBody", "queries must be an array of {path, args} objects.")
        specs = [parse_call(q) for q in queries]

        def work() -> list[FunctionOutcome]:
            identity = self._identity(caller, admin_only=False)
            ts = self.context.executor.latest_ts()  # every query reads the same snapshot
            executor = self.context.executor
            return [
                executor.run(self._function_call(caller, s, "query", identity, ts)) for s in specs
            ]

        outcomes = await anyio.to_thread.run_sync(work)
        default = caller.client.default_format()
        results = [
            udf_response(o, s.format or default, caller.request_id)
            for o, s in zip(outcomes, specs, strict=True)
        ]
        return json_response({"results": results})

    # -- on the event loop -------------------------------------------------------------

    def _cached(
        self,
        caller: _Caller,
        spec: CallSpec,
        kind: FunctionKind | None,
        ts: int | None,
        admin_only: bool,
        component_path: str,
    ) -> FunctionOutcome | None:
        """A query the cache answers, here on the event loop (no worker thread, no V8).
        Only callers whose identity needs no token check: a JWT's may fetch its keys."""
        header = caller.authorization
        if kind != "query" or ts is not None or admin_only:
            return None
        if header is not None and header[:7].lower() != "convex ":
            return None
        identity = self._identity(caller, admin_only=False)
        call = self._function_call(caller, spec, kind, identity, None, component_path)
        return self.context.executor.cached_query(call)

    # -- shared: run in the worker thread (and for a cache lookup, on the event loop) ---

    def _identity(self, caller: _Caller, *, admin_only: bool) -> Identity:
        identity = self.context.authenticator.from_authorization_header(caller.authorization)
        if admin_only and not identity.admin:
            raise HttpError(
                403,
                "BadDeployKey",
                f"The provided deploy key was invalid for deployment "
                f"'{self.context.settings.instance_name}'. This endpoint needs "
                "`Authorization: Convex <admin key>`.",
            )
        return identity

    def _check_readable(self, ts: int) -> None:
        latest = self.context.executor.latest_ts()
        if ts > latest:
            raise SnapshotOutOfRangeError(
                f"Timestamp {ts} is newer than the newest commit ({latest}): "
                "take ts from /api/query_ts."
            )

    @staticmethod
    def _function_call(
        caller: _Caller,
        spec: CallSpec,
        kind: FunctionKind | None,
        identity: Identity,
        ts: int | None,
        component_path: str = "",
    ) -> FunctionCall:
        return FunctionCall(
            path=spec.path,
            args=spec.args,
            kind=kind,
            identity=identity,
            ts=ts,
            request_id=caller.request_id,
            component_path=component_path,
        )


def http_api_routes(context: GatewayContext) -> list[BaseRoute]:
    return FunctionApi(context).routes()
