"""The README's dashboard pictures, taken from a small chat app: the data table, time
travel, a document's history and the commit log. Written to test-artifacts/dashboard/
readme/, or to the folder in DASHBOARD_SCREENSHOTS (docs/screenshots for the README)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dashboard_pages import as_of, login

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    ("ada", "Has anyone tried the new index on author?"),
    ("grace", "Yes: the query went from a scan to a range read."),
    ("linus", "Paging through the table is live too."),
    ("ada", "And time travel reads the table as of any commit."),
    ("grace", "The commit log shows which function wrote what."),
]


def folder() -> Path:
    chosen = os.environ.get("DASHBOARD_SCREENSHOTS")
    path = ROOT / chosen if chosen else ROOT / "test-artifacts" / "dashboard" / "readme"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_readme_screenshots(page, dashboard):
    for name in ("general", "random"):
        dashboard.mutation("channels:create", {"name": name})
    ids = [dashboard.mutation("messages:send", {"author": a, "body": b}) for a, b in MESSAGES]
    dashboard.mutation("messages:like", {"id": ids[1]})
    past = dashboard.query("_system/dashboard/data:range")["newestTs"]
    for _ in range(3):
        dashboard.mutation("messages:like", {"id": ids[1]})
    dashboard.mutation("messages:like", {"id": ids[3]})
    out = folder()

    login(page, dashboard, "data/messages")
    rows = page.get_by_role("table", name="Documents")
    rows.get_by_role("row").filter(has_text=MESSAGES[0][1]).wait_for()
    page.get_by_role("button", name=f"Expand {ids[3]}").click()
    page.screenshot(path=str(out / "dashboard-data.png"))

    page.goto(f"{dashboard.dashboard_url}data/messages?ts={past}")
    as_of(page).wait_for()
    rows.get_by_role("row").filter(has_text=MESSAGES[1][1]).wait_for()
    page.screenshot(path=str(out / "dashboard-time-travel.png"))

    page.get_by_role("button", name="Live").click()
    row = rows.get_by_role("row").filter(has_text=MESSAGES[1][1])
    row.get_by_role("button", name="History").click()
    history = page.get_by_role("region", name="Document history")
    history.get_by_role("listitem").nth(4).wait_for()
    page.screenshot(path=str(out / "dashboard-history.png"))

    page.get_by_role("link", name="Commit log").click()
    commits = page.get_by_role("table", name="Commits")
    commits.get_by_role("row").filter(has_text="messages:like").first.wait_for()
    commits.get_by_role("row").nth(1).get_by_role("button").click()
    page.get_by_role("region", name="Commit").get_by_role("heading", level=3).wait_for()
    page.screenshot(path=str(out / "dashboard-log.png"))
    for name in ("data", "time-travel", "history", "log"):
        assert (out / f"dashboard-{name}.png").stat().st_size > 10_000
