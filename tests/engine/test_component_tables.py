"""Component tables seen as the component's: ``_components`` documents, streaming export
rows and selections, reads at a past ts."""

from __future__ import annotations

import pytest

from engine import Database, InvalidQueryError
from engine.component_tables import (
    component_documents_at,
    component_id,
    components_at,
    definition_id,
    tables_of_component,
)
from engine.recovery import rebuild_projections
from engine.streaming_export import document_deltas, list_snapshot
from udf.component_tree import ComponentInstance, ComponentTree, EnvArg
from udf.system_components import write_component_documents

LIMITER_DEF = "../node_modules/@convex-dev/rate-limiter/dist/component"
POOL_DEF = "../node_modules/@convex-dev/workpool/dist/component"


def _tree(*paths: str) -> ComponentTree:
    instances = {"": ComponentInstance("", "", "")}
    for path in paths:
        definition = LIMITER_DEF if path.endswith("limiter") else POOL_DEF
        env = (EnvArg("KEY", value="v"),) if path == "limiter" else ()
        instances[path] = ComponentInstance(path, definition, path.rpartition("/")[2], env)
    return ComponentTree(instances, {})


def _seed(db):
    def write(tx):
        return {
            "app": tx.insert("messages", {"body": "hi"}),
            "limit": tx.insert("limiter/rateLimits", {"name": "send", "value": 1}),
            "pool": tx.insert("workpool/batch/work", {"fn": "x"}),
        }

    return db.mutate(write).value


def _components(db):
    return db.query(lambda tx: component_documents_at(tx.snapshot)).value


def test_component_documents_have_convex_shape_and_parents(db):
    db.mutate(
        lambda tx: write_component_documents(tx, _tree("limiter", "workpool", "workpool/batch"))
    )
    docs = _components(db)
    assert sorted(docs) == ["", "limiter", "workpool", "workpool/batch"]
    app = docs[""]
    assert app["_id"] == component_id("")
    assert {k: v for k, v in app.items() if not k.startswith("_")} == {
        "definitionId": definition_id(""),
        "parent": None,
        "name": None,
        "args": None,
        "env": None,
        "state": "active",
        "httpPrefix": None,
    }
    assert docs["limiter"]["parent"] == component_id("")
    assert docs["limiter"]["name"] == "limiter"
    assert docs["limiter"]["env"] == [["KEY", {"type": "value", "value": "v"}]]
    assert docs["limiter"]["definitionId"] == definition_id(LIMITER_DEF)
    assert docs["workpool/batch"]["parent"] == component_id("workpool")
    assert docs["workpool/batch"]["args"] == []


def test_a_component_dropped_from_the_tree_is_unmounted_then_active_again(db):
    db.mutate(lambda tx: write_component_documents(tx, _tree("limiter")))
    ts_before = db.latest_ts()
    db.mutate(lambda tx: write_component_documents(tx, _tree()))
    assert _components(db)["limiter"]["state"] == "unmounted"
    assert _components(db)[""]["state"] == "active"
    db.mutate(lambda tx: write_component_documents(tx, _tree("limiter")))
    assert _components(db)["limiter"]["state"] == "active"
    # A push that changes nothing writes nothing.
    ts = db.latest_ts()
    db.mutate(lambda tx: write_component_documents(tx, _tree("limiter")))
    assert db.latest_ts() == ts
    assert ts > ts_before


def test_tables_of_a_component_and_components_of_the_catalog(db):
    _seed(db)
    db.mutate(lambda tx: write_component_documents(tx, _tree("limiter")))

    def read(tx):
        snapshot = tx.snapshot
        return (
            [t.table for t in tables_of_component(snapshot, "limiter")],
            [t.table for t in tables_of_component(snapshot, "")],
            components_at(snapshot),
        )

    limiter, app, components = db.query(read).value
    assert limiter == ["rateLimits"]
    assert app == ["messages"]
    assert components == ["", "limiter", "workpool/batch"]


def test_list_snapshot_rows_name_component_and_plain_table(db):
    ids = _seed(db)
    rows = list_snapshot(db, format="json").values
    by_id = {r["_id"]: r for r in rows}
    assert (by_id[ids["limit"]]["_component"], by_id[ids["limit"]]["_table"]) == (
        "limiter",
        "rateLimits",
    )
    assert (by_id[ids["pool"]]["_component"], by_id[ids["pool"]]["_table"]) == (
        "workpool/batch",
        "work",
    )
    assert (by_id[ids["app"]]["_component"], by_id[ids["app"]]["_table"]) == ("", "messages")


def test_list_snapshot_table_and_component_selections(db):
    ids = _seed(db)
    db.mutate(lambda tx: tx.insert("limiter/config", {"on": True}))
    only_limit = list_snapshot(db, table="rateLimits", component="limiter").values
    assert [r["_id"] for r in only_limit] == [ids["limit"]]
    # tableName alone is the app's table of that name.
    assert list_snapshot(db, table="rateLimits").values == []
    assert [r["_id"] for r in list_snapshot(db, table="messages").values] == [ids["app"]]
    whole = list_snapshot(db, component="limiter").values
    assert sorted(r["_table"] for r in whole) == ["config", "rateLimits"]
    assert {r["_component"] for r in whole} == {"limiter"}


def test_selection_tree_picks_components_tables_and_columns(db):
    ids = _seed(db)
    selection = {
        "_other": "excluded",
        "limiter": {"_other": "excluded", "rateLimits": {"_other": "incl", "value": "excl"}},
        "workpool/batch": {"_other": "included"},
    }
    rows = list_snapshot(db, selection=selection).values
    by_id = {r["_id"]: r for r in rows}
    assert set(by_id) == {ids["limit"], ids["pool"]}
    assert "value" not in by_id[ids["limit"]]
    assert by_id[ids["limit"]]["name"] == "send"
    excluded = list_snapshot(db, selection={"_other": "included", "limiter": "excluded"}).values
    assert ids["limit"] not in {r["_id"] for r in excluded}
    assert {ids["app"], ids["pool"]} <= {r["_id"] for r in excluded}


@pytest.mark.parametrize(
    "selection",
    [
        {"limiter": {"_other": "included"}},  # no _other at the top
        {"_other": "maybe"},
        {"_other": "excluded", "": {"_other": "included", "t": {"_other": "excluded"}}},  # no _id
    ],
)
def test_bad_selections_are_refused(db, selection):
    with pytest.raises(InvalidQueryError) as err:
        list_snapshot(db, selection=selection)
    assert err.value.code == "InvalidSelection"


def test_document_deltas_carry_component_and_follow_the_selection(db):
    start = db.latest_ts()
    ids = _seed(db)
    db.mutate(lambda tx: tx.delete(ids["limit"]))
    rows = document_deltas(db, start, component="limiter").values
    assert [(r["_component"], r["_table"], r["_deleted"]) for r in rows] == [
        ("limiter", "rateLimits", False),
        ("limiter", "rateLimits", True),
    ]
    rows = document_deltas(db, start, table="messages").values
    assert [r["_id"] for r in rows] == [ids["app"]]


def test_component_tables_read_as_the_components_at_a_past_ts(db):
    ids = _seed(db)
    past = db.latest_ts()
    db.mutate(lambda tx: tx.patch(ids["limit"], {"value": 2}))
    db.mutate(lambda tx: tx.insert("limiter/rateLimits", {"name": "later", "value": 9}))
    then = list_snapshot(db, past, component="limiter").values
    assert [(r["_table"], r["value"]) for r in then] == [("rateLimits", 1)]
    docs = db.query(lambda tx: tx.query("limiter/rateLimits").collect(), ts=past).value
    assert [d["value"] for d in docs] == [1]

    def tables_then(tx):
        return [t.table for t in tables_of_component(tx.snapshot, "limiter")]

    assert db.query(tables_then, ts=past).value == ["rateLimits"]


def test_component_tables_survive_a_replay_of_the_log(tmp_path):
    path = tmp_path / "data"
    with Database.open(path) as db:
        ids = _seed(db)
        past = db.latest_ts()
        db.mutate(lambda tx: tx.patch(ids["limit"], {"value": 5}))
        db.mutate(lambda tx: write_component_documents(tx, _tree("limiter")))
    rebuild_projections(path)
    with Database.open(path) as db:
        now = list_snapshot(db, component="limiter").values
        assert [(r["_table"], r["value"]) for r in now] == [("rateLimits", 5)]
        then = list_snapshot(db, past, component="limiter").values
        assert [(r["_table"], r["value"]) for r in then] == [("rateLimits", 1)]
        assert _components(db)["limiter"]["state"] == "active"
