"""Pushes with component definitions (``convex.config``): tree, storage, schemas, refusals."""

from __future__ import annotations

import json

import pytest
from component_configs import config

from engine import Database
from engine.errors import HeadwaterError, SchemaValidationError
from engine.system_tables import CRON_JOBS_TABLE, SYSTEM_TABLE_NUMBERS
from gateway.push_shapes import schema_status
from udf.bundler import bundle
from udf.component_tree import DefinitionUpload
from udf.deployment import load_deployment
from udf.executor import Executor
from udf.push import PushRequest, SchemaCheck, commit_push, prepare_push

LIMITER = "../node_modules/limiter/dist/component"
COUNTER = "../node_modules/counter/dist/component"

LIMITER_SCHEMA = """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ tokens: defineTable({ key: %s }).index("by_key", ["key"]) });
"""
LIMITER_LIB = """
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const check = query({ args: { key: v.string() }, handler: async () => true });
export const take = mutation({ args: { key: v.string() }, handler: async () => null });
"""


def functions_of(root, name, files):
    folder = root / name / "convex"
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    modules = bundle(folder).modules
    schema = next((m for m in modules if m.path == "schema.js"), None)
    return tuple(m for m in modules if m.path != "schema.js"), schema


def definition(path, name, functions, schema, uses=()):
    return DefinitionUpload(
        path, config("component", name, uses), tuple(p for p, _ in uses), schema, functions
    )


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    root = tmp_path_factory.mktemp("components")
    app = functions_of(root, "app", {"notes.ts": LIMITER_LIB})[0]
    limiter = functions_of(
        root, "limiter", {"lib.ts": LIMITER_LIB, "schema.ts": LIMITER_SCHEMA % "v.string()"}
    )
    strict = functions_of(
        root, "strict", {"lib.ts": LIMITER_LIB, "schema.ts": LIMITER_SCHEMA % "v.number()"}
    )
    return {"app": app, "limiter": limiter, "strict": strict}


@pytest.fixture
def executor(tmp_path):
    with Database.open(tmp_path / "data") as db:
        ex = Executor(db)
        yield ex
        ex.close()


def active_schema(ex):
    tx = ex.db.begin(writable=False)
    try:
        return tx.schema()
    finally:
        tx.close()


def push(ex, request):
    return commit_push(ex, prepare_push(ex, request))


def two_limiters(code, limiter=None):
    functions, schema = limiter or code["limiter"]
    return PushRequest(
        code["app"],
        app_definition=config("app", uses=[(LIMITER, {}), (LIMITER, {"name": "second"})]),
        app_dependencies=(LIMITER,),
        components=(definition(LIMITER, "limiter", functions, schema),),
    )


def test_two_instances_of_one_definition_share_its_modules(executor, code):
    committed = push(executor, two_limiters(code))
    deployment = committed.deployment
    assert sorted(deployment.tree.instances) == ["", "limiter", "second"]
    for path in ("limiter", "second"):
        child = deployment.for_component(path)
        assert child is not None and child.function("lib.js", "check").kind == "query"
        assert json.loads(child.function("lib.js", "check").args_json)["type"] == "object"
    # Each instance has its own tables, with the definition's indexes.
    schema = active_schema(executor)
    assert {"limiter/tokens", "second/tokens"} <= set(schema.tables)
    assert schema.find_index("second/tokens", "by_key") is not None
    stored = load_deployment(executor.db)
    assert stored.tree == deployment.tree
    assert stored.for_component("second").function("lib.js", "take").kind == "mutation"
    assert [m.path for m in stored.for_component("limiter").modules] == [
        m.path for m in deployment.for_component("limiter").modules
    ]


def test_nested_components_get_paths_below_their_parent(executor, code):
    functions, schema = code["limiter"]
    request = PushRequest(
        code["app"],
        app_definition=config("app", uses=[(COUNTER, {})]),
        app_dependencies=(COUNTER,),
        components=(
            definition(COUNTER, "counter", functions, None, uses=[(LIMITER, {"name": "inner"})]),
            definition(LIMITER, "limiter", functions, schema),
        ),
    )
    deployment = push(executor, request).deployment
    assert sorted(deployment.tree.instances) == ["", "counter", "counter/inner"]
    assert deployment.tree.instance("counter/inner").definition_path == LIMITER
    assert "counter/inner/tokens" in active_schema(executor).tables
    assert deployment.for_component("counter/inner").function("lib.js", "check") is not None


def refused(executor, request, code_name, text):
    before = executor.deployment
    with pytest.raises(HeadwaterError) as caught:
        push(executor, request)
    assert caught.value.code == code_name and text in caught.value.message
    assert executor.deployment is before
    assert load_deployment(executor.db).ts == before.ts


def test_a_definition_not_in_the_push_is_refused(executor, code):
    push(executor, two_limiters(code))
    request = PushRequest(
        code["app"], app_definition=config("app", uses=[(LIMITER, {})]), app_dependencies=()
    )
    refused(executor, request, "TypecheckError", f'Component definition not found: "{LIMITER}"')


def test_two_children_with_one_name_are_refused(executor, code):
    push(executor, two_limiters(code))
    functions, schema = code["limiter"]
    request = PushRequest(
        code["app"],
        app_definition=config("app", uses=[(LIMITER, {}), (LIMITER, {})]),
        app_dependencies=(LIMITER,),
        components=(definition(LIMITER, "limiter", functions, schema),),
    )
    refused(
        executor,
        request,
        "TypecheckError",
        'multiple child components with the same name: "limiter"',
    )


def test_a_definition_cycle_is_refused(executor, code):
    push(executor, two_limiters(code))
    functions, schema = code["limiter"]
    request = PushRequest(
        code["app"],
        app_definition=config("app", uses=[(LIMITER, {})]),
        app_dependencies=(LIMITER,),
        components=(
            definition(LIMITER, "limiter", functions, schema, uses=[(COUNTER, {})]),
            definition(COUNTER, "counter", functions, None, uses=[(LIMITER, {})]),
        ),
    )
    refused(executor, request, "CyclicImport", "Found cyclic definition dependency")


def insert_into_component(executor, table, doc):
    tx = executor.db.begin(writable=True)
    tx.insert(table, doc)
    executor.db.commit(tx)


def test_data_violating_an_upgraded_component_schema_is_refused(executor, code):
    push(executor, two_limiters(code))
    insert_into_component(executor, "second/tokens", {"key": "abc"})
    with pytest.raises(SchemaValidationError) as caught:
        push(executor, two_limiters(code, code["strict"]))
    assert 'table "second/tokens"' in caught.value.message
    assert executor.deployment.for_component("second").module("schema.js").source == (
        code["limiter"][1].source
    )
    # The CLI's wait_for_schema names the component and its table.
    prepared = prepare_push(executor, two_limiters(code, code["strict"]), "p")
    check = SchemaCheck(executor, prepared)
    check.run_inline()
    status = schema_status(check.status())
    assert (status["type"], status["componentPath"], status["tableName"]) == (
        "failed",
        "second",
        "tokens",
    )


NODE_ACTION = """"use node";
import { action } from "./_generated/server";
export const ping = action({ args: {}, handler: async () => "pong" });
"""


def test_a_component_node_action_is_analysed_in_node(executor, code, tmp_path):
    functions, schema = functions_of(
        tmp_path, "noded", {"lib.ts": LIMITER_LIB, "ping.ts": NODE_ACTION}
    )
    assert any(m.environment == "node" for m in functions)
    request = PushRequest(
        code["app"],
        app_definition=config("app", uses=[(LIMITER, {})]),
        app_dependencies=(LIMITER,),
        components=(definition(LIMITER, "limiter", functions, schema),),
    )
    child = push(executor, request).deployment.for_component("limiter")
    assert child.function("ping.js", "ping").kind == "action"
    assert load_deployment(executor.db).for_component("limiter").node_paths == {"ping.js"}


LIMITER_CRONS = """
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";
const crons = cronJobs();
crons.interval("refill", { minutes: 1 }, internal.lib.refill, {});
export default crons;
"""
REFILLING_LIB = """
import { query, internalMutation } from "./_generated/server";
import { v } from "convex/values";
export const check = query({ args: { key: v.string() }, handler: async () => true });
export const refill = internalMutation({ args: {}, handler: async () => null });
"""


def cron_jobs(ex):
    tx = ex.db.begin(writable=False)
    try:
        return [doc for _, doc in tx.snapshot.iter_table(SYSTEM_TABLE_NUMBERS[CRON_JOBS_TABLE])]
    finally:
        tx.close()


def test_a_push_schedules_the_crons_of_every_component_instance(executor, code, tmp_path):
    limiter = functions_of(
        tmp_path,
        "cron_limiter",
        {
            "lib.ts": REFILLING_LIB,
            "crons.ts": LIMITER_CRONS,
            "schema.ts": LIMITER_SCHEMA % "v.string()",
        },
    )
    push(executor, two_limiters(code, limiter))
    jobs = cron_jobs(executor)
    assert sorted(j["cronSpec"].get("componentPath") for j in jobs) == ["limiter", "second"]
    # A push without the components drops their crons.
    push(executor, PushRequest(code["app"]))
    assert cron_jobs(executor) == []
