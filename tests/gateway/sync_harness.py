"""The sync endpoint's test harness: a real server on loopback and a checking client.

``Server`` runs the sync routes over the Python stand-in executor and a fake
authenticator; ``Client`` is a plain WebSocket client that checks every
Transition starts where the previous one ended, so every test also checks
version chaining. ``raw_websocket`` and ``frame`` speak the protocol by hand,
for clients that misbehave at the socket level.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
from pathlib import Path

from python_executor import PyFunction, PythonExecutor, chat_functions
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine import Database
from gateway.context import AuthenticationError, GatewayContext, GatewaySettings
from gateway.server import run_server_in_thread
from gateway.sync_endpoint import SyncHub, sync_routes
from gateway.sync_messages import ZERO_TS_TEXT, decode_ts
from udf.calls import ADMIN, ANONYMOUS, Identity

SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"
OTHER_SESSION = "0b6f3f2e-5c1a-4d8e-9f00-123456789abc"


class FakeAuthenticator:
    """``good:<subject>`` is a valid user token, ``admin`` the admin key; anything else
    is refused."""

    def from_sync_authenticate(self, token_type, value, impersonating):
        if token_type == "None":
            return ANONYMOUS
        if token_type == "Admin" and value == "admin":
            return ADMIN
        if token_type == "User" and value.startswith("good:"):
            subject = value.removeprefix("good:")
            user = {"tokenIdentifier": f"https://issuer|{subject}", "subject": subject}
            return Identity(user=user, token=value)
        raise AuthenticationError("Could not verify OIDC token claim.", code="Unauthenticated")

    def from_authorization_header(self, header):
        raise AuthenticationError("not used here")

    def is_admin_key(self, key):
        return False


def endpoint_functions() -> dict[str, PyFunction]:
    functions = chat_functions()

    def slow_send(tx, args, identity):
        time.sleep(args["s"])
        return tx.insert("messages", {"channel": "slow", "body": "slow"})

    def blob(executor, args, identity):
        return "x" * int(args["n"])

    functions["slow:send"] = PyFunction("mutation", slow_send)
    functions["blob:make"] = PyFunction("action", blob)
    return functions


class Server:
    """A real server on a loopback port: app with /health and the sync routes."""

    def __init__(self, path: Path, **settings) -> None:
        self.db = Database.open(path)
        self.executor = PythonExecutor(self.db, endpoint_functions())
        context = GatewayContext(self.executor, FakeAuthenticator(), GatewaySettings(**settings))
        self.hub = SyncHub(context)

        async def health(request):
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/health", health), *sync_routes(context, self.hub)])
        self.url, self._stop = run_server_in_thread(app, host="127.0.0.1", port=0)
        self.ws_url = self.url.replace("http://", "ws://")

    def stop(self) -> None:
        self.hub.close_all_from_thread()
        self._stop()
        self.db.close()


class Client:
    """A test client that checks every Transition chains onto the previous one."""

    def __init__(self, stack, server, path="/api/1.48.0/sync", headers=None) -> None:
        self.ws = stack.enter_context(
            connect(
                server.ws_url + path,
                additional_headers=headers,
                proxy=None,
                compression=None,
                max_size=None,
                open_timeout=5,
                ping_interval=None,
            )
        )
        self.version = {"querySet": 0, "identity": 0, "ts": ZERO_TS_TEXT}
        self.results: dict[int, object] = {}
        self.query_set = 0
        self.next_query_id = 0
        self.received: list[dict] = []

    def send(self, message) -> None:
        self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def connect(self, session_id=SESSION, **fields) -> Client:
        self.send({"type": "Connect", "sessionId": session_id, "connectionCount": 0, **fields})
        return self

    def subscribe(self, udf_path="messages:list", args=None) -> int:
        query_id = self.next_query_id
        self.next_query_id += 1
        add = {"type": "Add", "queryId": query_id, "udfPath": udf_path, "args": [args or {}]}
        self.modify([add])
        return query_id

    def unsubscribe(self, query_id) -> None:
        self.modify([{"type": "Remove", "queryId": query_id}])

    def modify(self, modifications) -> None:
        base = self.query_set
        self.query_set += 1
        self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": base,
                "newVersion": base + 1,
                "modifications": modifications,
            }
        )

    def recv(self, timeout=5.0, pings=False) -> dict:
        chunks: list[dict] = []
        while True:
            message = json.loads(self.ws.recv(timeout))
            if message["type"] == "Ping" and not pings:
                continue
            if message["type"] == "TransitionChunk":
                chunks.append(message)
                if len(chunks) < message["totalParts"]:
                    continue
                message = json.loads("".join(c["chunk"] for c in chunks))
            assert not chunks or message["type"] == "Transition", "chunks were interleaved"
            self.received.append(message)
            if message["type"] == "Transition":
                assert message["startVersion"] == self.version, "Invalid start version"
                self.version = message["endVersion"]
                for mod in message["modifications"]:
                    if mod["type"] == "QueryRemoved":
                        self.results.pop(mod["queryId"], None)
                    else:
                        self.results[mod["queryId"]] = mod
            return message

    def expect(self, kind: str, timeout=5.0) -> dict:
        message = self.recv(timeout)
        assert message["type"] == kind, message
        return message

    def until(self, predicate, timeout=5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(message):
                return message

    def value(self, query_id):
        return self.results[query_id].get("value")

    def bodies(self, query_id):
        return [m["body"] for m in self.value(query_id)]

    def closed(self, timeout=5.0) -> tuple[int | None, str | None, list[dict]]:
        """Read to the end; the server's close code and reason, and what came before."""
        before = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                before.append(json.loads(self.ws.recv(timeout)))
        return self.ws.close_code, self.ws.close_reason, before


def ts_of(text) -> int:
    return decode_ts(text)


def wait_for(condition, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def raw_websocket(server) -> socket.socket:
    """A WebSocket that never reads: a tiny receive buffer and a hand-made handshake."""
    host, port = server.url.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /api/sync HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return raw


def frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
