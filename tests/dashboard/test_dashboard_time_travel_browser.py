"""Time travel and the commit log in Chromium: a past `?ts=` shows the old values, the
previous/next commit buttons, the slider and the date picker move it, a time outside
the history kept is explained; the log lists a mutation's commit with its function
and opens it with its documents."""

from __future__ import annotations

import json

import pytest
from dashboard_pages import as_of, login
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def newest_ts(dashboard) -> str:
    return dashboard.query("_system/dashboard/data:range")["newestTs"]


def likes_cell(page, body):
    row = page.get_by_role("table", name="Documents").get_by_role("row").filter(has_text=body)
    return row.get_by_role("cell").nth(4)  # actions, _id, author, body, likes


def test_a_past_ts_shows_the_old_values_and_live_returns(page, dashboard):
    doc_id = dashboard.mutation("messages:send", {"author": "tt", "body": "time traveller"})
    before = newest_ts(dashboard)
    dashboard.mutation("messages:like", {"id": doc_id})
    dashboard.mutation("messages:like", {"id": doc_id})
    login(page, dashboard, f"data/messages?ts={before}")
    as_of(page).wait_for()
    assert likes_cell(page, "time traveller").inner_text() == "0"
    assert page.get_by_role("button", name="Edit").count() == 0  # the past is read-only
    page.get_by_role("button", name="Live").click()
    page.get_by_role("region", name="Time travel").get_by_text("Live", exact=True).first.wait_for()
    assert "ts=" not in page.url
    likes = likes_cell(page, "time traveller")
    page.wait_for_function(
        "() => [...document.querySelectorAll('tr')].some(r => r.innerText.includes("
        "'time traveller') && r.cells[4]?.innerText === '2')"
    )
    assert likes.inner_text() == "2"


def test_previous_and_next_commit_step_through_the_log(page, dashboard):
    doc_id = dashboard.mutation("messages:send", {"author": "tt", "body": "stepper"})
    dashboard.mutation("messages:like", {"id": doc_id})
    login(page, dashboard, "data/messages")
    likes_cell(page, "stepper").wait_for()
    page.get_by_role("button", name="Previous commit").click()
    page.wait_for_url("**ts=*")
    page.wait_for_function(
        "() => [...document.querySelectorAll('tr')].some(r => r.innerText.includes("
        "'stepper') && r.cells[4]?.innerText === '0')"
    )
    page.get_by_role("button", name="Next commit").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('tr')].some(r => r.innerText.includes("
        "'stepper') && r.cells[4]?.innerText === '1')"
    )


def test_the_slider_and_the_date_picker_move_the_time(page, dashboard):
    dashboard.mutation("channels:create", {"name": "slid"})
    oldest = dashboard.query("_system/dashboard/data:range")["oldestTs"]
    login(page, dashboard, "data")
    slider = page.get_by_label("Point in time")
    expect(slider).to_be_enabled()  # once the history window is known
    slider.focus()
    page.keyboard.press("Home")
    page.wait_for_url(f"**ts={oldest}")
    as_of(page).wait_for()
    picker = page.get_by_label("Date and time")
    picker.fill("2001-01-01T00:00:00")
    alert = page.get_by_role("alert")
    assert "is before the oldest history kept" in alert.inner_text()
    assert page.get_by_role("link", name="channels").count() == 0


def test_a_ts_outside_the_history_is_explained(page, dashboard):
    login(page, dashboard, "data/messages?ts=5")
    assert "is before the oldest history kept" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("table", name="Documents").count() == 0
    page.goto(dashboard.dashboard_url + "data?ts=99999999999999999999")
    assert "is after the newest commit" in page.get_by_role("alert").inner_text()


def test_the_log_lists_a_mutations_commit_and_opens_it(page, dashboard):
    doc_id = dashboard.mutation("messages:send", {"author": "logger", "body": "in the log"})
    login(page, dashboard, "log")
    commits = page.get_by_role("table", name="Commits")
    first = commits.get_by_role("row").nth(1)
    first.filter(has_text="messages:send").wait_for()
    assert "insert messages" in first.inner_text()
    first.get_by_role("button").click()
    commit = page.get_by_role("region", name="Commit")
    commit.get_by_role("heading", name=f"insert messages {doc_id}").wait_for()
    after = json.loads(commit.locator("pre").last.inner_text())
    assert after["body"] == "in the log" and after["_id"] == doc_id
    assert "messages:send" in commit.inner_text()


def test_the_log_pages_to_older_commits(page, dashboard):
    for i in range(30):
        dashboard.mutation("channels:create", {"name": f"page-{i}"})
    login(page, dashboard, "log")
    rows = page.get_by_role("table", name="Commits").get_by_role("row")
    rows.nth(25).wait_for()
    assert rows.count() == 26  # the header and 25 commits
    first_ts = rows.nth(1).get_by_role("cell").last
    newest = first_ts.inner_text()
    page.get_by_role("button", name="Older").click()
    expect(first_ts).not_to_have_text(newest)
    page.get_by_role("button", name="Newer").click()
    expect(first_ts).to_have_text(newest)
    expect(page.get_by_role("button", name="Newer")).to_have_count(0)


def test_the_log_at_a_past_ts_starts_at_that_commit(page, dashboard):
    dashboard.mutation("channels:create", {"name": "before the cut"})
    cut = newest_ts(dashboard)
    dashboard.mutation("channels:create", {"name": "after the cut"})
    login(page, dashboard, f"log?ts={cut}")
    first = page.get_by_role("table", name="Commits").get_by_role("row").nth(1)
    first.filter(has_text=cut).wait_for()
    assert "channels:create" in first.inner_text()
    page.get_by_role("button", name="Live").click()
    first.filter(has_not_text=cut).wait_for()
