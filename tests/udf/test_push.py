"""The push pipeline in-process: prepare, the schema check's progress, one commit, races."""

from __future__ import annotations

import pytest

from engine import Database
from engine.errors import SchemaValidationError
from udf.bundler import bundle
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor
from udf.push import PushError, PushRequest, SchemaCheck, commit_push, prepare_push

SCHEMA = """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ notes: defineTable({ text: %s })%s });
"""
NOTES = """
import { query, mutation } from "./_generated/server";
export const count = query({ args: {}, handler: async (ctx) =>
  (await ctx.db.query("notes").collect()).length });
export const fill = mutation({ args: {}, handler: async (ctx) => {
  for (let i = 0; i < 200; i++) await ctx.db.insert("notes", { text: "n" + i }); } });
"""


def app(root, name, text="v.string()", index=""):
    folder = root / name / "convex"
    folder.mkdir(parents=True)
    (folder / "notes.ts").write_text(NOTES)
    (folder / "schema.ts").write_text(SCHEMA % (text, index))
    return bundle(folder).modules


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    return {
        "plain": app(root, "plain"),
        "indexed": app(root, "indexed", index='.index("by_text", ["text"])'),
        "strict": app(root, "strict", text="v.number()"),
    }


@pytest.fixture
def executor(tmp_path, sets):
    with Database.open(tmp_path / "data") as db:
        ex = Executor(db)
        commit_push(ex, prepare_push(ex, PushRequest(sets["plain"])))
        ex.run(FunctionCall("notes:fill", {}, "mutation", ADMIN))
        yield ex
        ex.close()


def count(ex):
    return ex.run(FunctionCall("notes:count", {}, "query", ADMIN)).value


def test_the_check_reports_progress_then_completes(executor, sets):
    prepared = prepare_push(executor, PushRequest(sets["indexed"]), "p1")
    check = SchemaCheck(executor, prepared)
    before = check.status()  # not started: the added index's table is not read yet
    assert (before.indexes_complete, before.indexes_total) == (0, 1) and not before.complete
    check.run_inline()
    assert check.status().complete
    committed = commit_push(executor, prepared)
    assert committed.deployment.ts > committed.previous.ts
    assert count(executor) == 200


def test_data_that_violates_the_schema_fails_the_check_and_the_commit(executor, sets):
    prepared = prepare_push(executor, PushRequest(sets["strict"]), "p2")
    prepared.check = SchemaCheck(executor, prepared)
    assert not prepared.check.status().validation_complete
    prepared.check.run_inline()
    status = prepared.check.status()
    assert status.table == "notes" and 'in table "notes" does not match' in status.error
    before = executor.deployment
    with pytest.raises(SchemaValidationError):
        commit_push(executor, prepared)
    assert executor.deployment is before


def test_a_push_prepared_before_another_commit_is_refused(executor, sets):
    first = prepare_push(executor, PushRequest(sets["indexed"]))
    second = prepare_push(executor, PushRequest(sets["plain"]))
    commit_push(executor, second)
    installed = executor.deployment
    with pytest.raises(PushError) as refused:
        commit_push(executor, first)
    assert refused.value.code == "RaceDetected"
    assert executor.deployment is installed


def test_a_variable_changed_during_the_push_is_a_race(executor, sets):
    from engine.environment_variables import EnvChange

    prepared = prepare_push(executor, PushRequest(sets["indexed"]))
    executor.update_environment_variables([EnvChange("CHANGED_MEANWHILE", "1")])
    installed = executor.deployment
    with pytest.raises(PushError) as refused:
        commit_push(executor, prepared)
    assert refused.value.code == "RaceDetected"
    assert refused.value.message == "Environment variables have changed during push"
    assert executor.deployment is installed
