"""The push protocol of the official CLI over HTTP, against a real `headwater serve`.

Module sets are made by our own bundler (``udf.bundler.bundle``); the calls and
bodies are those of npm convex 1.48 (brotli-compressed where the CLI compresses).
Every refusal is checked to change nothing: the stored module hashes and what a
function answers stay as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import brotli
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_process import Serve, headwater  # noqa: E402

from gateway.http_errors import HttpError  # noqa: E402
from gateway.push_api import _decoded  # noqa: E402
from udf.bundler import bundle  # noqa: E402

pytestmark = pytest.mark.slow

SCHEMA = """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  notes: defineTable({ text: v.string() })%s,
});
"""
NOTES = """
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const list = query({ args: {}, handler: async (ctx) =>
  (await ctx.db.query("notes").collect()).map((n) => n.text) });
export const add = mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => {
  await ctx.db.insert("notes", { text }); } });
"""
HELLO = """
import { query } from "./_generated/server";
export const greet = query({ args: {}, handler: async () => "%s" });
"""


def make_app(root: Path, name: str, files: dict[str, str]) -> tuple:
    folder = root / name / "convex"
    folder.mkdir(parents=True)
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return bundle(folder).modules


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    root = tmp_path_factory.mktemp("apps")
    base = {"notes.ts": NOTES, "hello.ts": HELLO % "v1", "schema.ts": SCHEMA % ""}
    return {
        "v1": make_app(root, "v1", base),
        "v2": make_app(root, "v2", {**base, "hello.ts": HELLO % "v2"}),
        "indexed": make_app(
            root, "indexed", {**base, "schema.ts": SCHEMA % '.index("by_text", ["text"])'}
        ),
        "strict": make_app(
            root,
            "strict",
            {**base, "schema.ts": SCHEMA.replace("v.string()", "v.number()") % ""},
        ),
        "throws": make_app(
            root, "throws", {**base, "boom.ts": 'export const x = 1;\nthrow new Error("boom");\n'}
        ),
        "root": root,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Serve(tmp_path_factory.mktemp("push") / "data") as running:
        yield running


# --- the wire --------------------------------------------------------------------


def post(server, route, body, *, key=None, compress=False, raw=None, headers=None):
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", "Convex-Client": "npm-cli-1.48.0"}
    if key != "":
        sent["Authorization"] = f"Convex {key or server.admin_key}"
    if compress:
        data = brotli.compress(data) if raw is None else data
        sent["Content-Encoding"] = "br"
    sent.update(headers or {})
    request = urllib.request.Request(server.url + route, data=data, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def module_json(m):
    found = {"path": m.path, "source": m.source, "environment": m.environment}
    if m.source_map is not None:
        found["sourceMap"] = m.source_map
    return found


def push_body(server, modules, *, unchanged=(), dry_run=False, version="1.48.0", **app):
    schema = next((m for m in modules if m.path == "schema.js"), None)
    return {
        "adminKey": server.admin_key,
        "dryRun": dry_run,
        "functions": "convex/",
        "appDefinition": {
            "definition": None,
            "dependencies": [],
            "schema": None if schema is None else module_json(schema),
            "changedModules": [module_json(m) for m in modules if m.path != "schema.js"],
            "unchangedModuleHashes": list(unchanged),
            "udfServerVersion": version,
            **app,
        },
        "componentDefinitions": [],
        "nodeDependencies": [],
    }


def hashes(server):
    status, body = post(server, "/api/get_config_hashes", {"adminKey": server.admin_key})
    assert status == 200, body
    return {h["path"]: h["hash"] for h in body["moduleHashes"]}


def start(server, modules, **kwargs):
    status, body = post(
        server, "/api/deploy2/start_push", push_body(server, modules, **kwargs), compress=True
    )
    assert status == 200, body
    return body


def wait(server, started, timeout_ms=10000):
    body = {"adminKey": server.admin_key, "schemaChange": started["schemaChange"]}
    status, answer = post(server, "/api/deploy2/wait_for_schema", {**body, "timeoutMs": timeout_ms})
    assert status == 200, answer
    return answer


def finish(server, started, dry_run=False):
    body = {"adminKey": server.admin_key, "startPush": started, "dryRun": dry_run}
    return post(server, "/api/deploy2/finish_push", body, compress=True)


def push(server, modules, **kwargs):
    started = start(server, modules, **kwargs)
    assert wait(server, started) == {"type": "complete"}
    status, diff = finish(server, started)
    assert status == 200, diff
    return started, diff


def run(server, path, args=None, kind="query"):
    request = urllib.request.Request(
        f"{server.url}/api/{kind}",
        data=json.dumps({"path": path, "args": args or {}, "format": "json"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return answer.get("value") if answer["status"] == "success" else answer["errorMessage"]


# --- pushes that work ----------------------------------------------------------------


def test_a_push_in_the_cli_shapes_then_an_incremental_one(server, apps):
    started, diff = push(server, apps["v1"])
    root = started["analysis"][""]
    assert root["definition"]["childComponents"] == [] and started["app"]["componentPath"] == ""
    notes = root["functions"]["notes.js"]["functions"]
    assert {f["name"]: f["udfType"] for f in notes} == {"list": "Query", "add": "Mutation"}
    assert json.loads(next(f["args"] for f in notes if f["name"] == "add"))["type"] == "object"
    assert root["schema"]["tables"][0]["tableName"] == "notes"
    assert set(started["schemaChange"]["indexDiffs"][""]) >= {"added_indexes", "removed_indexes"}
    assert "hello.js" in diff["componentDiffs"][""]["moduleDiff"]["added"]
    assert run(server, "hello:greet") == "v1"
    run(server, "notes:add", {"text": "kept"}, kind="mutation")

    held = hashes(server)
    assert set(held) >= {"notes.js", "hello.js", "schema.js"}
    changed = [m for m in apps["v2"] if held.get(m.path) != m.sha256]
    assert [m.path for m in changed] == ["hello.js"]
    unchanged = [
        {"path": m.path, "environment": "isolate", "sha256": m.sha256}
        for m in apps["v2"]
        if held.get(m.path) == m.sha256 and m.path != "schema.js"
    ]
    push(server, changed + [m for m in apps["v2"] if m.path == "schema.js"], unchanged=unchanged)
    assert run(server, "hello:greet") == "v2"
    assert run(server, "notes:list") == ["kept"]
    assert hashes(server)["hello.js"] != held["hello.js"]


def test_an_added_index_is_reported_and_a_dry_run_changes_nothing(server, apps):
    push(server, apps["v1"])
    before = hashes(server)
    started = start(server, apps["indexed"], dry_run=True)
    added = started["schemaChange"]["indexDiffs"][""]["added_indexes"]
    assert added == [
        {"name": "notes.by_text", "type": "database", "fields": ["text"], "staged": False}
    ]
    status, diff = finish(server, started, dry_run=True)
    assert status == 200 and diff == {
        "authDiff": {"added": [], "removed": []},
        "definitionDiffs": {},
        "componentDiffs": {},
    }
    assert hashes(server) == before
    status, evaluated = post(
        server, "/api/deploy2/evaluate_push", push_body(server, apps["indexed"]), compress=True
    )
    assert status == 200 and evaluated["schemaChange"]["indexDiffs"][""]["added_indexes"] == added
    assert hashes(server) == before
    _, diff = push(server, apps["indexed"])
    assert diff["componentDiffs"][""]["indexDiff"]["added_indexes"] == added
    assert diff["componentDiffs"][""]["schemaDiff"]["next_schema"] is not None


def test_the_other_routes(server):
    status, body = post(
        server, "/api/deploy2/report_push_completed", {"adminKey": server.admin_key, "spans": []}
    )
    assert status == 200 and body is None
    request = urllib.request.Request(
        server.url + "/api/v1/get_canonical_urls",
        headers={"Authorization": f"Convex {server.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["convexCloudUrl"] == server.url
    status, _ = post(server, "/api/deploy2/evaluate_schema", {"adminKey": server.admin_key})
    assert status == 404


# --- bad input: refused with the reference's code, nothing changed -------------------


def unchanged_after(server, refuse):
    before = hashes(server)
    greeting = run(server, "hello:greet")
    refuse()
    assert hashes(server) == before
    assert run(server, "hello:greet") == greeting


@pytest.mark.parametrize(
    ("key", "status", "code"), [("not-the-key", 401, "BadAdminKey"), ("", 403, "BadDeployKey")]
)
def test_the_admin_key_is_required(server, apps, key, status, code):
    push(server, apps["v1"])

    def refuse():
        body = push_body(server, apps["v2"])
        body["adminKey"] = key or None
        got = post(server, "/api/deploy2/start_push", body, key=key, compress=True)
        assert got[0] == status and got[1]["code"] == code, got
        got = post(server, "/api/get_config_hashes", {"adminKey": key or None}, key=key)
        assert got[0] == status and got[1]["code"] == code, got

    unchanged_after(server, refuse)


@pytest.mark.parametrize("version", ["0.19.0", "2.0.0"])
def test_client_versions_outside_what_the_server_accepts(server, apps, version):
    def refuse():
        got = post(
            server,
            "/api/deploy2/start_push",
            push_body(server, apps["v2"], version=version),
            compress=True,
        )
        assert got[0] == 400 and got[1]["code"] == "ClientVersionUnsupported", got
        assert version in got[1]["message"]

    unchanged_after(server, refuse)


def test_malformed_bodies(server, apps):
    whole = brotli.compress(json.dumps(push_body(server, apps["v2"])).encode())

    def refuse():
        cases = [
            (b"{not json", False, "BadJsonBody"),
            (b"\x8b\x00garbage that is not brotli", True, "BadCompressedBody"),
            (whole[: len(whole) // 2], True, "BadCompressedBody"),
            (brotli.compress(b"[1, 2]"), True, "BadJsonBody"),
        ]
        for raw, compressed, code in cases:
            got = post(server, "/api/deploy2/start_push", None, raw=raw, compress=compressed)
            assert got[0] == 400 and got[1]["code"] == code, (raw[:20], got)

    unchanged_after(server, refuse)


def test_decompressed_size_is_bounded():
    big = brotli.compress(b" " * 10_000)
    assert _decoded(big, "br", 10_000) == b" " * 10_000
    with pytest.raises(HttpError) as refused:
        _decoded(big, "br", 9_999)
    assert refused.value.status == 413 and refused.value.code == "PayloadTooLarge"


def test_an_unknown_unchanged_module_hash(server, apps):
    def refuse():
        named = [{"path": "hello.js", "environment": "isolate", "sha256": "0" * 64}]
        modules = [m for m in apps["v2"] if m.path != "hello.js"]
        body = push_body(server, modules, unchanged=named)
        got = post(server, "/api/deploy2/start_push", body, compress=True)
        assert got[0] == 409 and got[1]["code"] == "ExistingModuleHashConflict", got
        named = [{"path": "gone.js", "environment": "isolate", "sha256": "0" * 64}]
        got = post(
            server,
            "/api/deploy2/start_push",
            push_body(server, modules, unchanged=named),
            compress=True,
        )
        assert got[0] == 409 and got[1]["code"] == "MissingExistingModule", got

    unchanged_after(server, refuse)


def test_a_module_that_throws_at_import(server, apps):
    def refuse():
        got = post(
            server, "/api/deploy2/start_push", push_body(server, apps["throws"]), compress=True
        )
        assert got[0] == 400, got
        assert got[1]["message"].startswith("Hit an error while pushing:\n")
        assert "boom.js" in got[1]["message"] and "boom" in got[1]["message"]

    unchanged_after(server, refuse)


def test_a_schema_the_data_violates(server, apps):
    push(server, apps["v1"])
    run(server, "notes:add", {"text": "a string"}, kind="mutation")

    def refuse():
        started = start(server, apps["strict"])
        failed = wait(server, started)
        assert failed["type"] == "failed" and failed["tableName"] == "notes", failed
        assert 'in table "notes" does not match the schema' in failed["error"]
        assert failed["error"].startswith('Document with ID "')
        got = finish(server, started)
        assert got[0] == 400 and got[1]["code"] == "SchemaValidationFailed", got

    unchanged_after(server, refuse)


def test_two_pushes_racing(server, apps):
    push(server, apps["v1"])
    first = start(server, apps["v2"])
    second = start(server, apps["v1"])
    assert finish(server, second)[0] == 200
    assert wait(server, first) == {"type": "raceDetected"}

    def refuse():
        got = finish(server, first)
        assert got[0] == 400 and got[1]["code"] == "RaceDetected", got

    unchanged_after(server, refuse)


def test_finish_of_a_push_never_started_or_already_finished(server, apps):
    started, _ = push(server, apps["v1"])

    def refuse():
        got = finish(server, started)
        assert got[0] == 400 and got[1]["code"] == "PushAlreadyFinished", got
        forged = {**started, "headwaterPushId": "never-started"}
        got = finish(server, forged)
        assert got[0] == 400 and got[1]["code"] == "PushNotStarted", got

    unchanged_after(server, refuse)


def test_a_broken_app_definition_is_refused_and_node_modules_are_stored(server, apps):
    def refuse():
        definition = {
            "path": "convex.config.js",
            "source": "export default {}",
            "environment": "isolate",
        }
        body = push_body(server, apps["v2"], definition=definition)
        got = post(server, "/api/deploy2/start_push", body, compress=True)
        assert got[0] == 400 and got[1]["code"] == "InvalidDefinition", got
        assert "convex.config.js" in got[1]["message"]

    unchanged_after(server, refuse)
    node = type(apps["v1"][0])("actions/send.js", "export const send = 1;", None, "node")
    push(server, (*apps["v1"], node))
    assert "actions/send.js" in hashes(server)
    # Loaded in Node.js at push time: an export that is no function defines nothing.
    message = run(server, "actions/send:send", kind="action")
    assert "Could not find public function for 'actions/send:send'" in message


def test_headwater_deploy_pushes_only_changed_modules_and_resolves_outside_imports(
    server, tmp_path
):
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "lib" / "format.ts").write_text('export const shout = (s: string) => s + "!";\n')
    functions = project / "convex"
    functions.mkdir()
    (functions / "hello.ts").write_text(
        'import { query } from "./_generated/server";\nimport { shout } from "../lib/format";\n'
        'export const greet = query({ args: {}, handler: async () => shout("lib") });\n'
    )
    where = ("--url", server.url, "--admin-key", server.admin_key, "--allow-empty")
    done = headwater("deploy", str(functions), *where)
    assert done.returncode == 0, done.stderr
    assert "Deployed 1 functions" in done.stdout
    assert run(server, "hello:greet") == "lib!"
    held = hashes(server)
    (project / "lib" / "format.ts").write_text('export const shout = (s: string) => s + "?";\n')
    done = headwater("deploy", str(functions), *where)
    assert done.returncode == 0, done.stderr
    assert run(server, "hello:greet") == "lib?"
    after = hashes(server)
    assert {p for p in after if after[p] != held.get(p)} == {"hello.js"}


# --- the answers pass the official CLI's own validation ------------------------------


def cli_accepts(kind: str, value: object) -> None:
    from udf.node import JS_DIR, node_executable

    done = subprocess.run(
        [node_executable(), str(Path(__file__).parent / "js" / "push_shapes.mjs"), str(JS_DIR)],
        input=json.dumps({"kind": kind, "value": value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True}, (kind, done.stdout)


def test_every_answer_passes_the_cli_schemas(server, apps):
    push(server, apps["v1"])
    started = start(server, apps["indexed"])
    cli_accepts("startPush", started)
    cli_accepts("schemaStatus", wait(server, started))
    status, diff = finish(server, started)
    assert status == 200
    cli_accepts("finishPush", diff)
    _, evaluated = post(
        server, "/api/deploy2/evaluate_push", push_body(server, apps["v1"]), compress=True
    )
    cli_accepts("evaluatePush", evaluated)
    cli_accepts("finishPush", finish(server, start(server, apps["v1"], dry_run=True), True)[1])
    cli_accepts(
        "schemaStatus",
        {
            "type": "inProgress",
            "components": {
                "": {"schemaValidationComplete": False, "indexesComplete": 0, "indexesTotal": 1}
            },
        },
    )
    started = start(server, apps["v1"])
    cli_accepts("startPush", {**started, "headwaterPushId": None} | {"headwaterPushId": "x"})
    finish(server, started)
