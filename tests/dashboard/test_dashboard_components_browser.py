"""Component tables in the dashboard: grouped under their component on the tables
screen, and a component's table opened with `?component=` lists its own documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_pages import login, serve_dashboard

pytestmark = pytest.mark.slow

COMPONENTS_APP = Path(__file__).resolve().parents[1] / "e2e" / "components_app" / "convex"


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    with serve_dashboard(tmp_path_factory.mktemp("components") / "data", COMPONENTS_APP) as s:
        yield s


def test_a_components_tables_are_grouped_and_open_with_their_component(page, components):
    components.mutation("counters:add", {"name": "dashboard", "n": 3})
    login(page, components, "data")
    group = page.get_by_role("region", name="Component shardedCounter")
    link = group.get_by_role("link", name="counters")
    link.click()
    page.wait_for_url("**/data/counters?component=shardedCounter")
    rows = page.get_by_role("table", name="Documents").get_by_role("row")
    rows.filter(has_text="dashboard").first.wait_for()
    assert "3" in rows.filter(has_text="dashboard").first.inner_text()
