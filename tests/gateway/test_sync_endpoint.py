"""The sync endpoint over a real hypercorn server, spoken to with a plain WebSocket client.

Every Transition a test client receives is checked to start where the previous
one ended, so every test also checks version chaining.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import anyio
import pytest
import trio
from schemas import CHAT_SCHEMA
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from engine import Database
from engine.errors import LimitExceededError
from gateway.context import AuthenticationError, GatewayContext, GatewaySettings
from gateway.live_queries import LiveQueryRegistry
from gateway.server import run_server_in_thread
from gateway.sync_endpoint import SyncHub, sync_routes
from gateway.sync_messages import ZERO_TS_TEXT, decode_ts, encode_ts
from udf.calls import ANONYMOUS, Identity

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PyFunction, PythonExecutor, chat_functions  # noqa: E402

SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"
OTHER_SESSION = "0b6f3f2e-5c1a-4d8e-9f00-123456789abc"


class FakeAuthenticator:
    """``good:<subject>`` is a valid user token; anything else is refused."""

    def from_sync_authenticate(self, token_type, value, impersonating):
        if token_type == "None":
            return ANONYMOUS
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


@pytest.fixture
def start(tmp_path):
    servers: list[Server] = []

    def start_server(**settings) -> Server:
        server = Server(tmp_path / f"data{len(servers)}", **settings)
        server.db.set_schema(CHAT_SCHEMA)
        servers.append(server)
        return server

    yield start_server
    for server in servers:
        server.stop()


@pytest.fixture
def server(start):
    return start()


@pytest.fixture
def clients():
    with contextlib.ExitStack() as stack:
        yield stack


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


# --- the protocol ------------------------------------------------------------------


def test_worked_session_from_the_spec(server, clients):
    c = Client(clients, server).connect(clientTs=time.time() * 1000)
    c.send({"type": "Event", "eventType": "ClientConnect", "event": {"marks": []}})  # ignored
    c.modify([])
    first = c.expect("Transition")
    assert first["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
    assert first["endVersion"]["querySet"] == 1 and first["modifications"] == []
    assert isinstance(first["clientClockSkew"], int) and first["serverTs"] > 0
    q = c.subscribe()
    t = c.expect("Transition")
    assert t["modifications"] == [
        {
            "type": "QueryUpdated",
            "queryId": q,
            "value": [],
            "logLines": ["[LOG] 'query messages:list'"],
            "journal": None,
        }
    ]
    c.send(
        {"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{"body": "hi"}]}
    )
    response = c.expect("MutationResponse")
    assert response["success"] is True and response["requestId"] == 0
    commit_ts = ts_of(response["ts"])
    c.until(lambda m: m["type"] == "Transition" and ts_of(m["endVersion"]["ts"]) >= commit_ts)
    assert c.bodies(q) == ["hi"]


def test_a_response_always_precedes_the_transition_that_covers_it(server, clients):
    c = Client(clients, server).connect()
    q = c.subscribe()
    c.expect("Transition")
    for n in range(15):
        body = {"body": f"m{n}"}
        c.send({"type": "Mutation", "requestId": n, "udfPath": "messages:send", "args": [body]})
    answered: list[int] = []
    while len(answered) < 15 or ts_of(c.version["ts"]) < answered[-1]:
        message = c.recv()
        if message["type"] == "MutationResponse":
            assert message["requestId"] == len(answered)  # serial, in order
            answered.append(ts_of(message["ts"]))
    assert answered == sorted(answered)
    seen: set[int] = set()
    for message in c.received:
        if message["type"] == "MutationResponse":
            seen.add(ts_of(message["ts"]))
        elif message["type"] == "Transition":
            covered = ts_of(message["endVersion"]["ts"])
            assert {t for t in answered if t <= covered} <= seen
    assert c.bodies(q) == [f"m{n}" for n in range(15)]


def test_another_socket_sees_a_mutation(server, clients):
    watcher = Client(clients, server).connect()
    q = watcher.subscribe("messages:list", {"channel": "general"})
    watcher.expect("Transition")
    writer = Client(clients, server).connect(OTHER_SESSION)
    writer.send(
        {"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{"body": "yo"}]}
    )
    writer.expect("MutationResponse")
    watcher.until(lambda m: m["type"] == "Transition" and m["modifications"])
    assert watcher.bodies(q) == ["yo"]


def test_identical_subscriptions_share_one_execution(server, clients):
    watchers = [Client(clients, server).connect(f"{SESSION[:-2]}{n:02d}") for n in range(20)]
    for w in watchers:
        w.subscribe()
    for w in watchers:
        w.expect("Transition")
    stats = server.hub.statistics()
    assert stats["live_queries"] == 1 and stats["subscriptions"] == 20
    before = stats["executions"]
    writer = Client(clients, server).connect(OTHER_SESSION)
    writer.send(
        {"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{"body": "x"}]}
    )
    writer.expect("MutationResponse")
    for w in watchers:
        w.until(lambda m: m["type"] == "Transition" and m["modifications"])
        assert w.bodies(0) == ["x"]
    assert server.hub.statistics()["executions"] - before == 1


def test_a_replayed_mutation_returns_the_first_outcome(server, clients):
    mutation = {
        "type": "Mutation",
        "requestId": 7,
        "udfPath": "messages:send",
        "args": [{"body": "once"}],
    }
    first = Client(clients, server).connect()
    first.send(mutation)
    original = first.expect("MutationResponse")
    first.ws.close()
    again = Client(clients, server).connect(maxObservedTimestamp=original["ts"])
    again.modify([])
    again.send(mutation)
    replayed = again.until(lambda m: m["type"] == "MutationResponse")
    assert replayed["result"] == original["result"] and replayed["ts"] == original["ts"]
    docs = server.db.query(lambda tx: tx.query("messages").collect()).value
    assert [d["body"] for d in docs] == ["once"]
    again.until(
        lambda m: (
            m["type"] == "Transition" and ts_of(m["endVersion"]["ts"]) >= ts_of(original["ts"])
        )
    )


def test_failed_mutations_and_actions(server, clients):
    c = Client(clients, server).connect()
    c.send({"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{}]})
    failed = c.expect("MutationResponse")
    assert failed["success"] is False and failed["ts"] is None
    assert (
        failed["result"].startswith("[Request ID: ")
        and "Server Error\nUncaught" in failed["result"]
    )
    assert failed["errorData"] == {"code": "EMPTY"}
    c.expect("Transition")  # a Transition follows every mutation
    c.send({"type": "Action", "requestId": 1, "udfPath": "actions:shout", "args": [{"text": "a"}]})
    action = c.expect("ActionResponse")
    assert action == {
        "type": "ActionResponse",
        "requestId": 1,
        "success": True,
        "result": "A",
        "logLines": ["[LOG] 'action actions:shout'"],
    }
    c.send({"type": "Mutation", "requestId": 2, "udfPath": "nope:nothing", "args": [{}]})
    assert (
        "Could not find public function"
        in c.until(lambda m: m["type"] == "MutationResponse")["result"]
    )
    c.send({"type": "Mutation", "requestId": 3, "udfPath": "messages:send", "args": [1, 2]})
    bad_args = c.until(lambda m: m["type"] == "MutationResponse")
    assert (
        bad_args["success"] is False
        and "expected an array holding one object" in bad_args["result"]
    )


def test_authenticate_confirms_identity_and_reruns_queries(server, clients):
    c = Client(clients, server).connect()
    q = c.subscribe("auth:whoami")
    assert c.expect("Transition")["modifications"][0]["value"] is None
    c.send({"type": "Authenticate", "tokenType": "User", "value": "good:alice", "baseVersion": 0})
    t = c.expect("Transition")
    assert t["endVersion"]["identity"] == 1 and t["startVersion"]["identity"] == 0
    assert c.value(q) == "alice"
    c.send({"type": "Authenticate", "tokenType": "None", "baseVersion": 1})
    c.expect("Transition")
    assert c.value(q) is None and c.version["identity"] == 2


def test_a_rejected_token_gets_auth_error_then_close(server, clients):
    c = Client(clients, server).connect()
    c.send({"type": "Authenticate", "tokenType": "User", "value": "forged", "baseVersion": 0})
    code, reason, before = c.closed()
    assert before == [
        {
            "type": "AuthError",
            "error": "Could not verify OIDC token claim.",
            "baseVersion": 0,
            "authUpdateAttempted": True,
        }
    ]
    assert code == 1000


@pytest.mark.parametrize(
    "messages, close_code, fatal_words",
    [
        (["garbage"], 1000, "Invalid JSON"),
        (['{"type":"Subscribe"}'], 1000, "Unknown message type"),
        (['{"type":"Connect","sessionId":"nope"}'], 1000, "UUID"),
        (
            ['{"type":"ModifyQuerySet","baseVersion":3,"newVersion":4,"modifications":[]}'],
            1000,
            "Base version 3 passed up doesn't match the current version 0",
        ),
        (
            [
                '{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":'
                '[{"type":"Remove","queryId":4}]}'
            ],
            1011,
            None,
        ),
        (['{"type":"Authenticate","tokenType":"None","baseVersion":5}'], 1011, None),
        ([b"\x00binary"], 1011, None),
        (
            [
                f'{{"type":"Connect","sessionId":"{SESSION}","maxObservedTimestamp":"{encode_ts(2**62)}"}}'
            ],
            1011,
            None,
        ),
    ],
)
def test_bad_input_ends_only_that_socket(server, clients, messages, close_code, fatal_words):
    bystander = Client(clients, server).connect(OTHER_SESSION)
    q = bystander.subscribe()
    bystander.expect("Transition")
    bad = Client(clients, server)
    for message in messages:
        bad.send(message)
    code, reason, before = bad.closed()
    assert code == close_code
    if fatal_words is None:
        assert before == [] and reason == "InternalServerError"
    else:
        assert len(before) == 1 and before[0]["type"] == "FatalError"
        assert fatal_words in before[0]["error"]
    bystander.send(
        {"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{"body": "ok"}]}
    )
    bystander.until(lambda m: m["type"] == "Transition" and m["modifications"])
    assert bystander.bodies(q) == ["ok"]


def test_an_oversized_message_is_refused(start, clients):
    server = start(message_bytes_max=1000)
    c = Client(clients, server).connect()
    c.send(
        {
            "type": "Mutation",
            "requestId": 0,
            "udfPath": "messages:send",
            "args": [{"body": "x" * 2000}],
        }
    )
    code, _, before = c.closed()
    assert code == 1009
    assert "larger than the limit of 1000 bytes" in before[0]["error"]


def test_a_malformed_client_version_is_a_400(server):
    with pytest.raises(InvalidStatus) as caught:
        with connect(server.ws_url + "/api/not-a-version/sync", proxy=None, open_timeout=5):
            pass
    assert caught.value.response.status_code == 400


def test_ping_after_silence(start, clients):
    server = start(ping_interval_s=0.2)
    c = Client(clients, server).connect()
    assert c.recv(timeout=2, pings=True) == {"type": "Ping"}


def test_query_removal_and_live_query_release(server, clients):
    c = Client(clients, server).connect()
    q = c.subscribe()
    c.expect("Transition")
    assert server.hub.statistics()["live_queries"] == 1
    c.unsubscribe(q)
    t = c.expect("Transition")
    assert t["modifications"] == [{"type": "QueryRemoved", "queryId": q}]
    assert server.hub.statistics()["live_queries"] == 0


# --- limits -------------------------------------------------------------------------


def test_connection_limit(start, clients):
    server = start(connections_max=1)
    Client(clients, server).connect().modify([])
    code, reason, _ = Client(clients, server).closed()
    assert (code, reason) == (1013, "TooManyConnections")


def test_subscription_limit_across_the_server(start, clients):
    server = start(subscriptions_max=1)
    first = Client(clients, server).connect()
    first.subscribe()
    first.expect("Transition")
    second = Client(clients, server).connect(OTHER_SESSION)
    second.subscribe()
    failed = second.expect("Transition")["modifications"][0]
    assert failed["type"] == "QueryFailed" and "TooManySubscriptions" in failed["errorMessage"]


def test_too_many_queued_mutations_close_with_1013(start, clients):
    server = start(mutations_in_flight_max=2)
    c = Client(clients, server).connect()
    for n in range(5):
        c.send({"type": "Mutation", "requestId": n, "udfPath": "slow:send", "args": [{"s": 0.3}]})
    code, reason, _ = c.closed()
    assert (code, reason) == (1013, "TooManyConcurrentMutations")


def test_a_client_that_does_not_read_is_dropped(start):
    server = start(send_buffer_messages_max=4)
    raw = _raw_websocket(server)
    try:
        subscribe = {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [
                {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{}]}
            ],
        }
        for message in ({"type": "Connect", "sessionId": SESSION}, subscribe):
            raw.sendall(_frame(json.dumps(message)))
        _wait_for(lambda: server.hub.statistics()["live_queries"] == 1)
        for n in range(60):
            big = {"n": 400_000}
            action = {"type": "Action", "requestId": n, "udfPath": "blob:make", "args": [big]}
            raw.sendall(_frame(json.dumps(action)))
        _wait_for(lambda: server.hub.statistics()["connections"] == 0)
        assert server.hub.statistics()["live_queries"] == 0  # released at once
    finally:
        raw.close()


def _wait_for(condition, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _raw_websocket(server) -> socket.socket:
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


def _frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# --- transports -----------------------------------------------------------------------


def test_large_transitions_are_chunked_only_for_npm_clients(server, clients):
    server.hub.transition_chunk_bytes_max = 300
    for n in range(5):
        server.db.mutate(
            lambda tx, n=n: tx.insert("messages", {"channel": "c", "body": f"{n}" * 40})
        )
    npm = Client(clients, server).connect()
    npm.subscribe()
    npm.expect("Transition")  # reassembled by Client.recv, chunks checked there
    assert len(npm.bodies(0)) == 5
    rust = Client(clients, server, path="/api/sync", headers={"Convex-Client": "rust-0.9.0"})
    rust.connect(OTHER_SESSION)
    rust.subscribe()
    raw = json.loads(rust.ws.recv(5))
    assert raw["type"] == "Transition" and len(raw["modifications"][0]["value"]) == 5


def test_closing_every_socket_on_shutdown(server, clients):
    c = Client(clients, server).connect()
    c.modify([])
    c.expect("Transition")
    server.hub.close_all_from_thread()
    code, reason, _ = c.closed()
    assert (code, reason) == (1001, "ServerShutdown")


def test_a_transport_failing_mid_close_ends_the_socket_quietly(tmp_path, caplog):
    """hypercorn's stream raises trio.BusyResourceError to a send that races its own
    shutdown of the connection: the socket ends like a client gone, no traceback."""
    db = Database.open(tmp_path / "data")
    context = GatewayContext(PythonExecutor(db, endpoint_functions()), FakeAuthenticator())
    app = Starlette(routes=sync_routes(context))
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "garbage"},  # answered with FatalError + close
    ]
    attempts = []

    async def receive() -> dict:
        if incoming:
            return incoming.pop(0)
        await trio.sleep_forever()

    async def send(message: dict) -> None:
        if message["type"] != "websocket.accept":
            attempts.append(message["type"])
            raise trio.BusyResourceError("another task is currently sending data")

    scope = {"type": "websocket", "path": "/api/1.48.0/sync", "headers": [], "query_string": b""}
    caplog.set_level(logging.INFO)

    async def serve_one() -> bool:
        with trio.move_on_after(5) as timeout:
            await app(scope, receive, send)
        return timeout.cancelled_caught

    timed_out = trio.run(serve_one)
    db.close()
    assert not timed_out
    assert attempts == ["websocket.send"]  # the FatalError; nothing after a dead transport
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# --- live queries, without sockets ---------------------------------------------------------


def test_live_queries_share_runs_and_hear_about_invalidation(chat_db):
    executor = PythonExecutor(chat_db, chat_functions())
    registry = LiveQueryRegistry(executor)
    told: list[str] = []

    def ignore() -> None:
        pass

    async def main():
        a = registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: told.append("a"))
        b = registry.acquire("messages.js:list", [{}], ANONYMOUS, None, lambda: told.append("b"))
        x = registry.acquire("messages:list", [{"channel": "x"}], ANONYMOUS, None, ignore)
        assert a is b and x is not a
        await registry.wait_processed(executor.latest_ts())  # the schema's commit
        ts = executor.processed_ts()
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(registry.result_at, a, ts)
            tg.start_soon(registry.result_at, x, ts)
        assert a.executions == 1 and x.executions == 1
        chat_db.mutate(lambda tx: tx.insert("messages", {"channel": "g", "body": "hi"}))
        await registry.wait_processed(executor.latest_ts())
        with anyio.fail_after(5):
            while sorted(told) != ["a", "b"]:
                await anyio.sleep(0.01)
        new_ts = executor.processed_ts()
        # Channel x was not touched: its result holds at the new ts without a run.
        assert registry.valid_result(x, new_ts) is not None
        # All messages was: the old result is the answer at the old ts only.
        assert registry.valid_result(a, new_ts) is None
        assert registry.valid_result(a, ts) is not None
        result = await registry.result_at(a, new_ts)
        assert '"hi"' in result.body and a.executions == 2 and x.executions == 1
        registry.release(a, told.append)  # not a holder: ignored
        registry.release(x, ignore)
        assert registry.statistics()["live_queries"] == 1
        assert registry.statistics()["subscriptions"] == 2

    anyio.run(main, backend="trio")


def test_the_registry_refuses_past_its_subscription_limit(chat_db):
    registry = LiveQueryRegistry(PythonExecutor(chat_db, chat_functions()), subscriptions_max=1)

    async def main():
        registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: None)
        with pytest.raises(LimitExceededError, match="TooManySubscriptions"):
            registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: None)

    anyio.run(main, backend="trio")
