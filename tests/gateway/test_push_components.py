"""Component pushes over the official CLI's deploy2 routes, against a real ``headwater serve``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from component_configs import config

sys.path.insert(0, str(Path(__file__).parent))
from cli_process import Serve  # noqa: E402
from test_push_api import finish, hashes, make_app, module_json, post, push_body, wait  # noqa: E402

pytestmark = pytest.mark.slow

LIMITER = "../node_modules/@convex-dev/limiter/dist/component"
LIB = """
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const check = query({ args: { key: v.string() }, handler: async () => true });
export const take = mutation({ args: { key: v.string() }, handler: async () => null });
"""
SCHEMA = """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ tokens: defineTable({ key: v.string() }).index("by_key", ["key"]) });
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    root = tmp_path_factory.mktemp("code")
    app = make_app(root, "app", {"notes.ts": LIB})
    limiter = make_app(root, "limiter", {"lib.ts": LIB, "schema.ts": SCHEMA})
    return app, limiter


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Serve(tmp_path_factory.mktemp("push") / "data") as running:
        yield running


def body_with(server, code, uses, padding=""):
    app, limiter = code
    schema = next(m for m in limiter if m.path == "schema.js")
    functions = [module_json(m) for m in limiter if m.path != "schema.js"]
    if padding:
        functions.append({"path": "padding.js", "source": padding, "environment": "isolate"})
    body = push_body(
        server,
        app,
        definition=module_json(config("app", uses=uses)),
        dependencies=[LIMITER],
    )
    body["componentDefinitions"] = [
        {
            "definitionPath": LIMITER,
            "definition": module_json(config("component", "limiter")),
            "dependencies": [],
            "schema": module_json(schema),
            "functions": functions,
            "udfServerVersion": "1.48.0",
        }
    ]
    return body


def test_two_instances_over_http(server, code):
    body = body_with(server, code, [(LIMITER, {}), (LIMITER, {"name": "second"})])
    status, started = post(server, "/api/deploy2/start_push", body, compress=True)
    assert status == 200, started
    child = started["analysis"][LIMITER]
    assert child["definition"]["definitionType"]["type"] == "childComponent"
    assert {f["name"] for f in child["functions"]["lib.js"]["functions"]} == {"check", "take"}
    assert child["schema"]["tables"][0]["tableName"] == "tokens"
    root = started["analysis"][""]["definition"]
    assert [c["name"] for c in root["childComponents"]] == ["limiter", "second"]
    assert set(started["app"]["childComponents"]) == {"limiter", "second"}
    assert started["app"]["childComponents"]["second"]["definitionPath"] == LIMITER
    added = started["schemaChange"]["indexDiffs"]["second"]["added_indexes"]
    assert [d["name"] for d in added] == ["tokens.by_key"]
    assert wait(server, started) == {"type": "complete"}
    status, diff = finish(server, started)
    assert status == 200, diff
    assert diff["componentDiffs"]["limiter"]["diffType"] == {"type": "create"}
    assert "lib.js" in diff["componentDiffs"]["second"]["moduleDiff"]["added"]


def test_refusals_over_http_change_nothing(server, code):
    before = hashes(server)
    duplicate = body_with(server, code, [(LIMITER, {}), (LIMITER, {})])
    status, got = post(server, "/api/deploy2/start_push", duplicate, compress=True)
    assert status == 400 and got["code"] == "TypecheckError", got
    assert "multiple child components with the same name" in got["message"]
    missing = body_with(server, code, [(LIMITER, {})])
    missing["componentDefinitions"] = []
    status, got = post(server, "/api/deploy2/start_push", missing, compress=True)
    assert status == 400 and "Component definition not found" in got["message"], got
    assert hashes(server) == before


def test_a_multi_megabyte_component_push_is_accepted(server, code):
    padding = "export const blob = " + json.dumps("x" * (6 << 20)) + ";\n"
    body = body_with(server, code, [(LIMITER, {})], padding)
    status, started = post(server, "/api/deploy2/evaluate_push", body, compress=True)
    assert status == 200, started
    assert "indexDiffs" in started["schemaChange"]
