"""Logging in to the dashboard in Chromium: the key from the URL fragment (then removed
from the address bar) or typed into the form; a refused key shows why and no data."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_the_dashboard_page_loads(page, dashboard):
    page.goto(dashboard.dashboard_url)
    assert page.title() == "Headwater dashboard"
