"""Logging in to the dashboard in Chromium: the key from the URL fragment (then removed
from the address bar) or typed into the form; a refused key shows why and no data."""

from __future__ import annotations

import pytest
from dashboard_pages import login

pytestmark = pytest.mark.slow

REFUSED = "The admin key was not accepted."


def test_a_wrong_key_is_refused_and_shows_no_data(page, dashboard, allowed_console_errors):
    allowed_console_errors.append("status of 401")  # the browser's line for the refusal
    dashboard.mutation("channels:create", {"name": "secret-channel"})
    page.goto(dashboard.dashboard_url + "data")
    page.get_by_label("Admin key").fill("not-the-key")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == REFUSED
    assert page.get_by_role("button", name="Log out").count() == 0
    assert "secret-channel" not in page.content()
    assert "channels" not in page.inner_text("body")


def test_a_wrong_key_in_the_fragment_is_refused(page, dashboard, allowed_console_errors):
    allowed_console_errors.append("status of 401")
    page.goto(dashboard.dashboard_url + "data#admin_key=wrong")
    assert page.get_by_role("alert").inner_text() == REFUSED
    assert page.get_by_label("Admin key").is_visible()
    assert "admin_key" not in page.url


def test_the_form_logs_in_and_log_out_forgets_the_key(page, dashboard):
    dashboard.mutation("channels:create", {"name": "general"})
    page.goto(dashboard.dashboard_url)
    page.get_by_label("Admin key").fill(dashboard.admin_key)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="channels").wait_for()
    page.reload()  # the key is kept
    page.get_by_role("link", name="channels").wait_for()
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Admin key").wait_for()
    page.reload()
    page.get_by_label("Admin key").wait_for()
    assert page.get_by_role("link", name="channels").count() == 0


def test_the_fragment_logs_in_and_leaves_the_address_bar(page, dashboard):
    dashboard.mutation("channels:create", {"name": "random"})
    login(page, dashboard, "data")
    page.get_by_role("link", name="channels").wait_for()
    assert page.url == dashboard.dashboard_url + "data"
    assert dashboard.admin_key not in page.url


def test_an_unknown_dashboard_page_says_so(page, dashboard):
    login(page, dashboard, "no/such/page")
    page.get_by_role("heading", name="No such page").wait_for()
    page.get_by_role("link", name="See the data").click()
    page.get_by_role("heading", name="Data").wait_for()
