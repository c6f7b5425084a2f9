"""The official CLI (npm convex 1.48) pushes code to `headwater serve`: deploy, dry run,
verbose, dev --once and the dev watch loop, with nothing but the self-hosted URL and key.

The app's module imports ``../lib/...`` (outside convex/), as real apps do. Each refusal
(a module that throws at import, a schema the data violates, a bundle error) shows its
error in the CLI's output and changes nothing on the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
import convex_cli  # noqa: E402
from cli_process import CONVEX_CLI, Serve, convex_cli_env  # noqa: E402

pytestmark = pytest.mark.slow
STEP_TIMEOUT_S = 120
DEV_LOOP_TIMEOUT_S = 60

SCHEMA = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  messages: defineTable({ body: %s }).index("by_body", ["body"]),
});
"""
MESSAGES = """import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
import { decorate } from "../lib/format";
export const list = query({ args: {}, handler: async (ctx) =>
  (await ctx.db.query("messages").collect()).map((m) => decorate(m.body)) });
export const send = mutation({ args: { body: v.string() }, handler: async (ctx, { body }) => {
  await ctx.db.insert("messages", { body }); } });
"""
GREETING = """import { query } from "./_generated/server";
export const hello = query({ args: {}, handler: async () => "%s" });
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-push")
    project = root / "project"
    (project / "convex").mkdir(parents=True)
    (project / "lib").mkdir()
    (project / "package.json").write_text('{"name": "push-test", "dependencies": {"convex": "*"}}')
    (project / "node_modules").symlink_to(ROOT / "js" / "node_modules")
    (project / "lib" / "format.ts").write_text("export const decorate = (s: string) => `<${s}>`;\n")
    (project / "convex" / "messages.ts").write_text(MESSAGES)
    (project / "convex" / "greeting.ts").write_text(GREETING % "one")
    (project / "convex" / "schema.ts").write_text(SCHEMA % "v.string()")
    with Serve(root / "data") as server:
        server.project = project
        yield server


def npx_convex(server, *args, timeout_s=STEP_TIMEOUT_S):
    return convex_cli.npx_convex(server, *args, timeout_s=timeout_s)


def call(server, path, args=None, kind="query"):
    request = urllib.request.Request(
        f"{server.url}/api/{kind}",
        data=json.dumps({"path": path, "args": args or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return answer["value"] if answer["status"] == "success" else answer["errorMessage"]


def hashes(server):
    request = urllib.request.Request(
        server.url + "/api/get_config_hashes",
        data=json.dumps({"adminKey": server.admin_key, "version": "1.48.0"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return {h["path"]: h["hash"] for h in json.loads(response.read())["moduleHashes"]}


def output(done):
    return done.stdout + done.stderr


def test_deploy_then_a_one_module_change(app):
    done = npx_convex(app, "deploy", "--yes")
    assert done.returncode == 0, output(done)
    assert "messages.by_body" in output(done)  # the added index, from the push's diff
    call(app, "messages:send", {"body": "hi"}, kind="mutation")
    assert call(app, "messages:list") == ["<hi>"]
    assert call(app, "greeting:hello") == "one"

    # The first deploy bundled before its final codegen rewrote _generated/ (which the
    # shared chunk holds); from the second on, an unchanged module bundles the same.
    assert npx_convex(app, "deploy", "--yes").returncode == 0
    before = hashes(app)
    (app.project / "convex" / "greeting.ts").write_text(GREETING % "two")
    done = npx_convex(app, "deploy", "--yes", "--verbose")
    assert done.returncode == 0, output(done)
    after = hashes(app)
    assert {p for p in after if after[p] != before.get(p)} == {"greeting.js"}
    assert call(app, "greeting:hello") == "two"
    assert call(app, "messages:list") == ["<hi>"]

    # Code outside convex/ is bundled in: changing it changes what the function does.
    (app.project / "lib" / "format.ts").write_text(
        "export const decorate = (s: string) => `[${s}]`;\n"
    )
    done = npx_convex(app, "deploy", "--yes")
    assert done.returncode == 0, output(done)
    assert call(app, "messages:list") == ["[hi]"]


def test_dry_run_changes_nothing(app):
    npx_convex(app, "deploy", "--yes")
    before = hashes(app)
    (app.project / "convex" / "greeting.ts").write_text(GREETING % "dry")
    done = npx_convex(app, "deploy", "--dry-run")
    assert done.returncode == 0, output(done)
    assert "Would have deployed" in output(done)
    assert hashes(app) == before
    assert call(app, "greeting:hello") != "dry"


def test_dev_once(app):
    (app.project / "convex" / "greeting.ts").write_text(GREETING % "from dev")
    done = npx_convex(app, "dev", "--once")
    assert done.returncode == 0, output(done)
    assert call(app, "greeting:hello") == "from dev"


def test_a_module_that_throws_at_import_is_refused(app):
    npx_convex(app, "deploy", "--yes")
    before = hashes(app)
    broken = app.project / "convex" / "broken.ts"
    broken.write_text('export const x = 1;\nthrow new Error("broken at import");\n')
    try:
        done = npx_convex(app, "deploy", "--yes")
    finally:
        broken.unlink()
    assert done.returncode != 0
    assert "Hit an error while pushing" in output(done) and "broken at import" in output(done)
    assert hashes(app) == before


def test_a_bundle_error_is_refused(app):
    before = hashes(app)
    broken = app.project / "convex" / "syntax.ts"
    broken.write_text("export const = ;\n")
    try:
        done = npx_convex(app, "deploy", "--yes")
    finally:
        broken.unlink()
    assert done.returncode != 0
    assert "syntax.ts" in output(done)
    assert hashes(app) == before


def test_a_schema_the_data_violates_is_refused(app):
    npx_convex(app, "deploy", "--yes")
    call(app, "messages:send", {"body": "a string"}, kind="mutation")
    before = hashes(app)
    schema = app.project / "convex" / "schema.ts"
    schema.write_text(SCHEMA % "v.number()")
    try:
        done = npx_convex(app, "deploy", "--yes")
    finally:
        schema.write_text(SCHEMA % "v.string()")
    assert done.returncode != 0
    assert "Schema validation failed" in output(done), output(done)
    assert 'in table "messages" does not match the schema' in output(done)
    assert hashes(app) == before


def test_the_dev_loop_pushes_a_changed_file(app):
    npx_convex(app, "deploy", "--yes")
    process = subprocess.Popen(
        [str(CONVEX_CLI), "dev"],
        cwd=app.project,
        env=convex_cli_env(app.url, app.admin_key),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEV_LOOP_TIMEOUT_S
        changed = False
        while time.monotonic() < deadline:
            if not changed and call(app, "greeting:hello") != "":
                time.sleep(2)  # let the first push and the watcher settle
                (app.project / "convex" / "greeting.ts").write_text(GREETING % "watched")
                changed = True
            if changed and call(app, "greeting:hello") == "watched":
                break
            time.sleep(0.5)
        assert call(app, "greeting:hello") == "watched"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
