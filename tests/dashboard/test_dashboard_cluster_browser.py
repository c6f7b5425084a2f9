"""The health screen of a node serving a deployment from a shared store (`--store`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_pages import Dashboard, login, serve_dashboard
from playwright.sync_api import expect

APP = Path(__file__).resolve().parent / "app" / "convex"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    folder = tmp_path_factory.mktemp("cluster_dashboard")
    functions = folder / "convex"
    shutil.copytree(APP, functions, ignore=shutil.ignore_patterns("_generated"))
    store = f"sqlite://{folder.resolve()}/deployment.db"
    with serve_dashboard(folder / "cache", functions, "--store", store) as served:
        yield served


def test_health_lists_the_nodes_and_the_leader(page, dashboard):
    login(page, dashboard, "health")
    nodes = page.get_by_role("table", name="Cluster nodes")
    expect(nodes).to_be_visible()
    row = nodes.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("(this node)")
    expect(row).to_contain_text("leader")
    expect(row).to_contain_text(dashboard.api_url)
    expect(page.get_by_text("Store sqlite://")).to_be_visible()
