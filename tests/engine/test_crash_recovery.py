"""SIGKILL a writer at random moments: no acknowledged commit is lost, none is half-applied."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from engine import Database
from engine.recovery import rebuild_projections

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(path: Path, start: int, delay_s: float) -> list[tuple[int, int]]:
    """Start a writer, SIGKILL it after ``delay_s``; returns the (i, ts) pairs it acknowledged."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as proc:
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        time.sleep(delay_s)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
        errors = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, errors
    acked: list[tuple[int, int]] = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            acked.append((int(parts[0]), int(parts[1])))
    return acked


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_commit(tmp_path):
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    path = tmp_path / "crash"
    acked_all: list[tuple[int, int]] = []
    start = 0
    for _ in range(5):
        acked = _run_and_kill(path, start, rng.uniform(0.6, 1.5))
        acked_all.extend(acked)
        with Database.open(path) as db:
            docs = db.query(lambda tx: tx.query("pairs").collect()).value
            halves = Counter(d["i"] for d in docs)
            assert all(n == 2 for n in halves.values()), "a transaction was half-applied"
            present = set(halves)
            for i, ts in acked_all:
                assert i in present, f"acknowledged commit {i} at ts {ts} was lost"
                assert db.query(lambda tx: None, ts=ts).ts == ts
            start = max(present, default=-1) + 1
    assert len(acked_all) > 20
    # And a full replay from the log alone gives the same documents.
    with Database.open(path) as db:
        before = db.query(lambda tx: tx.query("pairs").collect()).value
    rebuild_projections(path)
    with Database.open(path) as db:
        assert db.query(lambda tx: tx.query("pairs").collect()).value == before
