"""What the dashboard needs of a real server beyond its system functions: the health
gauges the composition root registers (live sockets and subscriptions), running an
internal function as an admin (``POST /api/function``), and the function log streamed
to a page served from another origin (CORS) with everything a log row shows."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from gateway.backend import Backend
from gateway.server import run_server_in_thread
from tests.waiting import wait_for

SESSION = "5b1f0c7e-2a4d-4c1b-8e6f-3d9a7c2b1e40"
DASHBOARD_ORIGIN = "http://127.0.0.1:6791"
NOTES_TS = """
import { action, internalMutation, query } from "./_generated/server";
import { v } from "convex/values";

export const add = internalMutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("adding", text);
    return await ctx.db.insert("notes", { text });
  },
});
export const count = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("notes").collect()).length,
});
export const explode = action({
  args: {},
  handler: async () => {
    console.warn("about to explode");
    throw new Error("the boiler burst");
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
    with httpx.Client(base_url=url, trust_env=False, timeout=30, headers=headers) as client:
        yield backend, client
    stop()
    backend.close()


def health(client) -> dict:
    response = client.post(
        "/api/query", json={"path": "_system/dashboard/ops:health", "args": {}, "format": "json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["value"]


def _subscribe(ws, query_id: int) -> None:
    ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
    add = {"type": "Add", "queryId": query_id, "udfPath": "notes:count", "args": [{}]}
    modify = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1}
    ws.send(json.dumps({**modify, "modifications": [add]}))
    deadline = time.monotonic() + 10
    while json.loads(ws.recv(max(0.1, deadline - time.monotonic())))["type"] != "Transition":
        pass


def test_health_counts_the_servers_live_sockets_and_subscriptions(served):
    backend, client = served
    wait_for(lambda: health(client)["connections"] == 0)  # no socket left by another test
    ws_url = str(client.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    with (
        connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as first,
        connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as second,
    ):
        _subscribe(first, 0)
        _subscribe(second, 0)
        figures = wait_for(lambda: (h := health(client))["connections"] == 2 and h)
        assert figures["subscriptions"] == 2
    after = wait_for(lambda: (h := health(client))["connections"] == 0 and h)
    assert after["subscriptions"] == 0
    assert after["newestTs"] == str(backend.db.latest_ts())


def test_an_admin_runs_an_internal_function_with_its_console_lines(served):
    _, client = served
    response = client.post(
        "/api/function", json={"path": "notes:add", "args": {"text": "oat"}, "format": "json"}
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", body
    assert isinstance(body["value"], str)
    assert body["logLines"] == ["[LOG] 'adding' 'oat'"]


def test_without_the_admin_key_an_internal_function_does_not_run(served):
    backend, client = served
    before = backend.db.latest_ts()
    request = {"path": "notes:add", "args": {"text": "rye"}, "format": "json"}
    with httpx.Client(base_url=client.base_url, trust_env=False, timeout=30) as anonymous:
        refused = anonymous.post("/api/function", json=request)
        assert refused.status_code == 403 and "admin key" in refused.json()["message"]
        public_only = anonymous.post("/api/mutation", json=request).json()
    assert "Could not find public function for 'notes:add'" in public_only["errorMessage"]
    assert backend.db.latest_ts() == before


def test_the_function_log_streams_to_another_origin_with_what_a_log_row_shows(served):
    _, client = served
    # One execution first: a long poll of an empty log would wait for its timeout.
    client.post(
        "/api/function", json={"path": "notes:add", "args": {"text": "x"}, "format": "json"}
    )
    first = client.get("/api/stream_function_logs", params={"cursor": 0})
    cursor = first.json()["newCursor"]
    client.post("/api/function", json={"path": "notes:explode", "args": {}, "format": "json"})
    response = client.get(
        "/api/stream_function_logs",
        params={"cursor": cursor},
        headers={"Origin": DASHBOARD_ORIGIN, "Convex-Client": "dashboard-0.0.0"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    (entry,) = [e for e in response.json()["entries"] if e["identifier"] == "notes:explode"]
    assert entry["udfType"] == "Action" and entry["executionTime"] > 0
    assert [(line["level"], line["messages"]) for line in entry["logLines"]] == [
        ("WARN", ["'about to explode'"])
    ]
    assert entry["error"].startswith("Uncaught Error: the boiler burst")
    assert "at handler (../convex/notes.ts:" in entry["error"]  # its stack, mapped


def test_a_preflight_from_the_dashboard_is_allowed(served):
    _, client = served
    response = client.options(
        "/api/stream_function_logs",
        headers={
            "Origin": DASHBOARD_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,convex-client",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN
    assert response.headers["access-control-allow-headers"] == "authorization,convex-client"


def test_an_admin_socket_subscribes_to_the_ops_functions_as_the_dashboard_does(served):
    backend, client = served
    ws_url = str(client.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        admin = {"type": "Authenticate", "tokenType": "Admin", "value": backend.admin_key}
        ws.send(json.dumps({**admin, "baseVersion": 0}))
        adds = [
            {"type": "Add", "queryId": i, "udfPath": f"_system/dashboard/ops:{name}", "args": [{}]}
            for i, name in enumerate(("functions", "deploys", "crons", "health"))
        ]
        modify = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1}
        ws.send(json.dumps({**modify, "modifications": adds}))
        values: dict[int, object] = {}
        deadline = time.monotonic() + 10
        while len(values) < len(adds):
            message = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
            for change in message.get("modifications", []):
                assert change["type"] == "QueryUpdated", change
                values[change["queryId"]] = change["value"]
    functions, deploys, crons, figures = (values[i] for i in range(4))
    assert {"notes:add", "notes:count", "notes:explode"} <= {f["identifier"] for f in functions}
    assert deploys and deploys[0]["modules"]["added"] == ["notes.js"]
    assert crons == []
    assert figures["connections"] >= 1
