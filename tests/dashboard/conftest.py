"""The dashboard's browser tests: `headwater serve` as a user runs it (API, site and
dashboard on free loopback ports, a fresh data folder, the small app in ``app/convex``)
and Debian's Chromium driven by Playwright.

``dashboard`` is one server per test module; ``page`` is a fresh browser context per
test that fails the test on any console error or uncaught page error and leaves a
screenshot in ``test-artifacts/dashboard/<test>.png``, pass or fail. Every wait is
bounded (``WAIT_MS``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_pages import WAIT_MS, Dashboard, serve_dashboard  # noqa: E402

APP = Path(__file__).resolve().parent / "app" / "convex"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The small app of ``app/convex`` (a schema, two tables, public and internal
    functions, console lines), served with a fresh data folder."""
    folder = tmp_path_factory.mktemp("dashboard")
    functions = folder / "convex"
    shutil.copytree(APP, functions, ignore=shutil.ignore_patterns("_generated"))
    with serve_dashboard(folder / "data", functions) as served:
        yield served


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def allowed_console_errors() -> list[str]:
    """Texts of console errors a test expects (e.g. the browser's own line for a
    refused request); any other console error fails the test."""
    return []


@pytest.fixture
def page(
    browser: Any, request: pytest.FixtureRequest, allowed_console_errors: list[str]
) -> Iterator[Any]:
    """A fresh context and page; console errors and page errors fail the test."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type != "error":
            return
        if any(allowed in message.text for allowed in allowed_console_errors):
            return
        problems.append(f"console error: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()
    assert not problems, "\n".join(problems)
