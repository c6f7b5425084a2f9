"""``ops:health`` against a real deployment: commit rate, latency percentiles, the data
folder's size, search lag, and the gauges the gateway registers."""

from __future__ import annotations

import pytest

from tests.udf.dashboard_app import DashboardApp
from udf.dashboard_health import folder_bytes
from udf.function_log import FunctionLog


@pytest.fixture
def app(tmp_path):
    deployed = DashboardApp(tmp_path)
    yield deployed
    deployed.close()


def test_health_reports_commits_latency_size_and_newest_commit(app):
    for i in range(10):
        app.run("notes:add", {"body": f"n{i}"}, "mutation")
    app.run("notes:shout", {"text": "hi"}, "action")
    health = app.ok("ops:health")
    assert health["commitsPerSecond"] >= 10 / 60  # at least the ten just made
    latency = health["functionLatencyMs"]
    assert 0 < latency["p50"] <= latency["p99"] < 10_000
    assert health["newestTs"] == str(app.db.latest_ts())
    assert health["dataFolderBytes"] == pytest.approx(folder_bytes(app.db.path), rel=0.5)
    assert health["dataFolderBytes"] > 0
    assert health["connections"] == 0 and health["subscriptions"] == 0  # no gateway here
    assert health["kafka"] == []
    assert app.db.wait_processed(app.db.latest_ts())
    before = app.ok("ops:health", {"refresh": 2})["queryCache"]
    assert set(before) == {"hits", "misses", "entries", "bytes"}
    app.run("notes:list", {}, "query")
    app.run("notes:list", {}, "query")  # the same answer: from the cache
    after = app.ok("ops:health", {"refresh": 3})["queryCache"]
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"] + 1
    assert after["entries"] >= 1 and after["bytes"] > 0
    assert app.db.wait_for_search_indexes()
    assert app.ok("ops:health")["search"] == {
        "caughtUp": True,
        "lagCommits": 0,
        "indexes": 0,
        "backfilling": 0,
    }


def test_health_without_executions_has_no_latency(tmp_path):
    deployed = DashboardApp(tmp_path)
    try:
        deployed.ex.function_log = FunctionLog()  # nothing has run
        assert deployed.ok("ops:health")["functionLatencyMs"] == {"p50": None, "p99": None}
    finally:
        deployed.close()


def test_health_reads_the_gauges_the_gateway_registers(app):
    gauges = app.ex.dashboard.gauges
    gauges["sync"] = lambda: {"connections": 3, "subscriptions": 7, "live_queries": 2}
    gauges["kafka:orders"] = lambda: {"lagCommits": 12}
    health = app.ok("ops:health", {"refresh": 1})
    assert health["connections"] == 3 and health["subscriptions"] == 7
    assert health["kafka"] == [{"name": "orders", "lagCommits": 12}]


def test_health_refuses_unexpected_arguments(app):
    assert "unexpected argument `tables`" in app.error("ops:health", {"tables": 1})


def test_folder_bytes_sums_every_file_below(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 32)
    assert folder_bytes(tmp_path) == 42
