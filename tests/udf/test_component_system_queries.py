"""The CLI's system queries name a component: ``npx convex data --component limiter``."""

from __future__ import annotations

from udf.calls import ADMIN, FunctionCall
from udf.system_functions import run_system_query

PAGE = {"paginationOpts": {"cursor": None, "numItems": 100}}


def _run(db, path, args, component_path=""):
    call = FunctionCall(path, args, "query", ADMIN, component_path=component_path)
    outcome = run_system_query(db, call)
    assert outcome.error is None, outcome.error
    return outcome.value


def test_tables_and_table_data_of_a_component(db):
    db.mutate(
        lambda tx: [
            tx.insert("messages", {"body": "hi"}),
            tx.insert("limiter/rateLimits", {"v": 1}),
            tx.insert("workpool/batch/work", {"fn": "x"}),
        ]
    )
    names = lambda component: [  # noqa: E731
        t["name"] for t in _run(db, "_system/cli/tables", PAGE, component)["page"]
    ]
    assert names("") == ["messages"]
    assert names("limiter") == ["rateLimits"]
    assert names("workpool/batch") == ["work"]
    assert names("nope") == []
    rows = _run(
        db, "_system/cli/tableData", {**PAGE, "table": "rateLimits", "order": "asc"}, "limiter"
    )
    assert [r["v"] for r in rows["page"]] == [1]
    # The app has no rateLimits table, and a qualified name is no table name.
    app = _run(db, "_system/cli/tableData", {**PAGE, "table": "rateLimits", "order": "asc"})
    assert app["page"] == []
    qualified = {**PAGE, "table": "limiter/rateLimits", "order": "asc"}
    assert _run(db, "_system/cli/tableData", qualified)["page"] == []
