"""Benchmark: HTTP actions, `headwater serve` in its own process.

A trivial route (``GET /ping`` answering "pong" from an ``httpAction``) on the
site port, against the baseline in the same run: a trivial query (``ping:get``
returning "pong") over ``POST /api/query``. Both sequentially over one
keep-alive connection (p50/p99 and requests/s), then with ``CLIENTS`` threads
at once (requests/s). An HTTP action runs in an action isolate and streams its
response through the isolate's ops (head, then body); a query runs in a
transaction and answers one JSON document.

Run: ``python -m bench.bench_http_actions``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import percentiles_ms, print_table, use_test_helpers

ROOT = Path(__file__).resolve().parent.parent
use_test_helpers("gateway")
from cli_process import Serve  # noqa: E402

WARMUP = 50
CALLS = 500
CLIENTS = 4
CONCURRENT_CALLS = 200  # per client
START_TIMEOUT_S = 90.0

HTTP_TS = """import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";

const http = httpRouter();
http.route({
  path: "/ping",
  method: "GET",
  handler: httpAction(async () => new Response("pong")),
});
export default http;
"""
PING_TS = """import { query } from "./_generated/server";
export const get = query({ args: {}, handler: async () => "pong" });
"""


def _serve(root: Path) -> Serve:
    """`headwater serve` of the ping app, its site port picked free."""
    functions = root / "app" / "convex"
    functions.mkdir(parents=True)
    (functions / "http.ts").write_text(HTTP_TS)
    (functions / "ping.ts").write_text(PING_TS)
    return Serve(
        root / "data",
        "--functions",
        str(functions),
        "--site-port",
        "0",
        "--log-format",
        "none",
        startup_timeout_s=START_TIMEOUT_S,
    )


def _action(client: httpx.Client) -> None:
    answer = client.get("/ping")
    assert answer.text == "pong", answer.text


def _query(client: httpx.Client) -> None:
    answer = client.post("/api/query", json={"path": "ping:get", "args": {}})
    assert answer.json()["value"] == "pong", answer.text


def _sequential(base: str, call: Callable[[httpx.Client], None]) -> tuple[float, float, float]:
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        for _ in range(WARMUP):
            call(client)
        samples = []
        started = time.perf_counter()
        for _ in range(CALLS):
            t = time.perf_counter()
            call(client)
            samples.append(time.perf_counter() - t)
        per_s = CALLS / (time.perf_counter() - started)
    p50, p99 = percentiles_ms(samples)
    return p50, p99, per_s


def _concurrent(base: str, call: Callable[[httpx.Client], None]) -> float:
    def client_loop() -> None:
        with httpx.Client(base_url=base, trust_env=False, timeout=60) as client:
            for _ in range(CONCURRENT_CALLS):
                call(client)

    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return CLIENTS * CONCURRENT_CALLS / (time.perf_counter() - started)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-http-actions-"))
    server = _serve(root)
    try:
        action = _sequential(server.site_url, _action)
        query = _sequential(server.url, _query)
        action_conc = _concurrent(server.site_url, _action)
        query_conc = _concurrent(server.url, _query)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print_table(
        f"Trivial route vs trivial query, {CALLS} sequential calls over one connection",
        ("what", "p50 ms", "p99 ms", "req/s", f"req/s ({CLIENTS} clients)"),
        [
            ("HTTP action GET /ping (site port)", *action, action_conc),
            ("baseline: query over /api/query", *query, query_conc),
        ],
    )
    print(
        f"\nratio (action / query): p50 {action[0] / query[0]:.2f}x, "
        f"req/s {action[2] / query[2]:.2f}x sequential, "
        f"{action_conc / query_conc:.2f}x with {CLIENTS} clients"
    )


if __name__ == "__main__":
    main()
