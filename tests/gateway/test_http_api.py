"""The HTTP API over a real hypercorn server on loopback, with the official clients."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import subprocess
import sys
import threading
import types
from pathlib import Path

import httpx
import pytest
from schemas import CHAT_SCHEMA
from starlette.routing import WebSocketRoute

from engine import Database
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext, GatewaySettings
from gateway.server import run_server_in_thread

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from jwks_issuer import JwksIssuer  # noqa: E402
from python_executor import PyConvexError, PyFunction, PythonExecutor, chat_functions  # noqa: E402

KEY = generate_admin_key("headwater")
ADMIN = {"Authorization": f"Convex {KEY}"}
REQUEST_ID = re.compile(r"^\[Request ID: [0-9a-f]{16}\] Server Error\n")


def functions() -> dict[str, PyFunction]:
    def mixed(tx, args, identity):
        return {"n": 42, "b": b"\x01\x02", "nan": math.nan, "inf": math.inf, "f": 1.5, "z": -0.0}

    def fail(tx, args, identity):
        raise ValueError("boom")

    def rich_error(tx, args, identity):
        raise PyConvexError({"limit": 7, "why": "too long"})

    return {
        **chat_functions(),
        "values:echo": PyFunction("query", lambda tx, args, identity: args.get("value")),
        "values:mixed": PyFunction("query", mixed),
        "values:fail": PyFunction("query", fail),
        "values:richError": PyFunction("mutation", rich_error),
        "debug:thread": PyFunction(
            "query", lambda tx, args, identity: threading.current_thread().name
        ),
    }


@pytest.fixture(scope="module")
def issuer():
    with JwksIssuer() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory, issuer):
    db = Database.open(tmp_path_factory.mktemp("http") / "data")
    db.set_schema(CHAT_SCHEMA)
    executor = PythonExecutor(db, functions())
    context = GatewayContext(
        executor,
        HeadwaterAuthenticator(KEY, issuer.auth_config()),
        GatewaySettings(instance_name="headwater", version="1.2.3"),
    )
    url, stop = run_server_in_thread(create_app(context))
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
        yield types.SimpleNamespace(url=url, client=client, db=db, executor=executor)
    stop()
    db.close()


@pytest.fixture
def client(served) -> httpx.Client:
    return served.client


def call(client, endpoint, path, args=None, *, headers=None, **fields):
    body = {"path": path, "args": {} if args is None else args, **fields}
    return client.post(f"/api/{endpoint}", json=body, headers=headers)


def ok(response: httpx.Response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["value"]


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == code, body
    return body["message"]


# --- plain routes ------------------------------------------------------------------


def test_plain_routes(client):
    assert client.get("/").text == "This Headwater deployment is running."
    assert client.get("/version").text == "1.2.3"
    assert client.get("/instance_version").text == "1.2.3"
    assert client.get("/instance_name").text == "headwater"
    assert (client.get("/health").status_code, client.get("/health").text) == (200, "ok")
    echoed = client.post("/echo", content=b"ping \x00 pong", headers={"Content-Type": "a/b"})
    assert echoed.content == b"ping \x00 pong" and echoed.headers["content-type"] == "a/b"


def test_unknown_routes_and_methods_are_json_errors(client):
    refused(client.get("/api/nothing-here"), 404, "NotFound")
    refused(client.get("/api/mutation"), 405, "MethodNotAllowed")


# --- the function endpoints -----------------------------------------------------------


def test_query_mutation_action_round_trip(client):
    message_id = ok(call(client, "mutation", "messages:send", {"channel": "rt", "body": "hi"}))
    assert isinstance(message_id, str)
    docs = ok(call(client, "query", "messages:list", [{"channel": "rt"}]))  # legacy array form
    assert [(d["_id"], d["body"]) for d in docs] == [(message_id, "hi")]
    assert ok(call(client, "action", "actions:shout", {"text": "hey"})) == "HEY"
    assert ok(call(client, "query", "messages.js:list", {"channel": "rt"})) == docs


def test_get_query_takes_query_parameters(client):
    ok(call(client, "mutation", "messages:send", {"channel": "get", "body": "g"}))
    params = {"path": "messages:list", "args": json.dumps({"channel": "get"})}
    assert [d["body"] for d in ok(client.get("/api/query", params=params))] == ["g"]
    assert ok(client.get("/api/query", params={"path": "auth:whoami", "args": "{}"})) is None
    bad = client.get("/api/query", params={"path": "messages:list", "args": "{nope"})
    refused(bad, 400, "BadQueryArgs")


def test_success_carries_log_lines_and_errors_omit_empty_ones(client):
    body = call(client, "query", "auth:whoami").json()
    assert body["logLines"] == ["[LOG] 'query auth:whoami'"]
    missing = call(client, "query", "messages:nope").json()
    assert missing["status"] == "error" and "logLines" not in missing and "errorData" not in missing


def test_function_errors_are_200_with_the_request_id(client):
    body = call(client, "query", "values:fail").json()
    assert body["status"] == "error"
    assert REQUEST_ID.match(body["errorMessage"])
    assert body["errorMessage"].endswith("Server Error\nUncaught Error: boom\n")  # Python stand-in
    pinned = client.post(
        "/api/query",
        json={"path": "values:fail", "args": {}},
        headers={"Convex-Request-Id": "abc123"},
    )
    assert pinned.json()["errorMessage"].startswith("[Request ID: abc123] Server Error\n")


def test_internal_functions_need_the_admin_key(client):
    anonymous = call(client, "mutation", "messages:clear").json()
    assert anonymous["status"] == "error"
    assert "Could not find public function for 'messages:clear'" in anonymous["errorMessage"]
    assert isinstance(ok(call(client, "mutation", "messages:clear", headers=ADMIN)), str)
    by_param = client.post(
        f"/api/mutation?adminKey={KEY}", json={"path": "messages:clear", "args": {}}
    )
    ok(by_param)


def test_calling_the_wrong_kind_names_both(client):
    body = call(client, "query", "messages:send", {"body": "x"}).json()
    assert body["status"] == "error"
    assert body["errorMessage"].endswith(
        "Trying to execute messages.js:send as Query, but it is defined as Mutation.\n"
    )


def test_convex_error_data_follows_the_format(client):
    clean = call(client, "mutation", "values:richError").json()
    assert clean["status"] == "error" and "Uncaught ConvexError" in clean["errorMessage"]
    assert clean["errorData"] == {"limit": "7", "why": "too long"}  # default: clean JSON
    encoded = call(client, "mutation", "values:richError", format="convex_encoded_json").json()
    assert encoded["errorData"] == {"limit": {"$integer": "BwAAAAAAAAA="}, "why": "too long"}


# --- value formats ----------------------------------------------------------------------


def b64_float(x: float) -> str:
    return base64.b64encode(struct.pack("<d", x)).decode()


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (None, {"n": "42", "b": "AQI=", "nan": "NaN", "inf": "Infinity", "f": 1.5, "z": -0.0}),
        ("json", {"n": "42", "b": "AQI=", "nan": "NaN", "inf": "Infinity", "f": 1.5, "z": -0.0}),
        (
            "convex_encoded_json",
            {
                "n": {"$integer": "KgAAAAAAAAA="},
                "b": {"$bytes": "AQI="},
                "nan": {"$float": b64_float(math.nan)},
                "inf": {"$float": b64_float(math.inf)},
                "f": 1.5,
                "z": {"$float": b64_float(-0.0)},
            },
        ),
        (
            "export_json",
            {
                "n": 42,
                "b": {"$bytes": "AQI="},
                "nan": {"$float": b64_float(math.nan)},
                "inf": {"$float": b64_float(math.inf)},
                "f": 1.5,
                "z": -0.0,
            },
        ),
    ],
)
def test_output_formats(client, fmt, expected):
    extra = {} if fmt is None else {"format": fmt}
    assert ok(call(client, "query", "values:mixed", **extra)) == expected


def test_format_aliases(client):
    encoded = ok(call(client, "query", "values:mixed", format="convex_encoded_json"))
    assert ok(call(client, "query", "values:mixed", format="convex_json")) == encoded
    assert ok(call(client, "query", "values:mixed", format="convex_clean_json"))["n"] == "42"


def test_an_unknown_format_is_400(client):
    assert "export_json" in refused(
        call(client, "query", "values:mixed", format="xml"), 400, "BadFormat"
    )
    refused(call(client, "query", "values:mixed", format=7), 400, "BadFormat")


def test_args_are_read_as_convex_encoded_json(client):
    value = {"n": {"$integer": "KgAAAAAAAAA="}, "b": {"$bytes": "AQI="}, "f": 5}
    echoed = ok(
        call(client, "query", "values:echo", {"value": value}, format="convex_encoded_json")
    )
    assert echoed == {"n": {"$integer": "KgAAAAAAAAA="}, "b": {"$bytes": "AQI="}, "f": 5.0}


@pytest.mark.parametrize(
    ("client_header", "n"),
    [
        ("npm-1.48.0", "42"),
        ("npm-cli-1.20.0", "42"),
        ("python-convex-0.7.0", "42"),
        ("npm-1.3.0", {"$integer": "KgAAAAAAAAA="}),
        ("python-convex-0.4.0", {"$integer": "KgAAAAAAAAA="}),
        ("my-custom-client-0.0.1-alpha.1", "42"),
    ],
)
def test_the_default_format_follows_convex_client(client, client_header, n):
    response = client.post(
        "/api/query",
        json={"path": "values:mixed", "args": {}},
        headers={"Convex-Client": client_header},
    )
    assert ok(response)["n"] == n


def test_bad_client_versions_are_400(client):
    for header, code in [
        ("garbage", "InvalidClientVersion"),
        ("npm-1.2.3.4", "InvalidClientVersion"),
        ("npm-0.19.1", "ClientVersionUnsupported"),
    ]:
        response = client.post(
            "/api/query",
            json={"path": "auth:whoami", "args": {}},
            headers={"Convex-Client": header},
        )
        refused(response, 400, code)


# --- bad requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b"", b'{"path": "a:b", "args": NaN}', b"[" * 100_000]
)
def test_malformed_bodies_are_400_bad_json_body(client, content):
    response = client.post(
        "/api/query", content=content, headers={"Content-Type": "application/json"}
    )
    refused(response, 400, "BadJsonBody")


@pytest.mark.parametrize(
    "path",
    [
        None,
        5,
        "",
        "messages:",
        "messages:1abc",
        "a//b:c",
        "a/:b",
        "bad-name:list",
        "..:x",
        "messages:___",
        "m:" + "x" * 65,
    ],
)
def test_bad_function_paths_are_400(client, path):
    refused(call(client, "query", path), 400, "BadConvexFunctionIdentifier")


def test_good_function_path_forms(client):
    assert ok(call(client, "query", "auth.js:whoami")) is None
    nested = call(client, "query", "admin/deep.js:fn").json()  # valid syntax, no such function
    assert "Could not find public function" in nested["errorMessage"]


@pytest.mark.parametrize(
    "args",
    [[], [{}, {}], "text", 5, [5], {"$foo": 1}, {"bad": {"$integer": "AA=="}}, {"x": {"$set": []}}],
)
def test_bad_args_are_400(client, args):
    message = refused(call(client, "query", "values:echo", args), 400, "BadQueryArgs")
    assert message


@pytest.mark.parametrize("endpoint", ["query", "mutation", "action", "function", "query_at_ts"])
def test_args_are_required(client, endpoint):
    body = {"path": "auth:whoami", "ts": client.post("/api/query_ts").json()["ts"]}
    message = refused(client.post(f"/api/{endpoint}", json=body, headers=ADMIN), 400, "BadJsonBody")
    assert "missing field `args`" in message
    answered = client.post(f"/api/{endpoint}", json={**body, "args": {}}, headers=ADMIN)
    assert answered.status_code == 200 and "status" in answered.json()  # ran (or failed) as a call
    batch = client.post("/api/query_batch", json={"queries": [{"path": "auth:whoami"}]})
    assert "missing field `args`" in refused(batch, 400, "BadJsonBody")
    for run_body in ({}, {"format": "json"}):
        refused(client.post("/api/run/auth/whoami", json=run_body), 400, "BadJsonBody")
    refused(client.post("/api/run/auth/whoami"), 400, "BadJsonBody")  # no body at all
    get = client.get("/api/query", params={"path": "auth:whoami"})
    assert "missing field `args`" in refused(get, 400, "BadQueryArgs")


# --- body size ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    db = Database.open(tmp_path_factory.mktemp("small") / "data")
    db.set_schema(CHAT_SCHEMA)
    context = GatewayContext(
        PythonExecutor(db, functions()),
        HeadwaterAuthenticator(KEY),
        GatewaySettings(message_bytes_max=1000),
    )
    url, stop = run_server_in_thread(create_app(context))
    with httpx.Client(base_url=url, trust_env=False) as client:
        yield client
    stop()
    db.close()


def test_a_body_over_the_limit_is_413(small):
    big = {"path": "values:echo", "args": {"value": "x" * 2000}}
    assert "1000" in refused(small.post("/api/query", json=big), 413, "PayloadTooLarge")

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b" " * 100

    streamed = small.post(
        "/api/query", content=chunks(), headers={"Content-Type": "application/json"}
    )
    refused(streamed, 413, "PayloadTooLarge")
    assert ok(small.post("/api/query", json={"path": "values:echo", "args": {"value": "x" * 500}}))


# --- /api/function and /api/run ------------------------------------------------------------


def test_function_endpoint_is_admin_only_and_runs_any_kind(client):
    message = refused(call(client, "function", "messages:list"), 403, "BadDeployKey")
    assert "headwater" in message
    ok(call(client, "function", "messages:send", {"channel": "fn", "body": "b"}, headers=ADMIN))
    assert ok(call(client, "function", "messages:clear", headers=ADMIN)).isdigit()
    assert ok(call(client, "function", "actions:shout", {"text": "a"}, headers=ADMIN)) == "A"


def test_function_endpoint_passes_the_component_path_of_an_admin_call(served):
    # Running the component's function is the executor's part (component runtime);
    # here: the path reaches it, a bad one is refused, a non-admin is refused first.
    client, executor = served.client, served.executor
    call(client, "function", "lib:check", {"n": 1}, componentPath="workpool/batch", headers=ADMIN)
    assert executor.calls[-1].component_path == "workpool/batch"
    assert executor.calls[-1].path == "lib:check" and executor.calls[-1].kind is None
    call(client, "function", "messages:list", {"channel": "x"}, headers=ADMIN)
    assert executor.calls[-1].component_path == ""
    message = refused(
        call(client, "function", "lib:check", componentPath="bad-name", headers=ADMIN),
        400,
        "InvalidComponentPath",
    )
    assert message == (
        "Identifier bad-name has invalid character '-': Identifiers can only contain "
        "alphanumeric characters or underscores"
    )
    refused(call(client, "function", "lib:check", componentPath="limiter"), 403, "BadDeployKey")
    refused(
        call(client, "function", "lib:check", componentPath=7, headers=ADMIN), 400, "BadJsonBody"
    )


def test_run_endpoint(client):
    ok(call(client, "mutation", "messages:send", {"channel": "run", "body": "r"}))
    ran = client.post("/api/run/messages/list", json={"args": {"channel": "run"}})
    assert [d["body"] for d in ok(ran)] == ["r"]
    assert ok(client.post("/api/run/values/mixed", json={"args": {}}))["n"] == "42"  # json
    encoded = client.post(
        "/api/run/values/mixed", json={"args": {}, "format": "convex_encoded_json"}
    )
    assert ok(encoded)["n"] == {"$integer": "KgAAAAAAAAA="}
    assert ok(client.post("/api/run/actions/shout", json={"args": {"text": "x"}})) == "X"
    refused(client.post("/api/run/messages", json={}), 400, "MissingIdentifier")
    refused(client.post("/api/run/messages/bad-name", json={}), 400, "BadConvexFunctionIdentifier")


# --- timestamps and batches ------------------------------------------------------------------


def decode_ts(text: str) -> int:
    return struct.unpack("<Q", base64.b64decode(text))[0]


def test_query_ts_and_query_at_ts_read_the_past(served, client):
    ok(call(client, "mutation", "messages:send", {"channel": "past", "body": "one"}))
    ts_text = client.post("/api/query_ts").json()["ts"]
    assert len(ts_text) == 12 and decode_ts(ts_text) == served.db.latest_ts()
    ok(call(client, "mutation", "messages:send", {"channel": "past", "body": "two"}))
    then = call(client, "query_at_ts", "messages:list", {"channel": "past"}, ts=ts_text)
    assert [d["body"] for d in ok(then)] == ["one"]
    now = ok(call(client, "query", "messages:list", {"channel": "past"}))
    assert [d["body"] for d in now] == ["one", "two"]


def test_query_at_ts_refuses_bad_timestamps(served, client):
    future = base64.b64encode(struct.pack("<Q", served.db.latest_ts() + 10**12)).decode()
    message = refused(
        call(client, "query_at_ts", "auth:whoami", ts=future), 400, "SnapshotOutOfRange"
    )
    assert "newer than the newest commit" in message
    for bad in ("AAAA", "not base64!", 17, "//////////8="):
        refused(call(client, "query_at_ts", "auth:whoami", ts=bad), 400, "InvalidTimestamp")
    refused(call(client, "query_at_ts", "auth:whoami"), 400, "InvalidTimestamp")
    ancient = call(client, "query_at_ts", "auth:whoami", ts="AQAAAAAAAAA=").json()
    assert "outside the retained history" in ancient["errorMessage"]


def test_query_batch_answers_in_order(client):
    ok(call(client, "mutation", "messages:send", {"channel": "batch", "body": "b"}))
    response = client.post(
        "/api/query_batch",
        json={
            "queries": [
                {"path": "messages:list", "args": {"channel": "batch"}},
                {"path": "values:mixed", "args": {}, "format": "export_json"},
                {"path": "messages:nope", "args": {}},
            ]
        },
    )
    results = response.json()["results"]
    assert [d["body"] for d in results[0]["value"]] == ["b"]
    assert results[1]["value"]["n"] == 42
    assert results[2]["status"] == "error"
    bad = client.post("/api/query_batch", json={"queries": [{"path": "no good", "args": {}}]})
    refused(bad, 400, "BadConvexFunctionIdentifier")
    refused(client.post("/api/query_batch", json={"queries": 3}), 400, "BadJsonBody")


def test_functions_run_off_the_event_loop_thread(client):
    assert ok(call(client, "query", "debug:thread")) != "headwater-server"


# --- CORS ---------------------------------------------------------------------------------


def test_cors_preflight(client):
    response = client.options(
        "/api/mutation",
        headers={
            "Origin": "https://app.example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, convex-client, authorization",
        },
    )
    assert response.status_code == 200
    h = response.headers
    assert h["access-control-allow-origin"] == "https://app.example.test"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-headers"] == "content-type, convex-client, authorization"
    assert set(h["access-control-allow-methods"].split(", ")) == {
        "GET",
        "POST",
        "OPTIONS",
        "PATCH",
        "DELETE",
        "PUT",
    }
    assert h["access-control-max-age"] == "86400"


def test_cors_headers_on_responses_and_errors(client):
    origin = {"Origin": "http://localhost:5173"}
    response = client.post("/api/query", json={"path": "auth:whoami", "args": {}}, headers=origin)
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert response.headers["access-control-allow-credentials"] == "true"
    bad = client.post("/api/query", content=b"{", headers=origin)
    assert bad.status_code == 400 and bad.headers["access-control-allow-origin"] == origin["Origin"]
    plain = client.post("/api/query", json={"path": "auth:whoami", "args": {}})
    assert "access-control-allow-origin" not in plain.headers


# --- the app's wiring -------------------------------------------------------------------------


def test_sync_routes_are_mounted_when_the_module_exists(served, monkeypatch):
    async def endpoint(websocket):  # never called: the route table is what we check
        await websocket.close()

    fake = types.ModuleType("gateway.sync_endpoint")
    fake.SyncHub = lambda context: "the hub"
    fake.sync_routes = lambda context, hub: [WebSocketRoute("/api/sync", endpoint)]
    monkeypatch.setitem(sys.modules, "gateway.sync_endpoint", fake)
    app = create_app(GatewayContext(PythonExecutor(served.db, {}), HeadwaterAuthenticator(KEY)))
    assert "/api/sync" in [getattr(r, "path", None) for r in app.routes]
    assert app.state.sync_hub == "the hub"  # its figures feed the dashboard's gauges


# --- the official clients ------------------------------------------------------------------


def test_pypi_convex_http_client(served, monkeypatch):
    from convex import ConvexError
    from convex.http_client import ConvexExecutionError, ConvexHttpClient

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    c = ConvexHttpClient(served.url)
    message_id = c.mutation("messages:send", {"channel": "py", "body": "from python"})
    assert [d["_id"] for d in c.query("messages:list", {"channel": "py"})] == [message_id]
    assert c.action("actions:shout", {"text": "py"}) == "PY"
    assert c.query("values:mixed")["n"].value == 42  # convex_encoded_json: Int64 survives
    with pytest.raises(ConvexError) as convex_error:
        c.mutation("values:richError")
    # This client hands errorData over as it came (convex encoded JSON), undecoded.
    assert convex_error.value.data == {"limit": {"$integer": "BwAAAAAAAAA="}, "why": "too long"}
    with pytest.raises(ConvexExecutionError, match="Could not find public function"):
        c.mutation("messages:clear")
    c.set_admin_auth(KEY)
    assert c.mutation("messages:clear").value >= 1  # a ConvexInt64 count
    c.set_admin_auth("headwater|" + "0" * 64)
    with pytest.raises(Exception, match="401 BadAdminKey"):
        c.query("auth:whoami")


@pytest.mark.slow
def test_npm_convex_http_client(served, issuer):
    from udf.node import JS_DIR, ensure_node_modules, node_executable

    ensure_node_modules()
    script = Path(__file__).parent / "js" / "http_client.mjs"
    done = subprocess.run(
        [node_executable(), str(script), served.url, str(JS_DIR), KEY, issuer.mint("npm-user")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert isinstance(out["send"]["ok"], str)
    assert out["list"] == {"ok": ["from npm"]}
    assert out["shout"] == {"ok": "HEY"}
    assert out["convexError"]["data"] == {"code": "EMPTY"}
    assert "Could not find public function for 'messages:nope'" in out["missing"]["error"]
    assert "Could not find public function" in out["internalAnonymous"]["error"]
    assert out["consistent"] == {"ok": 1}
    assert out["echo"] == {
        "ok": {"n": "42n", "bytes": [1, 2, 255], "nan": True, "negZero": True, "s": "é"}
    }
    assert re.fullmatch(r"\d+n", out["internalAdmin"]["ok"])  # a bigint count
    assert out["functionAdmin"] == {"ok": []}
    assert out["actingWhoami"] == {"ok": "acted-user"}
    assert out["userWhoami"] == {"ok": "npm-user"}
