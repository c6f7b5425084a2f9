"""The HTTP API over the real V8 executor: what Convex answers as a function's own
error (200 + ``status: "error"``), and where internal functions can be called."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from websockets.sync.client import connect

from gateway.backend import Backend
from gateway.server import run_server_in_thread

ACTING_USER = base64.b64encode(b'{"issuer":"https://i.test","subject":"u1"}').decode()
SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"
RESULTS_TS = """
import { v } from "convex/values";
import { internalQuery, mutation, query } from "./_generated/server";

export const bumps = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) =>
    (await ctx.db.query("bumps").collect()).filter((b) => b.name === name).length,
});
export const bump = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => { await ctx.db.insert("bumps", { name }); },
});

const nested = (levels: number) => {
  let value: any = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
};
const items = (n: number) => Array.from({ length: n }, (_, i) => i);

export const tooMany = query({ args: {}, handler: async () => items(9000) });
export const tooDeep = query({ args: {}, handler: async () => nested(70) });
export const justRight = query({ args: {}, handler: async () => items(8192) });
export const tooManyWritten = mutation({ args: {}, handler: async () => items(9000) });
export const secret = internalQuery({ args: {}, handler: async () => "internal" });
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    functions = tmp_path_factory.mktemp("app") / "convex"
    functions.mkdir()
    (functions / "results.ts").write_text(RESULTS_TS)
    backend = Backend.open(tmp_path_factory.mktemp("data"), functions_dir=functions)
    url, stop = run_server_in_thread(backend.app)
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        yield backend, client
    stop()
    backend.close()


def call(client, endpoint, path, headers=None):
    return client.post(f"/api/{endpoint}", json={"path": path, "args": {}}, headers=headers)


@pytest.mark.parametrize(
    ("endpoint", "path", "problem"),
    [
        ("query", "results:tooMany", "9000 elements, more than array_items_max = 8192"),
        ("query", "results:tooDeep", "nested"),
        ("mutation", "results:tooManyWritten", "9000 elements"),
    ],
)
def test_an_invalid_result_is_the_functions_error(served, endpoint, path, problem):
    _, client = served
    response = call(client, endpoint, path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "error"
    module, _, export = path.partition(":")
    # crates/udf/src/helpers.rs: the canonical path (CanonicalizedUdfPath's Debug)
    assert f"Function {module}.js:{export} return value invalid: " in body["errorMessage"]
    assert problem in body["errorMessage"]
    assert len(call(client, "query", "results:justRight").json()["value"]) == 8192


def test_an_invalid_mutation_result_over_sync_is_a_failed_response(served):
    _, client = served
    ws_url = str(client.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        request = {"type": "Mutation", "requestId": 0, "udfPath": "results:tooManyWritten"}
        ws.send(json.dumps({**request, "args": [{}]}))
        response = json.loads(ws.recv(5))
        while response["type"] in ("Transition", "Ping"):
            response = json.loads(ws.recv(5))
        assert response["type"] == "MutationResponse" and response["success"] is False
        assert "return value invalid" in response["result"]


def test_an_invalid_query_result_over_sync_is_a_failed_query(served):
    _, client = served
    ws_url = str(client.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    add = {"type": "Add", "queryId": 0, "udfPath": "results:tooMany", "args": [{}]}
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        modify = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1}
        ws.send(json.dumps({**modify, "modifications": [add]}))
        (failed,) = json.loads(ws.recv(5))["modifications"]
        assert failed["type"] == "QueryFailed"
        assert "results.js:tooMany return value invalid" in failed["errorMessage"]


def test_internal_functions_answer_the_admin_key_on_every_endpoint(served):
    """Convex's HTTP API runs public functions only, except for an admin (or an admin
    acting as a user): then internal ones too, on /api/query as on /api/function."""
    backend, client = served
    admin = {"Authorization": f"Convex {backend.admin_key}"}
    acting = {"Authorization": f"Convex {backend.admin_key}:{ACTING_USER}"}
    for headers in (admin, acting):
        for endpoint in ("query", "function"):
            assert call(client, endpoint, "results:secret", headers).json()["value"] == "internal"
        ran = client.post("/api/run/results/secret", json={"args": {}}, headers=headers)
        assert ran.json()["value"] == "internal"
    hidden = call(client, "query", "results:secret").json()
    assert hidden["status"] == "error"
    assert "Could not find public function for 'results:secret'" in hidden["errorMessage"]
    refused = call(client, "function", "results:secret")
    assert (refused.status_code, refused.json()["code"]) == (403, "BadDeployKey")


def test_a_repeated_query_is_answered_from_the_cache_and_a_write_makes_it_run_again(served):
    """The gateway answers a cached query on its event loop: same answer, same
    refusals, a fresh run once a commit touched what the query read."""
    backend, client = served
    stats = backend.executor.query_cache.statistics
    ask = {"path": "results:bumps", "args": {"name": "c"}}
    assert client.post("/api/query", json=ask).json()["value"] == 0
    hits = stats()["hits"]
    for _ in range(3):
        answer = client.post("/api/query", json=ask).json()
        assert (answer["status"], answer["value"]) == ("success", 0)
    assert stats()["hits"] == hits + 3
    bad_key = {"Authorization": "Convex not-the-key"}
    refused = client.post("/api/query", json=ask, headers=bad_key)
    assert (refused.status_code, refused.json()["code"]) == (401, "BadAdminKey")
    assert (
        client.post("/api/mutation", json={**ask, "path": "results:bump"}).json()["status"]
        == "success"
    )
    backend.executor.wait_processed(backend.executor.latest_ts())
    assert client.post("/api/query", json=ask).json()["value"] == 1
