"""``python -m bench.load`` as a user runs it: a short run against a server it starts itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120
KINDS = ("insert", "query", "search", "vector", "subscription")


def _load(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "bench.load", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=ROOT,
        env=dict(env, PYTHONPATH=str(ROOT)),
        stdin=subprocess.DEVNULL,
    )


def test_a_short_run_measures_every_operation_and_writes_the_report(tmp_path):
    out, summary = tmp_path / "report.html", tmp_path / "summary.json"
    done = _load(
        "--duration", "4", "--subscribers", "3", "--seed-messages", "50",
        "--out", str(out), "--json", str(summary),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "panicked" not in done.stderr and "Traceback" not in done.stderr
    result = json.loads(summary.read_text())
    by_kind = {op["kind"]: op for op in result["operations"]}
    assert set(by_kind) == set(KINDS)
    for kind, op in by_kind.items():
        assert op["count"] > 0 and op["errors"] == 0, (kind, op)
        assert 0 < op["p50_ms"] <= op["p99_ms"] <= op["p999_ms"], (kind, op)
        assert op["ops_per_s"] > 0
        assert kind in done.stdout
    assert result["subscribers_updated"] == 3
    assert result["hanging_threads"] == 0
    assert "p99.9 ms" in done.stdout and str(out) in done.stdout
    page = out.read_text()
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == len(KINDS)
    assert '<table class="summary">' in page and "<td>subscription</td>" in page
    assert "Headwater only: no peer installable from a package registry here" in page
    assert "http://" not in page.replace("http://127.0.0.1", "")  # nothing fetched from afar


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--duration", "0", "--duration must be between 1 and 600 seconds, got 0"),
        ("--duration", "10000", "--duration must be between 1 and 600 seconds, got 10000"),
        ("--subscribers", "-1", "--subscribers must be between 0 and 500"),
    ],
)
def test_a_bad_flag_is_refused_in_one_line_before_anything_starts(tmp_path, flag, value, words):
    out = tmp_path / "report.html"
    done = _load(flag, value, "--out", str(out))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {words}"), done.stderr
    assert done.stdout == "" and not out.exists()
