"""``fetch()`` from actions: the host's HTTP client behind the runtime's fetch ops.

The runtime (``udf/js/fetch.js``) follows redirects and reads bodies itself; the
host sends one request per ``headwater/fetch`` op and answers once the response
head has arrived (with the body, when it is small and its length known), then
hands out the body in parts (``headwater/fetchBody``),
so a large body never sits whole in a JSON message and an abort stops it
mid-way. Both ops run in the background on the isolate's loop (see
``udf.driver``): an action's other work and timers go on meanwhile.

Bounds: a connect and read timeout per request (``fetch_timeout_ms``), the
response body size (``fetch_response_bytes_max``) and the request body
(the same size), and the action's own time limit over all. Errors read as
Convex's (its HTTP client's words: "error sending request for url (...): ...").
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import weakref
from typing import Any

import httpx

from udf.errors import SyscallError
from udf.v8_context import at_loop_close

_BODY_PART_BYTES = 1 << 20
# One client per event loop (each isolate has its own loop thread): connections are
# pooled, and the TLS setup is paid once.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
USER_AGENT = "Convex/1.0"  # as Convex's fetch client says


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None:
        # Redirects are the runtime's; proxies from the environment are not used
        # (a deployment's outgoing requests go straight to the host they name).
        client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None)
        _CLIENTS[loop] = client
        at_loop_close(client.aclose)
    return client


def _cause_text(exc: BaseException) -> str:
    """The innermost OS error of ``exc``, worded as Rust's std::io::Error prints it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"dns error: failed to lookup address information: {seen.strerror}"
        if isinstance(seen, OSError) and seen.errno is not None:
            text = os.strerror(seen.errno)
            return f"tcp connect error: {text} (os error {seen.errno})"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _failure(url: str, exc: BaseException) -> SyscallError:
    lead = f"error sending request for url ({url})"
    if isinstance(exc, httpx.TimeoutException):
        return SyscallError(f"{lead}: operation timed out")
    if isinstance(exc, httpx.ConnectError):
        return SyscallError(f"{lead}: client error (Connect): {_cause_text(exc)}")
    return SyscallError(f"{lead}: {_cause_text(exc)}")


class FetchOps:
    """The fetch ops of one action call; ``aclose`` ends the responses it left open."""

    def __init__(self, *, timeout_s: float, body_bytes_max: int) -> None:
        self._timeout = httpx.Timeout(timeout_s)
        self._body_bytes_max = body_bytes_max
        self._responses: dict[int, _Body] = {}
        self._next_body = 1

    def handles(self, op: str) -> bool:
        return op in ("headwater/fetch", "headwater/fetchBody")

    def handle(self, op: str, args_json: str) -> Any:
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise SyscallError(f"Syscall {op} received invalid JSON arguments.") from exc
        if op == "headwater/fetch":
            return self._fetch(args)
        body = self._responses.get(args.get("bodyId"))
        if body is None:
            raise SyscallError("The response body is no longer available.")
        if args.get("cancel"):
            return self._close_body(args["bodyId"])
        return self._next_part(args["bodyId"], body)

    async def _fetch(self, args: dict[str, Any]) -> str:
        url = args.get("url")
        if not isinstance(url, str):
            raise SyscallError("fetch needs a URL.")
        content = None
        if args.get("body") is not None:
            content = base64.b64decode(args["body"])
            if len(content) > self._body_bytes_max:
                raise SyscallError(
                    f"Request body too large: fetch sends bodies up to {_mib(self._body_bytes_max)}"
                )
        headers = [(str(k), str(v)) for k, v in args.get("headers", [])]
        if not any(k.lower() == "user-agent" for k, _ in headers):
            headers.append(("user-agent", USER_AGENT))
        client = _client()
        try:
            request = client.build_request(
                str(args.get("method", "GET")),
                url,
                headers=headers,
                content=content,
                timeout=self._timeout,
            )
            response = await client.send(request, stream=True)
        except httpx.InvalidURL as exc:
            raise SyscallError(f"builder error: {exc}") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise _failure(url, exc) from exc
        head: dict[str, Any] = {}
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) <= _BODY_PART_BYTES:
            # A small body comes with the head: one round trip instead of three.
            try:
                content = await response.aread()
            except (httpx.HTTPError, OSError) as exc:
                raise _failure(url, exc) from exc
            finally:
                await response.aclose()
            self._check_size(len(content))
            head["body"] = base64.b64encode(content).decode("ascii")
            body_id = 0
        else:
            body_id = self._next_body
            self._next_body += 1
            self._responses[body_id] = _Body(response, url)
        return json.dumps(
            {
                **head,
                "status": response.status_code,
                "statusText": response.reason_phrase,
                "headers": [
                    [k.decode("latin-1").lower(), v.decode("latin-1")]
                    for k, v in response.headers.raw
                ],
                "url": url,
                "bodyId": body_id,
            }
        )

    async def _next_part(self, body_id: int, body: _Body) -> str:
        try:
            chunk = await body.read()
        except (httpx.HTTPError, OSError) as exc:
            await self._close_body(body_id)
            raise _failure(body.url, exc) from exc
        except BaseException:
            await self._close_body(body_id)
            raise
        if not chunk:
            await self._close_body(body_id)
            return '{"done":true}'
        body.received += len(chunk)
        if body.received > self._body_bytes_max:
            await self._close_body(body_id)
            self._check_size(body.received)
        return json.dumps({"chunk": base64.b64encode(chunk).decode("ascii")})

    def _check_size(self, size_bytes: int) -> None:
        if size_bytes > self._body_bytes_max:
            raise SyscallError(
                f"Response body too large: fetch reads bodies up to {_mib(self._body_bytes_max)}"
            )

    async def _close_body(self, body_id: int) -> str:
        body = self._responses.pop(body_id, None)
        if body is not None:
            await body.response.aclose()
        return "null"

    async def aclose(self) -> None:
        for body_id in list(self._responses):
            await self._close_body(body_id)


class _Body:
    """A response being read, its body decoded (Content-Encoding) as fetch does."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self.response = response
        self.url = url
        self.received = 0
        self._decoded = response.aiter_bytes(_BODY_PART_BYTES)

    async def read(self) -> bytes:
        try:
            return await anext(self._decoded)
        except StopAsyncIteration:
            return b""


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n} bytes"
