"""The dashboard's ops screens in Chromium against `headwater serve`: running a
function (internal too) with its result, console lines and duration; the function log
live as another client calls; canceling a scheduled job; deleting a stored file; the
health figures. The app is `ops_app/convex` (tasks with console lines, a job scheduled
an hour ahead, a cron, files stored by an action)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from dashboard_pages import WAIT_MS, Dashboard, login, serve_dashboard
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parent / "ops_app" / "convex"


def readme_screenshot(page, name: str) -> None:
    """The README's pictures: into DASHBOARD_SCREENSHOTS (docs/screenshots for the
    README) when it is set, else beside the other test artifacts."""
    chosen = os.environ.get("DASHBOARD_SCREENSHOTS")
    folder = ROOT / chosen if chosen else ROOT / "test-artifacts" / "dashboard" / "readme"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))


@dataclass
class OpsDashboard(Dashboard):
    functions: Path = Path()  # the deployed folder, watched by the server


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsDashboard]:
    """`headwater serve` with the dashboard, deploying the ops app (overrides conftest's)."""
    folder = tmp_path_factory.mktemp("dashboard-ops")
    functions = folder / "convex"
    shutil.copytree(APP, functions, ignore=shutil.ignore_patterns("_generated"))
    with serve_dashboard(folder / "data", functions) as served:
        yield OpsDashboard(**vars(served), functions=functions)


def _run(page, function: str, args: str, button: str) -> str:
    page.get_by_role("button", name=re.compile(f"^{function}\\b")).click()
    page.get_by_label("Arguments (Convex JSON)").fill(args)
    page.get_by_role("button", name=button).click()
    result = page.get_by_role("status", name="Run result")
    result.wait_for()
    return result.inner_text()


def test_running_an_internal_query_shows_result_log_lines_and_duration(page, dashboard):
    login(page, dashboard, "functions")
    page.get_by_role("button", name=re.compile(r"^double\b")).click()
    validator = page.get_by_label("Argument validator").inner_text()
    assert "n: v.float64()" in validator
    assert "note: v.optional(v.string())" in validator
    assert "internal" in page.get_by_role("region", name="Function detail").inner_text()
    # The arguments start as the required fields with plain values (`note` is optional).
    assert json.loads(page.get_by_label("Arguments (Convex JSON)").input_value()) == {"n": 0}

    shown = _run(page, "double", '{"n": 21}', "Run query")
    assert shown.startswith("Success in ")
    assert re.search(r"in \d+(\.\d+)? (ms|s)", shown)
    assert '"doubled": 42' in page.get_by_label("Result value").inner_text()
    assert page.get_by_label("Log lines").inner_text() == "[LOG] 'doubling' 21"
    readme_screenshot(page, "dashboard-functions.png")


def test_a_function_runs_from_the_keyboard_alone(page, dashboard):
    login(page, dashboard, "functions")
    page.get_by_label("Filter functions").focus()
    page.keyboard.type("double")
    page.keyboard.press("Tab")  # the one function left
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the arguments
    page.keyboard.press("Control+A")
    page.keyboard.type('{"n": 2.5}')
    page.keyboard.press("Tab")  # Run
    page.keyboard.press("Enter")
    page.get_by_role("status", name="Run result").wait_for()
    assert '"doubled": 5' in page.get_by_label("Result value").inner_text()


def test_running_a_mutation_writes_and_a_failure_shows_its_error(page, dashboard):
    login(page, dashboard, "functions")
    shown = _run(page, "add", '{"text": "from the dashboard"}', "Run mutation")
    assert shown.startswith("Success")
    assert "[LOG] 'adding task' 'from the dashboard'" in shown
    assert [t["text"] for t in dashboard.query("tasks:list")] == ["from the dashboard"]

    shown = _run(page, "fail", "{}", "Run mutation")
    assert shown.startswith("Failure in ")
    assert "this task always fails" in page.get_by_label("Error", exact=True).inner_text()
    assert "[WARN] 'about to fail'" in page.get_by_label("Log lines").inner_text()


def test_running_an_action_shows_what_it_returns(page, dashboard):
    login(page, dashboard, "functions")
    shown = _run(page, "save", '{"text": "saved by an action"}', "Run action")
    assert shown.startswith("Success")
    storage_id = page.get_by_label("Result value").inner_text().strip().strip('"')
    assert storage_id in [f["_id"] for f in dashboard.query("files:list")]


def test_bad_arguments_are_refused_with_a_clear_error_and_change_nothing(page, dashboard):
    login(page, dashboard, "functions")
    before = dashboard.query("tasks:list")
    shown = _run(page, "add", "{not json", "Run mutation")
    assert "The arguments are not valid JSON" in shown
    shown = _run(page, "add", "[1, 2]", "Run mutation")
    assert "The arguments must be a JSON object" in shown
    shown = _run(page, "add", '{"text": 5}', "Run mutation")  # the server's validator
    assert "ArgumentValidationError" in page.get_by_label("Error", exact=True).inner_text()
    assert "Path: .text" in shown
    assert dashboard.query("tasks:list") == before


def test_deploy_history_lists_the_modules_of_the_deploy(page, dashboard):
    login(page, dashboard, "functions")
    history = page.get_by_role("region", name="Deploy history")
    history.get_by_text("Added:").first.wait_for()
    text = history.inner_text()
    assert "tasks" in text and "files" in text
    history.get_by_text("Schema changed").first.click()  # the first deploy brought one
    assert "tasks" in history.locator("details[open]").first.inner_text()


def test_a_mutation_by_another_client_appears_live_in_logs(page, dashboard):
    login(page, dashboard, "logs")
    executions = page.get_by_role("list", name="Function executions")
    page.get_by_role("heading", name="Logs").wait_for()
    dashboard.mutation("tasks:add", {"text": "written elsewhere"})
    entry = executions.locator("li", has_text="written elsewhere")
    entry.wait_for()
    text = entry.inner_text()
    assert "tasks:add" in text and "Mutation" in text and "success" in text
    assert re.search(r"\d+(\.\d+)? (ms|s)", text)

    with pytest.raises(AssertionError):
        dashboard.mutation("tasks:fail")
    # An earlier test of the module failed the same function from the dashboard, so the
    # entry to wait for is the newest one: the failure just caused heads the list.
    newest = executions.locator("li").first
    expect(newest).to_contain_text("this task always fails", timeout=WAIT_MS)
    assert "failure" in newest.inner_text() and "about to fail" in newest.inner_text()

    page.get_by_label("Outcome").select_option("failure")
    page.wait_for_function("() => !document.body.innerText.includes('written elsewhere')")
    assert executions.locator("li", has_text="this task always fails").count() >= 1
    page.get_by_label("Outcome").select_option("all")
    page.get_by_label("Function", exact=True).fill("tasks:add")
    entry.wait_for()
    expect(executions.locator("li", has_text="this task always fails")).to_have_count(0)
    page.get_by_label("Function", exact=True).fill("")
    readme_screenshot(page, "dashboard-function-logs.png")


def test_logs_keep_the_newest_500_executions(page, dashboard):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: dashboard.query("tasks:double", {"n": n}), range(510)))
    dashboard.mutation("tasks:add", {"text": "the newest"})
    login(page, dashboard, "logs")
    page.get_by_text("500 of 500 executions").wait_for()
    executions = page.get_by_role("list", name="Function executions")
    assert "the newest" in executions.locator("li").first.inner_text()
    assert executions.locator("li").count() == 500
    page.get_by_label("Function", exact=True).fill("tasks:add")  # a short page to picture


def test_leaving_logs_ends_the_poll_without_errors(page, dashboard):
    login(page, dashboard, "logs")
    page.get_by_role("heading", name="Logs").wait_for()
    page.get_by_role("link", name="Health").click()
    page.get_by_role("heading", name="Health").wait_for()
    dashboard.mutation("tasks:add", {"text": "after leaving"})
    page.wait_for_timeout(500)  # a poll still running would now fail (console error)


def test_canceling_a_scheduled_job(page, dashboard):
    job = dashboard.mutation("tasks:later", {"text": "in an hour"})
    login(page, dashboard, "schedules")
    cancel = page.get_by_role("button", name=f"Cancel tasks:addInternal ({job})")
    cancel.click()
    row = page.locator("tr", has=page.get_by_text('{"text":"in an hour"}'))
    row.get_by_text("canceled").wait_for()
    assert cancel.count() == 0
    jobs = dashboard.query("_system/dashboard/ops:scheduled")
    assert [j["state"] for j in jobs if j["id"] == job] == ["canceled"]
    crons = page.get_by_role("region", name="Cron jobs").inner_text()
    assert "nightly" in crons and 'cron "0 3 * * *"' in crons and "tasks:addInternal" in crons


def test_deleting_a_file_asks_first(page, dashboard):
    kept = dashboard.call("action", "files:save", {"text": "keep me"})
    doomed = dashboard.call("action", "files:save", {"text": "delete me"})
    login(page, dashboard, "files")
    page.get_by_role("button", name=f"Delete {doomed}").click()
    page.get_by_role("button", name="Keep").click()  # changing one's mind deletes nothing
    assert doomed in [f["_id"] for f in dashboard.query("files:list")]
    page.get_by_role("button", name=f"Delete {doomed}").click()
    page.get_by_role("button", name="Confirm delete").click()
    page.get_by_text(doomed).wait_for(state="detached")
    assert page.get_by_text(kept).is_visible()
    stored = [f["_id"] for f in dashboard.query("files:list")]
    assert kept in stored and doomed not in stored
    assert "text/plain" in page.locator("tr", has=page.get_by_text(kept)).inner_text()
    link = page.get_by_role("link", name=f"Download {kept}")
    assert link.get_attribute("href").startswith(dashboard.api_url + "/api/storage/")


def test_health_shows_the_figures_and_refreshes(page, dashboard):
    login(page, dashboard, "health")
    figures = page.get_by_label("Health figures")
    figures.wait_for()
    text = figures.inner_text()
    for label in (
        "Commits per second",
        "Function latency p50",
        "Function latency p99",
        "Connections",
        "Subscriptions",
        "Search indexes",
        "Query cache",
        "Data folder size",
        "Newest commit",
    ):
        assert label in text
    assert re.search(r"Query cache\s+(no lookups yet|\d+% hits); \d+ results", text), text
    assert re.search(r"Data folder size\s+\d+(\.\d)? (B|KB|MB)", text)
    updated = page.get_by_text(re.compile("^Updated ")).inner_text()
    page.wait_for_function(  # asked again every 2 s
        "old => !document.body.innerText.includes(old)", arg=updated, timeout=WAIT_MS
    )
    for _ in range(3):
        dashboard.mutation("tasks:add", {"text": "a new commit"})
    page.wait_for_function(  # looked up on every poll: a re-render may replace the figure
        "() => [...document.querySelectorAll('.figure')].some(f => f.innerText.includes("
        "'Commits per second') && Number(f.querySelector('dd')?.innerText) > 0)",
        timeout=WAIT_MS,
    )


def test_a_deploy_appears_live_with_its_modules_and_schema(page, dashboard):
    login(page, dashboard, "functions")
    history = page.get_by_role("region", name="Deploy history")
    history.get_by_text("Added:").first.wait_for()
    deploys = history.locator("li.card").count()
    (dashboard.functions / "notes.ts").write_text(NOTES)
    schema = dashboard.functions / "schema.ts"
    schema.write_text(
        schema.read_text().replace("tasks:", "notes: defineTable({ body: v.string() }),\n  tasks:")
    )
    newest = history.locator("li.card").first
    newest.get_by_text("Added: notes").wait_for(timeout=15_000)  # the server polls the folder
    assert history.locator("li.card").count() == deploys + 1
    newest.get_by_text("Schema changed").click()
    before, after = newest.locator("details pre").all_inner_texts()
    assert "notes" not in before and "notes" in after
    page.get_by_role("button", name=re.compile(r"^recent\b")).wait_for()  # the list is live too


NOTES = """import { query } from "./_generated/server";

export const recent = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("notes").take(5),
});
"""
