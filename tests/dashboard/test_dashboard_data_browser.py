"""The data screens in Chromium: a table's documents page by page and live while
another client writes, filters, insert, edit and delete through the dashboard (a bad
edit shows the schema's error and changes nothing), and each document's history."""

from __future__ import annotations

import json

import pytest
from dashboard_pages import WAIT_MS, documents_loaded, login
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def documents(dashboard, table="messages"):
    page = dashboard.query(
        "_system/dashboard/data:page", {"table": table, "numItems": 200, "order": "asc"}
    )
    return page["page"]


def send(dashboard, author, body):
    return dashboard.mutation("messages:send", {"author": author, "body": body})


def test_a_table_lists_its_documents_and_a_row_expands_to_json(page, dashboard):
    ids = [send(dashboard, "ada", f"browse {i}") for i in range(3)]
    login(page, dashboard, "data")
    page.get_by_role("link", name="messages").click()
    page.get_by_role("heading", name="messages").wait_for()
    rows = page.get_by_role("table", name="Documents")
    for i in range(3):
        rows.get_by_role("row").filter(has_text=f"browse {i}").wait_for()
    for column in ("_id", "author", "body", "likes", "_creationTime"):
        assert rows.get_by_role("columnheader", name=column, exact=True).count() == 1
    page.get_by_role("button", name=f"Expand {ids[1]}").click()
    shown = json.loads(page.get_by_label(f"Document {ids[1]}").inner_text())
    assert shown["_id"] == ids[1]
    assert shown["body"] == "browse 1" and shown["author"] == "ada" and shown["likes"] == 0


def test_the_table_changes_live_while_another_client_writes(page, dashboard):
    login(page, dashboard, "data/messages")
    rows = page.get_by_role("table", name="Documents")
    documents_loaded(page).wait_for()  # subscribed: what follows arrives live
    send(dashboard, "grace", "written elsewhere")
    rows.get_by_role("row").filter(has_text="written elsewhere").wait_for()
    doc_id = next(d["_id"] for d in documents(dashboard) if d["body"] == "written elsewhere")
    dashboard.mutation("messages:like", {"id": doc_id})
    row = rows.get_by_role("row").filter(has_text="written elsewhere")
    # actions, _id, author, body, likes, _creationTime
    expect(row.get_by_role("cell").nth(4)).to_have_text("1")


def test_a_write_from_the_python_client_appears_without_reload(page, dashboard):
    from convex import ConvexClient

    send(dashboard, "http", "sent over HTTP first")
    login(page, dashboard, "data/messages")
    rows = page.get_by_role("table", name="Documents")
    rows.get_by_role("row").filter(has_text="sent over HTTP first").wait_for()
    ConvexClient(dashboard.api_url).mutation(
        "messages:send", {"author": "python", "body": "sent by the PyPI client"}
    )
    rows.get_by_role("row").filter(has_text="sent by the PyPI client").wait_for()


def test_a_filter_keeps_the_matching_documents(page, dashboard):
    send(dashboard, "filter-ann", "kept")
    send(dashboard, "filter-bob", "dropped")
    login(page, dashboard, "data/messages")
    rows = page.get_by_role("table", name="Documents")
    rows.get_by_role("row").filter(has_text="dropped").wait_for()
    page.get_by_role("button", name="Add filter").click()
    page.get_by_label("Field").fill("author")
    page.get_by_label("Operator").select_option("eq")
    page.get_by_label("Value (Convex JSON)").fill('"filter-ann"')
    page.get_by_role("button", name="Apply filters").click()
    rows.get_by_role("row").filter(has_text="dropped").wait_for(state="detached")
    expect(rows.get_by_role("row").filter(has_text="kept")).to_have_count(1)
    expect(rows.get_by_role("row")).to_have_count(2)  # the header and the one document


def test_a_filter_value_that_is_not_json_is_explained(page, dashboard):
    login(page, dashboard, "data/messages")
    page.get_by_role("button", name="Add filter").click()
    page.get_by_label("Field").fill("author")
    page.get_by_label("Value (Convex JSON)").fill("ann")
    page.get_by_role("button", name="Apply filters").click()
    assert "The value of filter 1 is not valid JSON" in page.get_by_role("alert").inner_text()


def test_insert_edit_and_delete_a_document(page, dashboard):
    login(page, dashboard, "data/messages")
    rows = page.get_by_role("table", name="Documents")
    documents_loaded(page).wait_for()
    page.get_by_role("button", name="Add document").click()
    page.get_by_label("New document (Convex JSON)").fill(
        '{"author": "ui", "body": "typed in the dashboard", "likes": 5}'
    )
    page.get_by_role("button", name="Insert").click()
    row = rows.get_by_role("row").filter(has_text="typed in the dashboard")
    row.wait_for()
    [doc] = [d for d in documents(dashboard) if d["body"] == "typed in the dashboard"]
    assert doc["author"] == "ui" and doc["likes"] == 5

    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_label(f"Edit {doc['_id']} (Convex JSON)")
    assert json.loads(editor.input_value()) == {
        "author": "ui",
        "body": "typed in the dashboard",
        "likes": 5,
    }
    editor.fill('{"author": "ui", "body": "edited in the dashboard", "likes": 6}')
    page.get_by_role("button", name="Save").click()
    edited = rows.get_by_role("row").filter(has_text="edited in the dashboard")
    edited.wait_for()
    [doc] = [d for d in documents(dashboard) if d["_id"] == doc["_id"]]
    assert doc["body"] == "edited in the dashboard" and doc["likes"] == 6

    edited.get_by_role("button", name="Delete").click()
    edited.get_by_role("button", name="Confirm delete").click()
    edited.wait_for(state="detached")
    assert not [d for d in documents(dashboard) if d["_id"] == doc["_id"]]


def test_a_bad_edit_shows_the_schema_error_and_changes_nothing(
    page, dashboard, allowed_console_errors
):
    # The official client also logs a failed mutation's server error on the console.
    allowed_console_errors.append("does not match the schema")
    doc_id = send(dashboard, "strict", "valid as sent")
    before = [d for d in documents(dashboard) if d["_id"] == doc_id]
    login(page, dashboard, "data/messages")
    row = (
        page.get_by_role("table", name="Documents")
        .get_by_role("row")
        .filter(has_text="valid as sent")
    )
    row.get_by_role("button", name="Edit").click()
    page.get_by_label(f"Edit {doc_id} (Convex JSON)").fill(
        '{"author": "strict", "body": "valid as sent", "likes": "many"}'
    )
    page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert").inner_text()
    assert "Schema validation failed" in alert or "does not match the schema" in alert, alert
    assert "likes" in alert
    assert [d for d in documents(dashboard) if d["_id"] == doc_id] == before

    page.get_by_label(f"Edit {doc_id} (Convex JSON)").fill("{not json")
    page.get_by_role("button", name="Save").click()
    assert "The document is not valid JSON" in page.get_by_role("alert").inner_text()
    assert [d for d in documents(dashboard) if d["_id"] == doc_id] == before


def test_an_unknown_table_says_so(page, dashboard):
    login(page, dashboard, "data/no_such_table")
    assert page.get_by_role("alert").inner_text() == 'Table "no_such_table" does not exist.'


def test_a_documents_history_lists_its_versions_with_the_changes(page, dashboard):
    doc_id = send(dashboard, "historian", "a storied message")
    dashboard.mutation("messages:like", {"id": doc_id})
    dashboard.mutation("messages:like", {"id": doc_id})
    login(page, dashboard, "data/messages")
    row = (
        page.get_by_role("table", name="Documents")
        .get_by_role("row")
        .filter(has_text="a storied message")
    )
    row.get_by_role("button", name="History").click()
    history = page.get_by_role("region", name="Document history")
    versions = history.get_by_role("listitem")
    versions.nth(2).wait_for()
    assert versions.count() == 3
    newest = versions.nth(0).get_by_role("row").filter(has_text="likes")
    assert newest.get_by_role("cell").nth(1).inner_text() == "1"
    assert newest.get_by_role("cell").nth(2).inner_text() == "2"
    assert "a storied message" in versions.nth(2).inner_text()


def test_the_schema_panel_shows_validator_indexes_and_schema_ts(page, dashboard):
    send(dashboard, "schema", "shaped")
    login(page, dashboard, "data/messages")
    page.get_by_role("button", name="Schema").click()
    panel = page.get_by_role("region", name="Schema")
    panel.get_by_role("cell", name="by_author").wait_for()
    assert "ready" in panel.get_by_role("row").filter(has_text="by_author").inner_text()
    snippet = panel.get_by_label("schema.ts").inner_text()
    assert "defineTable" in snippet and "v.string()" in snippet and "author" in snippet
    assert panel.get_by_role("button", name="Copy schema.ts").is_enabled()


def test_sorting_by_an_index_and_loading_more(page, dashboard):
    for i in range(55):
        dashboard.mutation("channels:create", {"name": f"channel {i:02d}"})
    login(page, dashboard, "data/channels")
    rows = page.get_by_role("table", name="Documents").get_by_role("row")
    rows.filter(has_text="channel 54").wait_for()
    assert rows.count() == 51  # the header and the first page of 50, newest first
    page.get_by_role("button", name="Load more").click()
    rows.filter(has_text="channel 00").wait_for()
    assert page.get_by_text("documents, all loaded").is_visible()
    page.get_by_label("Order").select_option("asc")
    # The table may be empty for a moment while the other order loads: wait, never read.
    first = page.get_by_role("table", name="Documents").locator("tbody tr").first
    expect(first).to_contain_text("channel 00", timeout=WAIT_MS)


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML)"""


def test_every_input_has_a_label_and_keyboard_focus_shows(page, dashboard):
    send(dashboard, "keys", "reachable by keyboard")
    login(page, dashboard, "data/messages")
    page.get_by_role("table", name="Documents").get_by_role("row").nth(1).wait_for()
    page.get_by_role("button", name="Add filter").click()
    page.get_by_role("button", name="Add document").click()
    page.get_by_role("button", name="Schema").click()
    page.get_by_role("region", name="Schema").get_by_role("button").first.wait_for()
    assert page.evaluate(UNLABELLED) == []
    assert page.locator("[onclick], div[role=button], a:not([href])").count() == 0
    page.locator("body").focus()
    page.keyboard.press("Tab")
    outline = page.evaluate(
        "() => getComputedStyle(document.activeElement).outlineStyle"
        " + ' ' + getComputedStyle(document.activeElement).outlineWidth"
    )
    assert outline.split()[0] != "none" and outline.split()[1] != "0px", outline
    page.set_viewport_size({"width": 1366, "height": 768})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366


def test_a_document_past_the_size_limit_is_refused_and_nothing_is_written(
    page, dashboard, allowed_console_errors
):
    # The official client also logs a failed mutation's server error on the console.
    allowed_console_errors.append("too large")
    count = len(documents(dashboard))
    login(page, dashboard, "data/messages")
    page.get_by_role("button", name="Add document").click()
    huge = json.dumps({"author": "huge", "body": "x" * (1 << 20), "likes": 0})
    page.get_by_label("New document (Convex JSON)").fill(huge)
    page.get_by_role("button", name="Insert").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("too large")
    assert len(documents(dashboard)) == count
