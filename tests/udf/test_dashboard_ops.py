"""The dashboard's ops functions (functions, deploys, schedules, files) against a real
deployment: real V8, real LMDB, the scheduler running. Bad input gets a clear error
and changes nothing; only admins reach them."""

from __future__ import annotations

import time

import pytest

from engine.environment_variables import EnvChange
from engine.ids import encode_id
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE_NUMBER
from tests.udf.dashboard_app import ANONYMOUS_CALLER, DashboardApp
from tests.waiting import wait_for
from udf.calls import ADMIN, FunctionCall


@pytest.fixture
def app(tmp_path):
    deployed = DashboardApp(tmp_path)
    yield deployed
    deployed.close()


# -- functions ----------------------------------------------------------------------


def test_functions_lists_every_function_with_its_kind_visibility_and_validators(app):
    listed = {f["identifier"]: f for f in app.ok("ops:functions")}
    assert set(listed) == {
        "notes:add",
        "notes:list",
        "notes:count",
        "notes:addLater",
        "notes:shout",
    }
    add = listed["notes:add"]
    assert add["module"] == "notes.js" and add["name"] == "add"
    assert add["kind"] == "mutation" and add["visibility"] == "internal"
    assert add["args"]["type"] == "object"
    assert add["args"]["value"]["body"]["fieldType"]["type"] == "string"
    assert add["returns"] == {"type": "id", "tableName": "notes"}
    assert add["component"] == ""
    count = listed["notes:count"]
    assert count["kind"] == "query" and count["visibility"] == "internal"
    assert count["args"] == {"type": "any"}  # what exportArgs() says of no validator
    assert count["returns"] is None  # none declared
    assert listed["notes:shout"]["kind"] == "action"
    assert listed["notes:list"]["visibility"] == "public"


def test_functions_follow_a_deploy_and_read_a_past_commit(app):
    before = str(app.db.latest_ts())
    app.redeploy(
        {
            "extra.ts": 'import { query } from "./_generated/server";\n'
            "export const ping = query({ args: {}, handler: async () => 'pong' });\n"
        }
    )
    now = {f["identifier"] for f in app.ok("ops:functions")}
    assert "extra:ping" in now
    then = {f["identifier"] for f in app.ok("ops:functions", {"atTs": before})}
    assert "extra:ping" not in then and "notes:add" in then


def test_only_admins_reach_the_ops_functions(app):
    for name, kind in (("ops:functions", "query"), ("ops:cancelJob", "mutation")):
        outcome = app.call(name, {}, kind, identity=ANONYMOUS_CALLER)
        assert outcome.error is not None
        assert "Could not find public function" in outcome.error.message


def test_unexpected_arguments_are_refused(app):
    message = app.error("ops:functions", {"module": "notes"})
    assert "unexpected argument `module`" in message


# -- deploys --------------------------------------------------------------------------

_EXTRA = (
    'import { query } from "./_generated/server";\n'
    "export const ping = query({ args: {}, handler: async () => 'pong' });\n"
)
_SCHEMA_WITH_TAGS = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  notes: defineTable({ body: v.string(), tags: v.optional(v.array(v.string())) }),
});
"""


def test_deploys_lists_each_deploy_newest_first_with_module_and_schema_changes(app):
    app.redeploy({"extra.ts": _EXTRA})
    notes = (app.functions / "notes.ts").read_text()
    app.redeploy(
        {
            "notes.ts": notes + "\nexport const other = query({ handler: async () => 1 });\n",
            "schema.ts": _SCHEMA_WITH_TAGS,
        }
    )
    app.redeploy({"extra.ts": None})
    deploys = app.ok("ops:deploys")
    assert len(deploys) == 4
    assert [int(d["ts"]) for d in deploys] == sorted((int(d["ts"]) for d in deploys), reverse=True)
    removed, changed, added, first = deploys
    assert removed["modules"]["removed"] == ["extra.js"] and not removed["modules"]["added"]
    assert not removed["schemaChanged"]
    assert "notes.js" in changed["modules"]["changed"]
    assert not changed["modules"]["added"] and not changed["modules"]["removed"]
    assert changed["schemaChanged"]
    tables_before = changed["schemaBefore"]["tables"]
    tables_after = changed["schemaAfter"]["tables"]
    assert "tags" not in tables_before[0]["documentType"]["value"]
    assert "tags" in tables_after[0]["documentType"]["value"]
    assert added["modules"]["added"] == ["extra.js"] and not added["modules"]["removed"]
    every = [m for d in deploys for part in d["modules"].values() for m in part]
    assert not any(m.startswith("_deps/") for m in every)  # bundler chunks left out
    assert sorted(first["modules"]["added"]) == ["crons.js", "notes.js", "schema.js"]
    assert first["schemaChanged"] and first["schemaBefore"] is None
    assert abs(first["wallTime"] - time.time() * 1000) < 120_000


def test_deploys_honours_its_limit_and_refuses_a_bad_one(app):
    app.redeploy({"extra.ts": _EXTRA})
    assert len(app.ok("ops:deploys", {"limit": 1})) == 1
    for bad in (0, 101, 1.5, "3"):
        assert "`limit`" in app.error("ops:deploys", {"limit": bad})


def test_deploys_at_a_past_commit_end_at_that_commit(app):
    first_ts = app.ok("ops:deploys")[0]["ts"]
    app.redeploy({"extra.ts": _EXTRA})
    assert [d["ts"] for d in app.ok("ops:deploys", {"atTs": first_ts})] == [first_ts]


def test_a_variable_change_that_re_evaluates_auth_config_is_no_deploy(app):
    app.ex.update_environment_variables([EnvChange("AUTH_DOMAIN", "https://one.test")])
    app.redeploy({"auth.config.ts": _AUTH_CONFIG})
    deployed = [d["ts"] for d in app.ok("ops:deploys")]
    app.ex.update_environment_variables([EnvChange("AUTH_DOMAIN", "https://two.test")])
    assert "two.test" in app.ex.deployment.analysis.auth_config_json  # it was rewritten
    assert [d["ts"] for d in app.ok("ops:deploys")] == deployed


_AUTH_CONFIG = """export default {
  providers: [{ domain: process.env.AUTH_DOMAIN, applicationID: "convex" }],
};
"""


# -- scheduled functions and crons ----------------------------------------------------


def test_scheduled_lists_a_pending_job_and_cancel_stops_it(app):
    job_id = app.run("notes:addLater", {"delayMs": 2000.0, "body": "later"}, "mutation")
    jobs = app.ok("ops:scheduled")
    assert [(j["id"], j["name"], j["args"], j["state"]) for j in jobs] == [
        (job_id, "notes.js:add", {"body": "later"}, "pending")
    ]
    assert jobs[0]["scheduledTime"] > time.time() * 1000 and jobs[0]["component"] == ""
    assert app.ok("ops:cancelJob", {"id": job_id}, "mutation") is None
    assert app.ok("ops:scheduled")[0]["state"] == "canceled"
    time.sleep(max(0.0, jobs[0]["scheduledTime"] / 1000 - time.time()) + 0.3)  # past its time
    assert app.scheduler.wait_idle()
    assert "later" not in app.run("notes:list", {}, "query")  # it never ran


def test_a_job_that_ran_shows_success_and_cannot_be_canceled(app):
    job_id = app.run("notes:addLater", {"delayMs": 0.0, "body": "now"}, "mutation")
    wait_for(lambda: app.ok("ops:scheduled")[0]["state"] == "success")
    ts = app.db.latest_ts()
    message = app.error("ops:cancelJob", {"id": job_id}, "mutation")
    assert "already finished (success)" in message and job_id in message
    assert app.db.latest_ts() == ts  # nothing written


def test_cancel_refuses_unknown_ids_and_ids_of_other_tables(app):
    note_id = app.run("notes:add", {"body": "x"}, "mutation")
    missing = encode_id(SCHEDULED_FUNCTIONS_TABLE_NUMBER, bytes(range(16)))
    ts = app.db.latest_ts()
    assert "does not exist" in app.error("ops:cancelJob", {"id": missing}, "mutation")
    assert "not a scheduled function ID" in app.error("ops:cancelJob", {"id": note_id}, "mutation")
    assert "ops:cancelJob" in app.error("ops:cancelJob", {"id": "nonsense"}, "mutation")
    assert "`id`" in app.error("ops:cancelJob", {}, "mutation")
    assert app.db.latest_ts() == ts


def test_crons_lists_each_cron_with_its_schedule_and_its_runs(app):
    wait_for(lambda: app.ok("ops:crons")[0]["lastRun"] is not None)  # an interval starts now
    crons = app.ok("ops:crons")
    assert [c["name"] for c in crons] == ["hourly note", "nightly note"]
    hourly, nightly = crons
    assert hourly["schedule"] == {"type": "interval", "seconds": 3600.0}
    assert nightly["schedule"] == {"type": "cron", "cronExpr": "0 3 * * *"}
    assert hourly["functionName"] == "notes.js:add" and hourly["args"] == {"body": "hourly"}
    assert hourly["nextRun"] == pytest.approx(hourly["lastRun"] + 3_600_000, abs=2000)
    assert nightly["lastRun"] is None
    assert time.time() * 1000 < nightly["nextRun"] <= time.time() * 1000 + 86_400_000


# -- files ------------------------------------------------------------------------------


def _store(app, data: bytes, content_type: str) -> str:
    storage = app.ex.file_storage
    return storage.commit_file(storage.store_bytes(data), content_type)


def test_files_lists_stored_files_and_delete_removes_one(app):
    first = _store(app, b"hello", "text/plain")
    second = _store(app, b"\x89PNG....", "image/png")
    listed = app.ok("ops:files")
    assert [f["storageId"] for f in listed] == [second, first]  # newest first
    hello = listed[1]
    assert hello["size"] == 5 and hello["contentType"] == "text/plain"
    assert hello["sha256"] == "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
    assert hello["url"].endswith("/api/storage/" + _uuid(first))
    before_delete = str(app.db.latest_ts())
    assert app.ok("ops:deleteFile", {"storageId": first}, "mutation") is None
    assert [f["storageId"] for f in app.ok("ops:files")] == [second]
    past = app.ok("ops:files", {"atTs": before_delete})
    assert {f["storageId"] for f in past} == {first, second}


def test_delete_file_refuses_unknown_and_malformed_ids(app):
    stored = _store(app, b"keep", "text/plain")
    app.ok("ops:deleteFile", {"storageId": stored}, "mutation")
    ts = app.db.latest_ts()
    assert "not found" in app.error("ops:deleteFile", {"storageId": stored}, "mutation")
    assert "Invalid storage ID" in app.error("ops:deleteFile", {"storageId": "x"}, "mutation")
    assert "`storageId`" in app.error("ops:deleteFile", {}, "mutation")
    assert app.db.latest_ts() == ts


def _uuid(storage_id: str) -> str:
    from engine.file_storage import uuid_of

    return uuid_of(storage_id)


def test_a_call_its_arguments_refuse_is_logged_with_the_functions_own_kind(app):
    # /api/function (kind unknown to the caller) of a mutation with a bad argument:
    # the log names it a mutation, as the dashboard's Logs screen shows it.
    outcome = app.ex.run(FunctionCall("notes:addLater", {"delayMs": "soon"}, None, identity=ADMIN))
    assert outcome.error is not None and "delayMs" in outcome.error.message
    entries, _ = app.ex.function_log.entries_after(0)
    assert [(e.identifier, e.udf_type) for e in entries][-1] == ("notes:addLater", "Mutation")
