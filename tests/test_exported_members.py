"""Each package's ``__all__`` names exactly what it exports, and every name resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# engine.schema re-exports the parsed model of engine.schema_model under its __all__.
PACKAGES = ["engine", "log", "projections", "gateway", "engine.schema"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_resolve(package):
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} declares no __all__"
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("first", ["log", "engine", "projections", "engine.errors", "log.codec"])
def test_packages_import_in_any_order(first):
    code = f"import {first}; import engine, log, projections; engine.Database; log.LmdbLog"
    subprocess.run([sys.executable, "-c", code], check=True)
