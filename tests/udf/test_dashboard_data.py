"""The dashboard's `_system/dashboard/data:*` functions against a real engine and a
deployed app: tables and counts, pages with filters and any index, the schema and
the shape of the documents, history, the commit log with each commit's origin,
edits checked as `ctx.db` checks them, and every bad input refused with a clear
sentence that changes nothing."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from engine import Database
from udf.calls import ADMIN, FunctionCall, Identity
from udf.executor import Executor

STORE_APP = Path(__file__).parent / "fixtures" / "store" / "convex"
USER = Identity(user={"subject": "user-7", "tokenIdentifier": "issuer|user-7"}, admin=False)


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    app = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(STORE_APP, app)
    db = Database.open(tmp_path_factory.mktemp("data"))
    executor = Executor(db)
    executor.deploy(app)
    yield executor
    executor.close()
    db.close()


def call(ex, name, args=None, kind="query", identity=ADMIN):
    return ex.run(FunctionCall(f"_system/dashboard/data:{name}", args or {}, kind, identity))


def ok(outcome):
    assert outcome.error is None, outcome.error
    return outcome.value


def refused(outcome) -> str:
    assert outcome.error is not None, outcome.value
    return outcome.error.message


def q(ex, name, args=None):
    return ok(call(ex, name, args))


def m(ex, name, args):
    return ok(call(ex, name, args, "mutation"))


def item(team, title="t", status="open", count=1, **more):
    return {
        "team": team,
        "title": title,
        "status": status,
        "count": count,
        "details": {"tags": []},
        **more,
    }


def newest_ts(ex) -> int:
    return int(q(ex, "range")["newestTs"])


@pytest.fixture(scope="module")
def team(ex):
    outcome = ex.run(FunctionCall("teams:create", {"name": "blue"}, "mutation", USER))
    return ok(outcome)


@pytest.fixture(scope="module")
def paged(ex, team):
    """p0..p4 (counts 100..104), the rows the paging and filter tests read: a fixture,
    since the module's tests may be split over workers in any order."""
    for i in range(5):
        m(ex, "insert", {"table": "items", "document": item(team, f"p{i}", count=100 + i)})


def test_tables_list_user_tables_with_counts_and_schema_flags(ex, team):
    for i in range(3):
        m(ex, "insert", {"table": "items", "document": item(team, f"t{i}", count=i)})
    m(ex, "insert", {"table": "loose", "document": {"x": 1.0}})
    tables = {t["name"]: t for t in q(ex, "tables")}
    assert tables["teams"] == {
        "name": "teams",
        "component": "",
        "table": "teams",
        "count": 1,
        "hasSchema": True,
    }
    assert tables["items"]["count"] >= 3 and tables["loose"]["hasSchema"] is False
    assert not any(name.startswith("_") for name in tables)
    assert list(tables) == sorted(tables)
    before = tables["items"]["count"]
    m(ex, "insert", {"table": "items", "document": item(team)})
    assert {t["name"]: t["count"] for t in q(ex, "tables")}["items"] == before + 1


def test_counts_at_a_past_ts_are_the_counts_then(ex, team, monkeypatch):
    before = newest_ts(ex)
    counts_then = {t["name"]: t["count"] for t in q(ex, "tables", {"atTs": str(before)})}
    ids = [m(ex, "insert", {"table": "items", "document": item(team)}) for _ in range(2)]
    m(ex, "delete", {"ids": ids[:1]})
    now = {t["name"]: t["count"] for t in q(ex, "tables")}
    assert now["items"] == counts_then["items"] + 1
    again = {t["name"]: t["count"] for t in q(ex, "tables", {"atTs": str(before)})}
    assert again == counts_then
    from udf import dashboard_counts

    monkeypatch.setattr(dashboard_counts, "_BACK_WRITES_MAX", 0)  # counted at that ts instead
    counted = {t["name"]: t["count"] for t in q(ex, "tables", {"atTs": str(before)})}
    assert counted == counts_then


def test_page_orders_by_creation_desc_by_default_and_pages_without_gaps(ex, paged):
    everything = q(ex, "page", {"table": "items", "numItems": 200, "order": "asc"})["page"]
    seen, cursor = [], None
    while True:
        page = q(ex, "page", {"table": "items", "numItems": 2, "cursor": cursor})
        seen += page["page"]
        assert int(page["ts"]) > 0
        if page["isDone"]:
            assert page["continueCursor"] is None
            break
        cursor = page["continueCursor"]
    assert [d["_id"] for d in seen] == [d["_id"] for d in reversed(everything)]


def test_page_by_a_user_index_and_filters(ex, paged):
    page = q(
        ex, "page", {"table": "items", "index": "by_team_status", "order": "asc", "numItems": 200}
    )["page"]
    keys = [(d["team"], d["status"], d["_creationTime"]) for d in page]
    assert keys == sorted(keys)
    filtered = q(
        ex,
        "page",
        {
            "table": "items",
            "numItems": 200,
            "filters": [
                {"field": "count", "op": "gte", "value": 102},
                {"field": "title", "op": "neq", "value": "p3"},
            ],
        },
    )["page"]
    assert sorted(d["title"] for d in filtered) == ["p2", "p4"]
    nested = q(
        ex,
        "page",
        {
            "table": "items",
            "numItems": 200,
            "filters": [
                {"field": "details.tags", "op": "exists"},
                {"field": "blob", "op": "notExists"},
            ],
        },
    )
    assert len(nested["page"]) == len(page)


def test_page_at_a_past_ts_sees_the_table_then(ex, team):
    doc_id = m(ex, "insert", {"table": "items", "document": item(team, "old")})
    then = newest_ts(ex)
    m(ex, "patch", {"id": doc_id, "fields": {"title": "new"}})
    past = q(ex, "page", {"table": "items", "numItems": 1, "atTs": str(then)})
    assert past["page"][0]["title"] == "old" and past["ts"] == str(then)
    assert q(ex, "page", {"table": "items", "numItems": 1})["page"][0]["title"] == "new"


def test_bad_page_arguments_are_refused_clearly(ex, paged):
    assert refused(call(ex, "page", {"table": "nope", "numItems": 5})) == (
        'Table "nope" does not exist.'
    )
    assert "numItems" in refused(call(ex, "page", {"table": "items", "numItems": 500}))
    assert "Index items.by_nothing not found" in refused(
        call(ex, "page", {"table": "items", "numItems": 5, "index": "by_nothing"})
    )
    text = refused(
        call(
            ex,
            "page",
            {
                "table": "items",
                "numItems": 5,
                "filters": [{"field": "x", "op": "like", "value": 1}],
            },
        )
    )
    assert text.startswith("Invalid filter at filters[0]: op must be one of")
    text = refused(
        call(ex, "page", {"table": "items", "numItems": 5, "filters": [{"field": "x", "op": "eq"}]})
    )
    assert text == 'Invalid filter at filters[0]: op "eq" needs a value.'
    assert "filters[0]" in refused(
        call(
            ex,
            "page",
            {"table": "items", "numItems": 5, "filters": [{"field": "a b", "op": "exists"}]},
        )
    )
    assert '"asc" or "desc"' in refused(
        call(ex, "page", {"table": "items", "numItems": 5, "order": "up"})
    )
    newest = newest_ts(ex)
    text = refused(
        call(ex, "page", {"table": "items", "numItems": 5, "atTs": str(newest + 10**12)})
    )
    assert text == f"ts {newest + 10**12} is newer than the newest commit {newest}."
    oldest = int(q(ex, "range")["oldestTs"])
    text = refused(call(ex, "page", {"table": "items", "numItems": 5, "atTs": str(oldest - 1)}))
    assert text.startswith(f"ts {oldest - 1} is older than the oldest retained commit {oldest}")
    assert "atTs" in refused(call(ex, "page", {"table": "items", "numItems": 5, "atTs": "soon"}))
    cursor = q(ex, "page", {"table": "items", "numItems": 1})["continueCursor"]
    assert "InvalidCursor" in refused(
        call(ex, "page", {"table": "items", "numItems": 1, "order": "asc", "cursor": cursor})
    )


def test_a_selective_filter_stops_at_the_scan_budget(ex, team, paged, monkeypatch):
    from udf import dashboard_tables

    for _ in range(3):  # with p0..p4, more rows than two pages of three scan
        m(ex, "insert", {"table": "items", "document": item(team, "filler")})

    monkeypatch.setattr(dashboard_tables, "SCAN_ROWS_MAX", 3)
    filters = [{"field": "title", "op": "eq", "value": "nowhere"}]
    page = q(ex, "page", {"table": "items", "numItems": 10, "filters": filters})
    assert page["page"] == [] and page["isDone"] is False and page["continueCursor"]
    pages = 1
    while not page["isDone"]:
        page = q(
            ex,
            "page",
            {
                "table": "items",
                "numItems": 10,
                "filters": filters,
                "cursor": page["continueCursor"],
            },
        )
        pages += 1
    assert pages > 2


def test_schema_declared_inferred_and_a_schema_ts_snippet(ex, team):
    m(ex, "insert", {"table": "items", "document": item(team, "shape")})  # one to infer from
    schema = q(ex, "schema", {"table": "items"})
    assert schema["document"]["type"] == "object"
    assert {i["name"]: i["fields"] for i in schema["indexes"]} == {
        "by_team": ["team"],
        "by_team_status": ["team", "status"],
    }
    assert all(i["state"] == "ready" for i in schema["indexes"])
    inferred = schema["inferred"]["value"]
    assert inferred["team"]["fieldType"] == {"type": "id", "tableName": "teams"}
    assert inferred["count"]["fieldType"] == {"type": "bigint"}
    assert schema["schemaTs"].startswith("items: defineTable({\n")
    assert '  team: v.id("teams"),\n' in schema["schemaTs"]
    assert '.index("by_team_status", ["team", "status"])' in schema["schemaTs"]
    m(ex, "insert", {"table": "shapes", "document": {"a": 1.0, "n": {"x": "s"}}})
    m(ex, "insert", {"table": "shapes", "document": {"a": "one", "b": None}})
    loose = q(ex, "schema", {"table": "shapes"})
    assert loose["document"] is None and loose["indexes"] == []
    assert loose["schemaTs"] == (
        "shapes: defineTable({\n"
        "  a: v.union(v.string(), v.float64()),\n"
        "  b: v.optional(v.null()),\n"
        "  n: v.optional(v.object({x: v.string()})),\n"
        "}),"
    )
    assert refused(call(ex, "schema", {"table": "nope"})) == 'Table "nope" does not exist.'


def test_history_lists_every_version_with_field_diffs(ex, team):
    doc_id = m(ex, "insert", {"table": "items", "document": item(team, "h1", count=1)})
    m(ex, "patch", {"id": doc_id, "fields": {"title": "h2", "details": {"tags": ["a"]}}})
    middle = newest_ts(ex)
    m(ex, "delete", {"ids": [doc_id]})
    versions = q(ex, "history", {"id": doc_id})
    assert [v["value"] is None for v in versions] == [True, False, False]
    assert [int(v["ts"]) for v in versions] == sorted(
        (int(v["ts"]) for v in versions), reverse=True
    )
    assert versions[0]["diff"][0]["path"] in ("_creationTime", "_id")
    assert {"path": "title", "before": "h1", "after": "h2"} in versions[1]["diff"]
    assert {"path": "details.tags", "before": [], "after": ["a"]} in versions[1]["diff"]
    assert {"path": "title", "after": "h1"} in versions[2]["diff"]
    assert versions[1]["wallTime"] == int(versions[1]["ts"]) // 1_000_000
    past = q(ex, "history", {"id": doc_id, "atTs": str(middle)})
    assert len(past) == 2 and past[0]["value"]["title"] == "h2"
    assert "not a document id" in refused(call(ex, "history", {"id": "nope"}))
    ghost = ex.db.mutate(lambda tx: tx.reserve_ids("items", 1)).value[0]  # never inserted
    assert refused(call(ex, "history", {"id": ghost})) == f"No document has the id {ghost}."


def test_log_and_commit_name_the_function_that_wrote(ex, team):
    outcome = ex.run(FunctionCall("teams:create", {"name": "green"}, "mutation", USER))
    ts = str(outcome.ts)
    log = q(ex, "log", {"limit": 5})
    assert log[0]["ts"] == ts
    assert log[0]["function"] == {
        "path": "teams:create",
        "kind": "mutation",
        "identity": "user-7",
        "caller": "client",
    }
    assert {"table": "teams", "component": "", "id": ok(outcome), "op": "insert"} in log[0][
        "writes"
    ]
    doc_id = m(ex, "insert", {"table": "items", "document": item(team)})
    log = q(ex, "log", {"limit": 2})
    assert log[0]["function"]["path"] == "_dashboard/insert"
    older = q(ex, "log", {"limit": 2, "beforeTs": log[1]["ts"]})
    assert int(older[0]["ts"]) < int(log[1]["ts"])
    m(ex, "replace", {"id": doc_id, "document": item(team, "replaced")})
    entry = q(ex, "commit", {"ts": q(ex, "log", {"limit": 1})[0]["ts"]})
    (write,) = entry["writes"]
    assert write["op"] == "update" and write["value"]["title"] == "replaced"
    assert write["previous"]["title"] == "t" and entry["function"]["path"] == "_dashboard/replace"
    deploys = [
        e
        for e in q(ex, "log", {"limit": 100})
        if e["function"] and e["function"]["kind"] == "deploy"
    ]
    assert deploys
    assert refused(call(ex, "commit", {"ts": "1"})) == "There is no commit at ts 1."
    assert "limit" in refused(call(ex, "log", {"limit": 101}))


def test_neighbour_ts_steps_between_commits(ex, team):
    log = q(ex, "log", {"limit": 3})
    middle = log[1]["ts"]
    assert q(ex, "neighbourTs", {"ts": middle, "direction": "previous"}) == log[2]["ts"]
    assert q(ex, "neighbourTs", {"ts": middle, "direction": "next"}) == log[0]["ts"]
    assert q(ex, "neighbourTs", {"ts": log[0]["ts"], "direction": "next"}) is None
    oldest = q(ex, "range")["oldestTs"]
    assert q(ex, "neighbourTs", {"ts": oldest, "direction": "previous"}) is None
    assert "direction" in refused(call(ex, "neighbourTs", {"ts": middle, "direction": "up"}))


def test_edits_are_validated_and_a_failure_writes_nothing(ex, team):
    before = newest_ts(ex)
    text = refused(
        call(ex, "insert", {"table": "items", "document": item(team, status="x")}, "mutation")
    )
    assert text.startswith(
        'Failed to insert or update a document in table "items" because it does not match '
        "the schema: Value does not match validator.\nPath: .status"
    )
    doc_id = m(ex, "insert", {"table": "items", "document": item(team)})
    after_insert = newest_ts(ex)
    assert after_insert > before
    text = refused(call(ex, "patch", {"id": doc_id, "fields": {"count": "many"}}, "mutation"))
    assert "does not match the schema" in text
    big = "x" * (1 << 20)
    text = refused(call(ex, "insert", {"table": "loose", "document": {"big": big}}, "mutation"))
    assert "too large" in text.lower() or "size" in text.lower()
    text = refused(
        call(ex, "delete", {"ids": [doc_id, "jd7314e9evjsdn6d5sqwq557rn8kfvcd"]}, "mutation")
    )
    assert text
    assert q(ex, "history", {"id": doc_id})[0]["value"] is not None
    assert refused(call(ex, "delete", {"ids": []}, "mutation")).startswith("`ids` must be")
    assert refused(call(ex, "delete", {"ids": [doc_id] * 4097}, "mutation")) == (
        "You can't delete more than 4096. Try selecting fewer documents instead.."
    )
    assert "does not exist" in refused(
        call(ex, "insert", {"table": "nope", "component": "missing", "document": {}}, "mutation")
    )
    assert newest_ts(ex) == after_insert
    assert m(ex, "delete", {"ids": [doc_id, doc_id]}) == 1


def test_only_admins_may_call_them(ex):
    for kind in ("query", None):
        text = refused(call(ex, "tables", {}, kind, identity=USER))
        assert "Could not find" in text and "_system/dashboard/data:tables" in text


def test_a_mutation_an_action_runs_is_named_with_its_caller(ex, team):
    outcome = ex.run(FunctionCall("items:report", {"team": team}, "action", USER))
    assert outcome.error is None, outcome.error
    (entry,) = q(ex, "log", {"limit": 1})
    assert entry["function"] == {
        "path": "items:add",
        "kind": "mutation",
        "identity": "user-7",
        "caller": "action",
    }
    writes = q(ex, "commit", {"ts": entry["ts"]})["writes"]
    assert outcome.value["id"] in [w["id"] for w in writes]


def test_a_component_table_is_named_by_its_component(ex):
    ex.db.mutate(lambda tx: tx.insert("limiter/rateLimits", {"v": 1.0}))
    listed = [t for t in q(ex, "tables") if t["component"] == "limiter"]
    assert listed == [
        {
            "name": "limiter/rateLimits",
            "component": "limiter",
            "table": "rateLimits",
            "count": 1,
            "hasSchema": False,
        }
    ]
    args = {"table": "rateLimits", "component": "limiter", "numItems": 5}
    assert [d["v"] for d in q(ex, "page", args)["page"]] == [1.0]
    assert q(ex, "schema", {"table": "rateLimits", "component": "limiter"})["schemaTs"] == (
        "rateLimits: defineTable({\n  v: v.float64(),\n}),"
    )
    text = refused(call(ex, "page", {"table": "limiter/rateLimits", "numItems": 5}))
    assert text == 'Table "limiter/rateLimits" does not exist.'
    text = refused(call(ex, "page", {"table": "rateLimits", "numItems": 5}))
    assert text == 'Table "rateLimits" does not exist.'


@pytest.mark.parametrize(
    "name, args",
    [("tables", {}), ("page", {"table": "items", "numItems": 5}), ("schema", {"table": "items"})],
)
def test_tables_pages_and_schemas_are_live(ex, team, name, args):
    outcome = call(ex, name, args)
    assert outcome.error is None and outcome.read_set is not None
    changed = threading.Event()
    watch = ex.watch(outcome.read_set, outcome.ts, lambda _ts: changed.set())
    try:
        m(ex, "insert", {"table": "items", "document": item(team, "live")})
        assert changed.wait(10)
    finally:
        watch.close()


def test_a_declared_table_without_documents_is_listed_empty_and_its_page_comes_alive(tmp_path):
    app = tmp_path / "convex"
    app.mkdir()
    (app / "schema.ts").write_text(
        'import { defineSchema, defineTable } from "convex/server";\n'
        'import { v } from "convex/values";\n'
        "export default defineSchema({ notes: defineTable({ body: v.string() }) });\n"
    )
    db = Database.open(tmp_path / "data")
    fresh = Executor(db)
    try:
        fresh.deploy(app)
        assert [(t["name"], t["count"]) for t in q(fresh, "tables")] == [("notes", 0.0)]
        args = {"table": "notes", "numItems": 5}
        outcome = call(fresh, "page", args)
        assert ok(outcome)["page"] == [] and ok(outcome)["isDone"] is True
        changed = threading.Event()
        watch = fresh.watch(outcome.read_set, outcome.ts, lambda _ts: changed.set())
        try:
            m(fresh, "insert", {"table": "notes", "document": {"body": "first"}})
            assert changed.wait(10)  # the first document creates the table: the page re-runs
        finally:
            watch.close()
        assert [d["body"] for d in q(fresh, "page", args)["page"]] == ["first"]
        assert refused(call(fresh, "page", {"table": "nope", "numItems": 5})) == (
            'Table "nope" does not exist.'
        )
    finally:
        fresh.close()
        db.close()


@pytest.mark.parametrize("name, args", [("log", {"limit": 5}), ("range", {})])
def test_the_newest_log_and_the_range_re_run_after_any_commit(ex, team, name, args):
    outcome = call(ex, name, args)
    assert outcome.error is None and outcome.read_set is not None
    changed = threading.Event()
    watch = ex.watch(outcome.read_set, outcome.ts, lambda _ts: changed.set())
    try:
        # A write to a table the call never named, and a system table's: both re-run it.
        ex.db.mutate(lambda tx: tx.insert("fresh_table_for_log", {"n": 1.0}))
        assert changed.wait(10)
    finally:
        watch.close()
    newest = q(ex, name, args)
    assert (newest[0]["ts"] if name == "log" else newest["newestTs"]) == str(ex.db.latest_ts())
