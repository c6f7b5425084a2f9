"""Small helpers shared by the benchmarks: timing and a readable table."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def use_test_helpers(folder: str) -> None:
    """Make ``tests/`` and ``tests/<folder>`` importable: a benchmark drives the server
    with the helpers the tests use, which import each other by module name (as pytest's
    rootdir makes them)."""
    for path in (TESTS / folder, TESTS):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def per_call_us(fn: Callable[[], object], *, calls: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` mean microseconds per call (best-of tames a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def percentiles_ms(samples_s: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_s)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1e3, p99 * 1e3


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_app(root: Path, modules: dict[str, str]) -> Path:
    """A functions folder ``root/convex`` holding ``modules`` (file name -> source)."""
    app = root / "convex"
    app.mkdir()
    for name, text in modules.items():
        (app / name).write_text(text)
    return app


def rate_with_threads(writers: int, body: Callable[[int], object], duration_s: float) -> float:
    """Calls per second of ``body(k)`` looped by ``writers`` threads for ``duration_s``."""
    stop = threading.Event()
    counts = [0] * writers

    def worker(k: int) -> None:
        while not stop.is_set():
            body(k)
            counts[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(duration_s)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)
