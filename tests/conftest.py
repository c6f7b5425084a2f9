"""Shared fixtures: a fresh on-disk database per test; the run's required tools.

The suite runs the official clients (npm ``convex`` through Node, PyPI
``convex``) for real. A missing one fails the whole run at its start rather
than skipping the tests that need it: a run that silently shrank would pass.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from schemas import CHAT_SCHEMA

from engine import Database

# The PostgreSQL and MySQL databases of the shared-store tests (tests/ is on sys.path).
pytest_plugins = ["shared_databases"]

JS_PACKAGES = Path(__file__).resolve().parent.parent / "js" / "node_modules"
COMPONENTS_APP_PACKAGES = (
    Path(__file__).resolve().parent / "e2e" / "components_app" / "node_modules"
)


def missing_test_dependencies() -> list[str]:
    """What the suite needs and cannot find (empty when everything is there)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js (`node` on PATH)")
    for needed in (
        JS_PACKAGES / "convex",
        JS_PACKAGES / ".bin" / "convex",
        JS_PACKAGES / "esbuild",
    ):
        if not needed.exists():
            missing.append(f"js/node_modules/{needed.relative_to(JS_PACKAGES)}")
    if not (COMPONENTS_APP_PACKAGES / "@convex-dev" / "workpool").exists():
        missing.append("tests/e2e/components_app/node_modules (its npm components)")
    if importlib.util.find_spec("convex") is None:
        missing.append("the PyPI package `convex`")
    return missing


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = missing_test_dependencies()
    if missing:
        pytest.exit(
            f"missing for the tests: {', '.join(missing)}; run `make setup` (or `make test`)",
            returncode=1,
        )


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "data")
    yield database
    database.close()


@pytest.fixture
def chat_db(db):
    db.set_schema(CHAT_SCHEMA)
    return db
