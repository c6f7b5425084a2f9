"""The function log over a real server: ``GET /api/stream_function_logs`` as
``npx convex logs`` polls it, one entry per execution on every call path."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from websockets.sync.client import connect

from gateway.backend import Backend
from gateway.server import run_server_in_thread

SESSION = "0d6f1a52-3c1e-4b8e-9f0a-7b2d4c6e8a10"
NOTES_TS = """
import { action, mutation, query } from "./_generated/server";
import { api } from "./_generated/api";
import { v } from "convex/values";

export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("adding", text);
    await ctx.db.insert("notes", { text });
    return null;
  },
});
export const fail = mutation({
  args: {},
  handler: async () => {
    console.warn("about to fail");
    throw new Error("the mill wheel broke\\nsecond line");
  },
});
export const count = query({
  args: {},
  handler: async (ctx) => {
    console.log("counting");
    return (await ctx.db.query("notes").collect()).length;
  },
});
export const countTwice = action({
  args: {},
  handler: async (ctx) => {
    console.info("in the action");
    return await ctx.runQuery(api.notes.count, {});
  },
});
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    functions = tmp_path_factory.mktemp("app") / "convex"
    functions.mkdir()
    (functions / "notes.ts").write_text(NOTES_TS)
    backend = Backend.open(tmp_path_factory.mktemp("data"), functions_dir=functions)
    url, stop = run_server_in_thread(backend.app)
    headers = {"Authorization": f"Convex {backend.admin_key}"}
    headers["Convex-Client"] = "npm-cli-1.48.0"  # as `npx convex logs` sends it
    with httpx.Client(base_url=url, trust_env=False, timeout=30, headers=headers) as client:
        yield backend, client
    stop()
    backend.close()


def poll(client, cursor, timeout=30):
    response = client.get("/api/stream_function_logs", params={"cursor": cursor}, timeout=timeout)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["entries"], body["newCursor"]


def head(client):
    """The newest cursor now (after one execution, so the poll answers at once)."""
    client.post("/api/query", json={"path": "notes:count", "args": {}})
    return poll(client, 0)[1]


def call(client, endpoint, path, args=None):
    response = client.post(f"/api/{endpoint}", json={"path": path, "args": args or {}})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_mutations_console_log_appears_with_duration_and_outcome(served):
    _, client = served
    cursor = head(client)
    call(client, "mutation", "notes:add", {"text": "rye"})
    entries, new_cursor = poll(client, cursor)
    assert new_cursor > cursor
    [entry] = entries
    assert entry["kind"] == "Completion"
    assert entry["udfType"] == "Mutation" and entry["identifier"] == "notes:add"
    assert [line["messages"] for line in entry["logLines"]] == [["'adding' 'rye'"]]
    assert entry["logLines"][0]["level"] == "LOG"
    assert entry["error"] is None
    assert 0 < entry["executionTime"] < 10
    assert abs(entry["timestamp"] - time.time()) < 60


def test_other_clients_get_console_lines_as_strings(served):
    _, client = served
    cursor = head(client)
    call(client, "mutation", "notes:add", {"text": "millet"})
    response = client.get(
        "/api/stream_function_logs", params={"cursor": cursor}, headers={"Convex-Client": "npm-1.0"}
    )
    [entry] = response.json()["entries"]
    assert entry["logLines"] == ["[LOG] 'adding' 'millet'"]


def test_an_error_appears_with_its_message(served):
    _, client = served
    cursor = head(client)
    assert call(client, "mutation", "notes:fail")["status"] == "error"
    [entry] = poll(client, cursor)[0]
    assert "the mill wheel broke" in entry["error"]
    assert entry["logLines"][0]["level"] == "WARN"


def test_the_long_poll_waits_and_returns_only_new_entries(served):
    _, client = served
    cursor = head(client)
    answered: list = []
    waiter = threading.Thread(target=lambda: answered.append(poll(client, cursor)))
    waiter.start()
    time.sleep(0.5)
    assert answered == []  # nothing new yet: the request waits
    call(client, "mutation", "notes:add", {"text": "oats"})
    waiter.join(10)
    [(entries, new_cursor)] = answered
    assert [e["identifier"] for e in entries] == ["notes:add"]
    assert poll(client, cursor)[0] == entries  # the same cursor again: the same entries
    call(client, "query", "notes:count")
    later, _ = poll(client, new_cursor)
    assert [e["identifier"] for e in later] == ["notes:count"]


def test_without_the_admin_key_the_log_is_refused(served):
    backend, client = served
    with httpx.Client(base_url=client.base_url, trust_env=False, timeout=30) as bare:
        anonymous = bare.get("/api/stream_function_logs?cursor=0")
    assert anonymous.status_code == 403 and anonymous.json()["code"] == "BadDeployKey"
    wrong = client.get(
        "/api/stream_function_logs?cursor=0", headers={"Authorization": "Convex nope|nope"}
    )
    assert wrong.status_code in (400, 401) and wrong.json()["code"] in (
        "BadAdminKey",
        "InvalidAdminKey",
    )
    bad = client.get("/api/stream_function_logs?cursor=soon")
    assert bad.status_code == 400 and bad.json()["code"] == "BadQueryArgs"


def test_every_http_call_path_records_exactly_one_entry(served):
    _, client = served
    cursor = head(client)
    call(client, "query", "notes:count")
    call(client, "mutation", "notes:add", {"text": "spelt"})
    call(client, "function", "notes:count")
    response = client.post("/api/run/notes/count", json={"args": {}})
    assert response.status_code == 200, response.text
    call(client, "query", "notes:nothingHere")
    entries, _ = poll(client, cursor)
    assert [(e["udfType"], e["identifier"]) for e in entries] == [
        ("Query", "notes:count"),
        ("Mutation", "notes:add"),
        ("Query", "notes:count"),
        ("Query", "notes:count"),
        ("Query", "notes:nothingHere"),
    ]
    assert "Could not find" in entries[-1]["error"]


def test_an_actions_nested_query_is_its_own_entry(served):
    _, client = served
    cursor = head(client)
    call(client, "action", "notes:countTwice")
    entries, _ = poll(client, cursor)
    nested, outer = entries  # the nested query completes first
    assert (nested["udfType"], nested["identifier"], nested["caller"]) == (
        "Query",
        "notes:count",
        "action",
    )
    assert (outer["udfType"], outer["identifier"]) == ("Action", "notes:countTwice")
    assert [line["messages"] for line in outer["logLines"]] == [["'in the action'"]]
    assert [line["messages"] for line in nested["logLines"]] == [["'counting'"]]


def test_sync_queries_their_reruns_and_mutations_are_logged(served):
    _, client = served
    cursor = head(client)
    ws_url = str(client.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        add = {"type": "Add", "queryId": 0, "udfPath": "notes:count", "args": [{}]}
        modify = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1}
        ws.send(json.dumps({**modify, "modifications": [add]}))
        _until(ws, lambda m: m["type"] == "Transition")
        mutation = {"type": "Mutation", "requestId": 0, "udfPath": "notes:add"}
        ws.send(json.dumps({**mutation, "args": [{"text": "barley"}]}))
        _until(ws, lambda m: m["type"] == "MutationResponse")
        _until(ws, lambda m: m["type"] == "Transition")  # the live query re-ran
    entries = _collect(client, cursor, 3)
    assert [(e["udfType"], e["identifier"]) for e in entries] == [
        ("Query", "notes:count"),
        ("Mutation", "notes:add"),
        ("Query", "notes:count"),
    ]


def _until(ws, predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        message = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
        if predicate(message):
            return message


def _collect(client, cursor, count, timeout_s=10.0):
    found: list = []
    deadline = time.monotonic() + timeout_s
    while len(found) < count and time.monotonic() < deadline:
        entries, cursor = poll(client, cursor, timeout=timeout_s)
        found.extend(entries)
    return found


def test_a_poll_whose_client_left_stops_waiting(served):
    backend, client = served
    cursor = head(client)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/stream_function_logs", params={"cursor": cursor}, timeout=0.5)
    deadline = time.monotonic() + 5
    while backend.function_log.statistics()["listeners"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.function_log.statistics()["listeners"] == 0
