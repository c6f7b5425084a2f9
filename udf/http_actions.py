"""HTTP actions: one request through the deployment's ``http.js`` router, in an action isolate.

The gateway hands over the request's head and its side of the connection (an
``HttpExchange``); ``run_http_action`` runs the router (``udf/js/http.js``)
and both bodies stream through the exchange, which is called on the isolate's
thread: the request body as the handler reads it, the response body as the
handler's stream yields it. ``ctx.runQuery/runMutation/runAction`` and the
other action syscalls are the ``CallHandler``'s, with the request's identity.

What Convex answers without user code (crates/application/src/
application_function_runner/http_routing.rs, crates/isolate/src/environment/
action/mod.rs, crates/application/src/redaction.rs, crates/udf/src/http_action.rs):

- no ``http.js``: 404 ``text/plain; charset=utf-8`` "This Convex deployment
  does not have HTTP actions enabled.";
- no route for the path and method (``HEAD`` routes as ``GET``): 404, same
  type, "No matching routes found";
- the handler throws before its response is out: 500 ``application/json``
  ``{"code": "[Request ID: <id>] Server Error: <message>", "trace": "<message
  and stack>"}`` plus ``"data"`` for a ConvexError; after the head is out, the
  body just ends and the error goes to the log;
- a response body past 20 MiB (``HTTP_ACTION_BODY_LIMIT``) is cut there, with
  "HttpResponseTooLarge: HTTP actions support responses up to 20 MiB" logged.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.convex_json import from_convex_json
from udf.call_handler import CallContext, CallHandler
from udf.calls import FunctionError, Identity
from udf.errors import SyscallError

if TYPE_CHECKING:
    from udf.executor import Executor

HTTP_MODULE = "http.js"
NOT_ENABLED = "This Convex deployment does not have HTTP actions enabled."
NO_ROUTE = "No matching routes found"
TEXT_PLAIN = "text/plain; charset=utf-8"
_OPS = ("hw/http/read", "hw/http/head", "hw/http/write")
_GONE = '{"closed":true,"gone":true}'  # stop writing: the client left (request.signal aborts)


class HttpBodyError(Exception):
    """The request body cannot be read on (too large, the client left): the
    handler's read rejects with this message."""


@dataclass(frozen=True)
class HttpActionRequest:
    method: str  # as received; the router routes HEAD as GET
    path: str  # the routed path: the URL's path (under /http/, without that prefix)
    url: str  # what ``request.url`` says in the handler
    headers: tuple[tuple[str, str], ...]
    has_body: bool  # GET, HEAD and OPTIONS requests have none (as in Convex)
    request_id: str


class HttpExchange(Protocol):
    """The gateway's side of one request, called from the isolate's thread (blocking)."""

    def read_body(self) -> bytes | None:
        """The next request body chunk; None at its end. Raises HttpBodyError."""
        ...

    def start_response(
        self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> bool:
        """Send the head, and the body's first chunk with it; False once the client is
        gone. ``end``: that chunk is the whole body (it may go once the call is over)."""
        ...

    def write_body(self, chunk: bytes) -> bool:
        """Send a chunk of the response body; False once the client is gone."""
        ...


@dataclass(frozen=True)
class HttpActionResult:
    """How one HTTP action ended, for the function log."""

    identifier: str  # "GET /hello", "POST /files/*" (the route), or the method and path
    status: int | None  # the response status sent (None: the client left first)
    error: FunctionError | None
    log_lines: tuple[str, ...]


def run_http_action(
    executor: Executor, request: HttpActionRequest, identity: Identity, exchange: HttpExchange
) -> HttpActionResult:
    """Answer ``request`` from the deployment's router, recorded in the function log."""
    started_s, started = time.time(), time.perf_counter()
    result = _run(executor, request, identity, exchange)
    log = executor.function_log
    if log is not None:
        log.record_http_action(
            result.identifier,
            result.log_lines,
            result.error,
            request_id=request.request_id,
            started_s=started_s,
            execution_time_s=time.perf_counter() - started,
        )
    return result


def _run(
    executor: Executor, request: HttpActionRequest, identity: Identity, exchange: HttpExchange
) -> HttpActionResult:
    fallback = f"{request.method} {request.path}"
    deployment = executor.deployment
    if deployment is None or deployment.module(HTTP_MODULE) is None:
        status = _answer_text(exchange, 404, NOT_ENABLED)
        return HttpActionResult(fallback, status, None, ())
    context = CallContext("action", "http", identity, request.request_id, 0)
    limits = executor.limits
    handler = HttpSyscalls(CallHandler(executor, context), exchange, limits.http_body_bytes_max)
    config = {
        "path": request.path,
        "method": request.method,
        "request": {
            "url": request.url,
            "method": request.method,
            "headerPairs": [list(pair) for pair in request.headers],
            "hasBody": request.has_body,
        },
    }
    with executor.action_isolate() as isolate:
        raw = isolate.run_http(
            config,
            handler,
            seed=int.from_bytes(os.urandom(8), "little"),
            time_limit_s=limits.action_time_max_ms / 1000,
            env=executor.environment_snapshot(),
            table_numbers=executor.db.table_numbers(),
            request_id=request.request_id,
            log_lines_max=limits.log_lines_max,
            log_line_bytes_max=limits.log_line_bytes_max,
        )
    lines = (*raw.log_lines, *handler.log_lines)
    identifier = handler.route or fallback
    if raw.error is not None:
        data = None
        if raw.error.data_json is not None:
            data = from_convex_json(json.loads(raw.error.data_json))
        error = FunctionError(raw.error.text, data, raw.error.is_convex_error)
        if not handler.head_sent:
            body = server_error_body(request.request_id, raw.error.message, raw.error.text)
            if raw.error.data_json is not None:
                body["data"] = json.loads(raw.error.data_json)
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            status = _answer(exchange, 500, "application/json", text.encode())
            return HttpActionResult(identifier, status, error, lines)
        return HttpActionResult(identifier, handler.status, error, lines)
    found = json.loads(raw.result_json or "{}")
    if found.get("notFound"):
        return HttpActionResult(fallback, _answer_text(exchange, 404, NO_ROUTE), None, lines)
    return HttpActionResult(identifier, handler.status, None, lines)


def server_error_body(request_id: str, message: str, trace: str) -> dict[str, Any]:
    """The 500 body of a failed HTTP action (Convex's ``to_http_response_parts``)."""
    return {"code": f"[Request ID: {request_id}] Server Error: {message}", "trace": trace}


def _answer_text(exchange: HttpExchange, status: int, text: str) -> int:
    return _answer(exchange, status, TEXT_PLAIN, text.encode())


def _answer(exchange: HttpExchange, status: int, content_type: str, body: bytes) -> int:
    exchange.start_response(status, [("content-type", content_type)], body, end=True)
    return status


class HttpSyscalls:
    """The ``hw/http/*`` ops of an HTTP action; every other op goes to ``inner``."""

    def __init__(self, inner: CallHandler, exchange: HttpExchange, body_bytes_max: int) -> None:
        self._inner = inner
        self._exchange = exchange
        self._body_bytes_max = body_bytes_max
        self.head_sent = False
        self.status: int | None = None
        self.route: str | None = None
        self.sent_bytes = 0
        self.client_gone = False
        self.log_lines: list[str] = []

    def handle(self, op: str, args_json: str) -> str:
        if op not in _OPS:
            return self._inner.handle(op, args_json)
        args = json.loads(args_json)
        if op == "hw/http/read":
            return self._read()
        if op == "hw/http/head":
            return self._head(args)
        return self._write(base64.b64decode(args["data"]))

    def _read(self) -> str:
        try:
            chunk = self._exchange.read_body()
        except HttpBodyError as exc:
            raise SyscallError(str(exc)) from exc
        if chunk is None:
            return '{"done":true}'
        return json.dumps({"data": base64.b64encode(chunk).decode("ascii")})

    def _head(self, args: dict[str, Any]) -> str:
        if self.head_sent:
            raise SyscallError("Sending HTTP response head after other response parts")
        status = args.get("status")
        if not isinstance(status, int) or not 200 <= status <= 599:
            raise SyscallError(f"Invalid response status {status!r}: it must be in 200-599.")
        headers = [(str(k), str(v)) for k, v in args.get("headerPairs") or ()]
        self.route = args.get("route") if isinstance(args.get("route"), str) else None
        self.head_sent = True
        self.status = status
        first = base64.b64decode(args["data"]) if isinstance(args.get("data"), str) else b""
        if len(first) > self._body_bytes_max:
            return self._write(first)  # cut and logged there, after an empty head
        self.sent_bytes = len(first)
        end = args.get("end") is True
        if not self._exchange.start_response(status, headers, first, end=end):
            self.client_gone = True
            return _GONE
        return "{}"

    def _write(self, chunk: bytes) -> str:
        if self.client_gone:
            return _GONE
        if self.sent_bytes + len(chunk) > self._body_bytes_max:
            if self.sent_bytes <= self._body_bytes_max:
                self.log_lines.append(
                    "[ERROR] HttpResponseTooLarge: HTTP actions support responses up to "
                    f"{_mib(self._body_bytes_max)}"
                )
                self.sent_bytes = self._body_bytes_max + 1
            return '{"closed":true}'
        self.sent_bytes += len(chunk)
        if not self._exchange.write_body(chunk):
            self.client_gone = True
            return _GONE
        return "{}"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"
