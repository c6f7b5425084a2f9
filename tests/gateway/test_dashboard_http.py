"""The dashboard's data functions over the HTTP API: an admin key reads them (values in
Convex's encoded JSON, timestamps as strings), anyone else is told no such function
exists, as for every system function."""

from __future__ import annotations

import httpx
import pytest

from engine import Database
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext, GatewaySettings
from gateway.server import run_server_in_thread
from udf.executor import Executor

KEY = generate_admin_key("headwater")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = Database.open(tmp_path_factory.mktemp("dash") / "data")
    db.mutate(lambda tx: tx.insert("notes", {"body": "hi", "n": 5}))
    executor = Executor(db)
    context = GatewayContext(executor, HeadwaterAuthenticator(KEY), GatewaySettings())
    url, stop = run_server_in_thread(create_app(context))
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
        yield http
    stop()
    executor.close()
    db.close()


def query(client, path, args, headers=None):
    body = {"path": path, "args": args, "format": "json"}
    return client.post("/api/query", json=body, headers=headers or {}).json()


def test_admins_read_pages_and_others_find_no_function(client):
    admin = {"Authorization": f"Convex {KEY}"}
    page = query(client, "_system/dashboard/data:page", {"table": "notes", "numItems": 5}, admin)
    assert page["status"] == "success", page
    value = page["value"]
    assert [d["body"] for d in value["page"]] == ["hi"] and value["isDone"] is True
    assert isinstance(value["ts"], str) and value["ts"].isdigit()
    tables = query(client, "_system/dashboard/data:tables", {}, admin)["value"]
    assert tables == [
        {"name": "notes", "component": "", "table": "notes", "count": 1, "hasSchema": False}
    ]
    for headers in ({}, {"Authorization": "Convex not-the-key"}):
        answer = query(
            client, "_system/dashboard/data:page", {"table": "notes", "numItems": 5}, headers
        )
        assert answer.get("status") != "success"
        text = answer.get("errorMessage") or answer.get("message") or ""
        if not headers:
            assert "Could not find public function for '_system/dashboard/data:page'" in text
