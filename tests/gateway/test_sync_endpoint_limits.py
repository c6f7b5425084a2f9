"""The sync endpoint's limits and transport: connection, subscription and mutation limits,
clients that stop reading, chunked Transitions, shutdown, a transport failing mid-close."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import trio
from starlette.applications import Starlette

from engine import Database
from gateway.context import GatewayContext
from gateway.sync_endpoint import sync_routes

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PythonExecutor  # noqa: E402
from sync_harness import (  # noqa: E402
    OTHER_SESSION,
    SESSION,
    Client,
    FakeAuthenticator,
    endpoint_functions,
    frame,
    raw_websocket,
    wait_for,
)

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
    raw = raw_websocket(server)
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
            raw.sendall(frame(json.dumps(message)))
        wait_for(lambda: server.hub.statistics()["live_queries"] == 1)
        for n in range(60):
            big = {"n": 400_000}
            action = {"type": "Action", "requestId": n, "udfPath": "blob:make", "args": [big]}
            raw.sendall(frame(json.dumps(action)))
        wait_for(lambda: server.hub.statistics()["connections"] == 0)
        assert server.hub.statistics()["live_queries"] == 0  # released at once
    finally:
        raw.close()


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
