"""The package's public surface: ``udf.__all__`` names exactly what it exports."""

from __future__ import annotations

import subprocess
import sys

import udf


def test_all_names_resolve_and_nothing_else_is_public():
    for name in udf.__all__:
        assert getattr(udf, name) is not None
    assert udf.__all__ == sorted(udf.__all__)
    assert set(udf.__all__) <= set(dir(udf))


def test_importing_the_errors_does_not_load_v8():
    code = "import udf.errors, sys; print('py_mini_racer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
