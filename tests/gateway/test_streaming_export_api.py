"""The streaming-export endpoints over HTTP: snapshot paging, then deltas, admin only."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.backend import Backend
from gateway.server import run_server_in_thread


@pytest.fixture
def served(tmp_path):
    backend = Backend.open(tmp_path / "data")
    url, stop = run_server_in_thread(backend.app)
    yield backend, url
    stop()
    backend.close()


def test_snapshot_then_deltas_with_the_admin_key(served):
    backend, url = served
    db = backend.db
    ids = db.mutate(lambda tx: [tx.insert("items", {"n": i}) for i in range(5)]).value
    admin = {"Authorization": f"Convex {backend.admin_key}"}
    with httpx.Client(base_url=url, headers=admin, timeout=30) as client:
        first = client.get("/api/list_snapshot").json()
        assert {v["_id"] for v in first["values"]} == set(ids) and not first["hasMore"]
        assert all(v["_table"] == "items" for v in first["values"])
        changed = db.mutate(lambda tx: tx.patch(ids[0], {"n": 100}))
        db.mutate(lambda tx: tx.delete(ids[1]))
        deltas = client.post("/api/document_deltas", json={"cursor": first["snapshot"]}).json()
        rows = [(v["_id"], v.get("_deleted")) for v in deltas["values"]]
        assert rows == [(ids[0], False), (ids[1], True)]
        assert deltas["values"][0]["_ts"] == changed.ts
        bad = client.get("/api/document_deltas")
        assert bad.status_code == 400 and bad.json()["code"] == "DocumentDeltasCursorRequired"
    refused = httpx.get(url + "/api/list_snapshot", timeout=30)
    assert refused.status_code == 403


def test_component_rows_and_selections_over_http(served):
    backend, url = served
    db = backend.db
    limit, app = db.mutate(
        lambda tx: [tx.insert("limiter/rateLimits", {"v": 1}), tx.insert("items", {"n": 1})]
    ).value
    admin = {"Authorization": f"Convex {backend.admin_key}"}
    with httpx.Client(base_url=url, headers=admin, timeout=30) as client:
        rows = client.get("/api/list_snapshot", params={"component": "limiter"}).json()["values"]
        assert [(r["_component"], r["_table"], r["_id"]) for r in rows] == [
            ("limiter", "rateLimits", limit)
        ]
        one = client.get(
            "/api/list_snapshot", params={"tableName": "rateLimits", "component": "limiter"}
        ).json()["values"]
        assert [r["_id"] for r in one] == [limit]
        selection = {"_other": "excluded", "": {"_other": "included"}}
        posted = client.post("/api/list_snapshot", json={"selection": selection}).json()
        assert [r["_id"] for r in posted["values"]] == [app]
        got = client.get("/api/list_snapshot", params={"selection": json.dumps(selection)})
        assert [r["_id"] for r in got.json()["values"]] == [app]
        bad = client.post("/api/list_snapshot", json={"selection": {"_other": "sometimes"}})
        assert bad.status_code == 400 and bad.json()["code"] == "InvalidSelection"


def test_table_column_names_by_component(served):
    backend, url = served
    backend.db.mutate(
        lambda tx: [
            tx.insert("limiter/rateLimits", {"v": 1, "name": "a"}),
            tx.insert("limiter/rateLimits", {"w": 2}),
            tx.insert("items", {"n": 1}),
        ]
    )
    backend.db.mutate(lambda tx: tx.delete(tx.insert("workpool/empty", {"x": 1})))
    admin = {"Authorization": f"Convex {backend.admin_key}"}
    with httpx.Client(base_url=url, headers=admin, timeout=30) as client:
        got = client.get("/api/get_table_column_names").json()
        assert client.get("/api/test_streaming_export_connection").json() is None
    assert got == {
        "byComponent": {
            "": [{"name": "items", "columns": ["_creationTime", "_id", "n"]}],
            "limiter": [
                {"name": "rateLimits", "columns": ["_creationTime", "_id", "name", "v", "w"]}
            ],
            "workpool": [{"name": "empty", "columns": ["_creationTime", "_id"]}],
        }
    }
    assert httpx.get(url + "/api/get_table_column_names", timeout=30).status_code == 403
