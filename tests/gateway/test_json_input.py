"""JSON from clients: the depth pre-scan, and every endpoint refusing too-deep input fast."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from websockets.sync.client import connect

from engine.limits import LIMITS
from gateway.backend import Backend
from gateway.json_input import JsonInputError, json_depth, parse_json
from gateway.server import run_server_in_thread

SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"
DEEP = 100_000  # levels: far past the limit, and past Python's recursion limit


def nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    return 0


# Strings full of the characters the scan must skip: brackets, quotes, backslashes.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab,:\n\u00e9'), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=40,
)


@given(json_values)
@example({"a": '[[[\\"[['})
@example(["\\", ["\\\\"], '"'])
def test_the_scan_measures_the_parsed_depth(value):
    text = json.dumps(value, ensure_ascii=False)
    assert json_depth(text) == nesting(value)
    assert json_depth(text.encode()) == nesting(value)


def test_deep_text_is_refused_before_parsing_and_shallow_text_parses():
    limit = LIMITS.json_depth_max
    assert parse_json("[" * limit + "]" * limit) is not None
    for text in ("[" * (limit + 1) + "]" * (limit + 1), b"{" * DEEP, "[" * DEEP + "]" * DEEP):
        with pytest.raises(JsonInputError, match=f"nested more than {limit} levels"):
            parse_json(text)
    started = time.perf_counter()
    with pytest.raises(JsonInputError):
        parse_json(b"[" * (8 << 20) + b"]" * (8 << 20))  # 16 MiB of brackets
    assert time.perf_counter() - started < 1.0
    with pytest.raises(JsonInputError, match="malformed"):
        parse_json('{"n": NaN}')


# --- through a real server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    backend = Backend.open(tmp_path_factory.mktemp("deep") / "data")
    url, stop = run_server_in_thread(backend.app)
    admin = {"Authorization": f"Convex {backend.admin_key}"}
    with httpx.Client(base_url=url, headers=admin, trust_env=False, timeout=30) as client:
        yield backend, url, client
    stop()
    backend.close()


def deep_args_body() -> bytes:
    return b'{"path":"messages:send","args":{"x":' + b"[" * DEEP + b"]" * DEEP + b"}}"


def deep_body() -> bytes:
    return b'{"cursor":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"


@pytest.mark.parametrize(
    "endpoint", ["query", "mutation", "action", "function", "list_snapshot", "document_deltas"]
)
@pytest.mark.parametrize("body", [deep_args_body, deep_body])
def test_every_endpoint_refuses_a_deep_body_fast(served, endpoint, body):
    _, _, client = served
    started = time.perf_counter()
    response = client.post(f"/api/{endpoint}", content=body())
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BadJsonBody"
    assert "nested more than" in response.json()["message"]
    assert client.post("/api/query_ts").status_code == 200  # still serving


def test_deep_query_parameters_and_headers_are_refused(served):
    _, _, client = served
    deep = "[" * 4000 + "]" * 4000  # fits a URL and a header line
    response = client.get("/api/query", params={"path": "messages:list", "args": deep})
    assert (response.status_code, response.json()["code"]) == (400, "BadQueryArgs")
    backend, _, _ = served
    acting = base64.b64encode(deep.encode()).decode()
    response = client.post(
        "/api/query",
        json={"path": "messages:list", "args": {}},
        headers={"Authorization": f"Convex {backend.admin_key}:{acting}"},
    )
    assert (response.status_code, response.json()["code"]) == (400, "HeaderParseFailure")
    payload = base64.urlsafe_b64encode(b'{"iss":' + deep.encode() + b"}").rstrip(b"=").decode()
    token = f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"
    response = client.post(
        "/api/query",
        json={"path": "messages:list", "args": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (response.status_code, response.json()["code"]) == (401, "InvalidAuthHeader")


def test_a_deep_sync_message_is_a_protocol_error(served):
    _, url, client = served
    ws_url = url.replace("http://", "ws://") + "/api/1.48.0/sync"
    mutation = (
        b'{"type":"Mutation","requestId":0,"udfPath":"messages:send","args":[{"x":'
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}]}"
    ).decode()
    with connect(ws_url, proxy=None, max_size=None, open_timeout=5, ping_interval=None) as ws:
        started = time.perf_counter()
        ws.send(mutation)
        fatal = json.loads(ws.recv(5))
        assert time.perf_counter() - started < 1.0
        assert fatal["type"] == "FatalError"
        assert f"nested more than {LIMITS.json_depth_max} levels" in fatal["error"]
    assert client.post("/api/query_ts").status_code == 200  # still serving


def test_the_deepest_legal_value_passes_in_the_deepest_envelope(served):
    """A value nested value_depth_max deep, with an ``$integer`` leaf, inside the query
    batch and the ModifyQuerySet envelopes, is not refused as too-deep JSON."""
    _, url, client = served
    deepest = {"$integer": "KgAAAAAAAAA="}
    for _ in range(LIMITS.value_depth_max):
        deepest = [deepest]
    batch = client.post(
        "/api/query_batch", json={"queries": [{"path": "nothing:here", "args": [{"v": deepest}]}]}
    )
    assert batch.status_code == 400 and batch.json()["code"] == "BadQueryArgs"  # 65 levels
    batch = client.post(
        "/api/query_batch",
        json={"queries": [{"path": "nothing:here", "args": [{"v": deepest[0]}]}]},
    )
    assert batch.status_code == 200, batch.text
    assert "Could not find public function" in batch.json()["results"][0]["errorMessage"]
    ws_url = url.replace("http://", "ws://") + "/api/1.48.0/sync"
    add = {"type": "Add", "queryId": 0, "udfPath": "nothing:here", "args": [{"v": deepest[0]}]}
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [add],
                }
            )
        )
        transition = json.loads(ws.recv(5))
        assert transition["type"] == "Transition", transition
        assert transition["modifications"][0]["type"] == "QueryFailed"
