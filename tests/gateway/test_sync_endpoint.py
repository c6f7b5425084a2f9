"""The sync protocol over a real hypercorn server, spoken to with a plain WebSocket client
(tests/gateway/sync_harness.py), which checks every Transition's version chaining."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gateway.sync_messages import encode_ts

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from sync_harness import (  # noqa: E402
    OTHER_SESSION,
    SESSION,
    Client,
    ts_of,
)

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


def test_component_path_reaches_the_executor_for_an_admin_only(server, clients):
    user = Client(clients, server).connect()
    add = {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{}]}
    user.modify([{**add, "componentPath": "limiter"}])
    failed = user.expect("Transition")["modifications"][0]
    assert failed["type"] == "QueryFailed"
    assert failed["errorMessage"].endswith(
        "Server Error\nOnly admin or system users can call functions on non-root components "
        "directly\n"
    )
    admin = Client(clients, server).connect(OTHER_SESSION)
    admin.send({"type": "Authenticate", "tokenType": "Admin", "value": "admin", "baseVersion": 0})
    admin.expect("Transition")
    admin.modify([{**add, "args": [{"channel": "c"}], "componentPath": "limiter"}])
    admin.expect("Transition")
    query = next(c for c in server.executor.calls if c.kind == "query" and c.identity.admin)
    assert query.component_path == "limiter"
    mutation = {"type": "Mutation", "requestId": 0, "udfPath": "messages:send"}
    admin.send({**mutation, "args": [{"channel": "c", "body": "b"}], "componentPath": "limiter"})
    admin.expect("MutationResponse")
    assert server.executor.calls[-1].component_path == "limiter"
