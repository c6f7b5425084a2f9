"""The Node side: installing the pinned npm packages and finding node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from udf import NodeSetupError, ensure_node_modules
from udf.node import JS_DIR, has_node_modules


def test_the_pinned_packages_are_installed_and_locked():
    ensure_node_modules()  # a no-op once installed
    assert has_node_modules(JS_DIR)
    pins = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    assert pins["convex"] == "1.48.0"
    assert pins["esbuild"][0].isdigit()  # an exact version, not a range
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/convex"]["version"] == "1.48.0"


def test_without_a_lock_file_nothing_is_installed(tmp_path: Path):
    with pytest.raises(NodeSetupError, match="package-lock.json"):
        ensure_node_modules(tmp_path)


def test_without_npm_the_error_says_so(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("udf.node.shutil.which", lambda name: None)
    with pytest.raises(NodeSetupError, match="npm is not on PATH"):
        ensure_node_modules(tmp_path)
