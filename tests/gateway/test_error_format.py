"""Errors read exactly as Convex writes them, on every path a user sees them: the HTTP API
(``errorMessage`` + ``errorData``), the official npm client over the sync protocol, and
``npx convex run``. One app (``tests/udf/fixtures/errors``) behind a real ``headwater serve``.

Where each text comes from (get-convex/convex-backend):
- ``Uncaught <Name>: <message>`` and the frames below it: crates/isolate/src/helpers.rs
  ``format_uncaught_error``, crates/common/src/errors.rs ``JsError`` (Display ends every
  line, the last one too, with a newline), crates/isolate/src/error.rs (a thrown value that
  is no Error: V8's own "Uncaught <value>", no frames);
- ``[Request ID: X] Server Error\\n``: crates/application/src/redaction.rs;
- a nested call's failure, whole, as the caller's error message (one "Uncaught" per hop):
  crates/isolate/src/environment/action/async_syscall.rs and udf/async_syscall.rs
  (``result?`` through ``From<JsError> for anyhow::Error``), the npm client's
  ``performAsyncSyscall`` rethrowing it with the ConvexError data;
- not found, wrong kind, argument and return validation: crates/udf/src/validation.rs,
  crates/application/src/lib.rs (``any_udf``), crates/model/src/modules/function_validators.rs;
- a staged index: crates/indexing/src/index_registry.rs ``index_staged_error``;
- the npm client's own wrapping: npm-packages/convex/src/browser/logging.ts
  ``createHybridErrorStacktrace``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_process import ENV, ROOT, Serve  # noqa: E402
from convex_cli import make_project, npx_convex  # noqa: E402

pytestmark = pytest.mark.slow

ERRORS_APP = ROOT / "tests" / "udf" / "fixtures" / "errors" / "convex"
NODE = shutil.which("node")
REQUEST_ID = re.compile(r"^\[Request ID: [0-9a-f]+\] Server Error\n")

PLAIN = "Uncaught Error: boom\n    at handler (../convex/throws.ts:8:11)"
CONVEX_ERROR = (
    'Uncaught ConvexError: {"code":"NOPE","n":1}\n    at handler (../convex/throws.ts:15:11)'
)
ARGS_INVALID = (
    "ArgumentValidationError: Value does not match validator.\n"
    "Path: .n\n"
    'Value: "x"\n'
    "Validator: v.float64()"
)

# (name, endpoint, path, args, the JsError text (without its final newline), errorData)
CASES = [
    ("throw", "query", "throws:plain", {}, PLAIN, None),
    ("convexError", "mutation", "throws:convexError", {}, CONVEX_ERROR, {"code": "NOPE", "n": 1}),
    (
        "convexErrorString",
        "query",
        "throws:convexErrorString",
        {},
        "Uncaught ConvexError: just text\n    at handler (../convex/throws.ts:22:11)",
        "just text",
    ),
    ("notAnError", "query", "throws:throwsString", {}, "Uncaught a string", None),
    (
        "typeError",
        "query",
        "throws:typeError",
        {},
        "Uncaught TypeError: Cannot read properties of undefined (reading 'field')\n"
        "    at handler (../convex/throws.ts:37:20)",
        None,
    ),
    (
        "helperFrames",
        "query",
        "throws:viaHelper",
        {},
        "Uncaught Error: deep\n"
        "    at helper (../convex/throws.ts:42:9)\n"
        "    at handler (../convex/throws.ts:48:5)",
        None,
    ),
    (
        "internal",
        "query",
        "throws:secret",
        {},
        "Could not find public function for 'throws:secret'.",
        None,
    ),
    (
        "missing",
        "query",
        "throws:nope",
        {},
        "Could not find public function for 'throws:nope'.",
        None,
    ),
    (
        "wrongKind",
        "mutation",
        "throws:plain",
        {},
        "Trying to execute throws.js:plain as Mutation, but it is defined as Query.",
        None,
    ),
    (
        "httpActionAsQuery",
        "query",
        "throws:hook",
        {},
        "Trying to execute throws.js:hook as Query, but it is defined as HttpAction.",
        None,
    ),
    ("badArgs", "query", "throws:typed", {"n": "x"}, ARGS_INVALID, None),
    (
        "badReturn",
        "query",
        "throws:typed",
        {"n": 1, "s": "bad"},
        "ReturnsValidationError: Value does not match validator.\nValue: 7\nValidator: v.string()",
        None,
    ),
    (
        "nestedQuery",
        "mutation",
        "throws:nestedQuery",
        {},
        f"Uncaught Error: {PLAIN}\n\n    at async handler (../convex/throws.ts:66:5)",
        None,
    ),
    (
        "nestedConvexError",
        "mutation",
        "throws:nestedConvexError",
        {},
        f"Uncaught ConvexError: {CONVEX_ERROR}\n\n    at async handler (../convex/throws.ts:73:5)",
        {"code": "NOPE", "n": 1},
    ),
    (
        "nestedMissing",
        "mutation",
        "throws:nestedMissing",
        {},
        "Uncaught Error: Could not find public function for 'throws:nope'.\n"
        "    at async handler (../convex/throws.ts:80:5)",
        None,
    ),
    (
        "nestedBadArgs",
        "mutation",
        "throws:nestedBadArgs",
        {},
        f"Uncaught Error: {ARGS_INVALID}\n    at async handler (../convex/throws.ts:87:5)",
        None,
    ),
    (
        "actionRunsQuery",
        "action",
        "throws:actionRunsQuery",
        {},
        f"Uncaught Error: {PLAIN}\n\n    at async handler (../convex/throws.ts:94:5)",
        None,
    ),
    (
        "actionConvexError",
        "action",
        "throws:actionConvexError",
        {},
        f"Uncaught ConvexError: {CONVEX_ERROR}\n\n    at async handler (../convex/throws.ts:101:5)",
        {"code": "NOPE", "n": 1},
    ),
    (
        "stagedIndex",
        "query",
        "throws:staged",
        {},
        "Uncaught Error: Index notes.by_body is currently staged and not available to query "
        "until it is enabled.\n    at async handler (../convex/throws.ts:126:12)",
        None,
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    project = make_project(root, ERRORS_APP, "errors-test")
    with Serve(root / "data", "--functions", str(project / "convex")) as running:
        running.project = project
        yield running


def post(server, endpoint, path, args, *, admin=False):
    headers = {"Authorization": f"Convex {server.admin_key}"} if admin else {}
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        response = client.post(
            f"/api/{endpoint}", json={"path": path, "args": args}, headers=headers
        )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("endpoint", "path", "args", "text", "data"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_http_api_error_messages(server, endpoint, path, args, text, data):
    body = post(server, endpoint, path, args)
    assert body["status"] == "error"
    assert REQUEST_ID.match(body["errorMessage"]), body["errorMessage"]
    assert REQUEST_ID.sub("", body["errorMessage"]) == text + "\n"
    assert body.get("errorData") == data


def test_an_action_that_catches_a_nested_convex_error_sees_its_text_and_data(server):
    body = post(server, "action", "throws:actionCatches", {})
    assert body["value"] == {
        "name": "ConvexError",
        "message": CONVEX_ERROR + "\n",
        "data": {"code": "NOPE", "n": 1},
    }


@pytest.mark.parametrize("path", ["throws:nope", "throws:hook"])
def test_any_function_endpoint_says_could_not_find_function(server, path):
    body = post(server, "function", path, {}, admin=True)
    assert REQUEST_ID.sub("", body["errorMessage"]) == (
        f"Could not find function for '{path}'. Did you forget to run `npx convex dev`?\n"
    )


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_npm_client_over_sync_sees_the_same_texts(server):
    prefixes = {"query": "Q", "mutation": "M", "action": "A"}
    calls = [[name, endpoint, path, args] for name, endpoint, path, args, _, _ in CASES]
    done = subprocess.run(
        [
            NODE,
            str(Path(__file__).parent / "js" / "error_client.mjs"),
            server.url,
            str(ROOT / "js"),
            json.dumps(calls),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for name, endpoint, path, _, text, data in CASES:
        got = seen[name]
        lead = f"[CONVEX {prefixes[endpoint]}({path})] "
        assert got["message"].startswith(lead), got
        rest = REQUEST_ID.sub("", got["message"][len(lead) :])
        assert rest == text + "\n\n  Called by client", (name, rest)
        assert got["data"] == data and got["isConvexError"] == (data is not None), got


def test_npx_convex_run_prints_the_error_and_the_functions_it_knows(server):
    done = npx_convex(server, "run", "throws:plain")
    assert done.returncode == 1
    assert 'Failed to run function "throws:plain":' in done.stderr
    assert PLAIN in done.stderr
    missing = npx_convex(server, "run", "throws:nope")
    assert missing.returncode == 1
    assert "Could not find function for 'throws:nope'. Did you forget to run `npx convex dev`?" in (
        missing.stderr
    )
    assert "Available functions:" in missing.stderr and "throws:plain" in missing.stderr
