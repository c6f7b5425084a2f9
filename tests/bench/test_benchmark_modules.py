"""Every benchmark module imports as ``python -m bench`` imports it (``make bench``
runs them all in one process and stops at the first that fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each module is imported with the interpreter's own path and no test helper loaded
# (pytest's rootdir would make them importable here and hide a missing path).
_IMPORT_EACH = """
import importlib, pkgutil, sys
from pathlib import Path
tests = str(Path("tests").resolve())
path = list(sys.path)
for m in sorted(pkgutil.iter_modules(["bench"]), key=lambda m: m.name):
    if not m.name.startswith("bench_"):
        continue
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(tests):
            del sys.modules[name]
    sys.path[:] = path
    try:
        importlib.import_module("bench." + m.name)
    except Exception as exc:
        print("FAILED", m.name, type(exc).__name__, exc)
    else:
        print("OK", m.name)
"""


def test_every_benchmark_imports_on_its_own():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    assert not failed, "\n".join(failed)
    assert len(lines) >= 20  # every bench_*.py module was tried
