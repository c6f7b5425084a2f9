"""Benchmark: fetch() from an action, against the same request made from Python.

An action fetches a small JSON document from a loopback server and returns it;
the baseline is the same GET with httpx from Python, in the same run (so the
figure is the cost of the action and the runtime's fetch path: the call, the
ops into and out of V8, the Response). Also the isolate load time with and
without the Web runtime (streams, URL, Blob... in ``udf/js/gen``). Run:
``python -m bench.bench_webapi``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

import udf.isolate as isolate_module
from bench.common import percentiles_ms, print_table, use_test_helpers, write_app
from engine import Database
from udf import Isolate
from udf.calls import FunctionCall
from udf.executor import Executor

use_test_helpers("webapi")
from loopback_server import loopback_server  # noqa: E402

CALLS = 300
APP = {
    "fetcher.ts": """
import { v } from "convex/values";
import { action } from "./_generated/server";
export const get = action({
  args: { url: v.string() },
  handler: async (_ctx, { url }) => (await (await fetch(url)).json()).method,
});
export const nothing = action({ args: {}, handler: async () => "GET" });
""",
}
_WEB_FILES = ("gen/web_polyfills.js", "web.js", "fetch.js", "subtle.js")


def _timed(fn, calls: int) -> list[float]:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _load_ms(modules, files) -> float:
    isolate_module._RUNTIME_FILES = files
    isolate_module._runtime_sources.cache_clear()
    samples = []
    Isolate(modules).close()
    for _ in range(7):
        started = time.perf_counter()
        Isolate(modules).close()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, loopback_server() as upstream:
        app = write_app(Path(tmp), APP)
        url = f"{upstream}/echo"
        with Database.open(Path(tmp) / "data") as db, httpx.Client(trust_env=False) as client:
            ex = Executor(db)
            ex.deploy(app)

            def action() -> None:
                out = ex.run(FunctionCall("fetcher:get", {"url": url}, "action"))
                assert out.error is None and out.value == "GET", out.error

            def trivial() -> None:
                out = ex.run(FunctionCall("fetcher:nothing", {}, "action"))
                assert out.error is None, out.error

            def direct() -> None:
                assert client.get(url).json()["method"] == "GET"

            o50, o99 = percentiles_ms(_timed(action, CALLS))
            b50, b99 = percentiles_ms(_timed(direct, CALLS))
            t50, t99 = percentiles_ms(_timed(trivial, CALLS))
            print_table(
                "fetch of a small JSON document from a loopback server (ms per call)",
                ("path", "p50", "p99", "requests/s at p50"),
                [
                    ("action: fetch() + json()", o50, o99, 1000 / o50),
                    ("baseline: httpx from Python", b50, b99, 1000 / b50),
                    ("an action that does nothing", t50, t99, 1000 / t50),
                ],
            )
            print(f"ratio (action / baseline) p50: {o50 / b50:.2f}")
            modules = ex._deployment.runnable  # noqa: SLF001 - the loaded deployment's modules
            ex.close()
    full = isolate_module._RUNTIME_FILES
    without = tuple(f for f in full if f not in _WEB_FILES)
    try:
        with_ms, without_ms = [], []
        for _ in range(3):  # alternated: the machine's load drifts
            with_ms.append(_load_ms(modules, full))
            without_ms.append(_load_ms(modules, without))
    finally:
        isolate_module._RUNTIME_FILES = full
        isolate_module._runtime_sources.cache_clear()
    w, wo = min(with_ms), min(without_ms)
    print(f"isolate load: {w:.1f} ms with the Web runtime, {wo:.1f} ms without", end="")
    print(f" (ratio {w / wo:.2f})")


if __name__ == "__main__":
    main()
