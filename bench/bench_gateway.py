"""Benchmark: the gateway end to end, `headwater serve` in its own process.

The server runs as ``python -m gateway.cli serve`` on loopback with a small
functions folder (``rooms:get``, one read on an index by key; ``rooms:set``);
the WebSocket clients run in another process (``bench.gateway_load``) so the
two never share a GIL. On a 2-core machine the figures include the clients'
own work: parsing 1,000 Transitions is part of "the last subscriber saw it".

1. HTTP query round trip, sequential over one keep-alive connection. Baselines in
   the same run: the same function through ``Executor.run`` in-process (what
   ``headwater run`` does without the process start), and a bare Starlette
   endpoint on hypercorn/trio answering the same JSON (another process).
2. Own-mutation visibility: a socket subscribed to a room changes it; time from
   sending the Mutation to the Transition that carries the new value. Baseline:
   a WebSocket echo round trip on the bare server.
3. Live fan-out: 1, 100 and 1,000 sockets hold the same query; another socket
   changes it; time until the last one has the new value. Baseline: the bare
   server broadcasting a Transition-shaped message to as many sockets.
4. 1,000 sockets hold 1,000 different queries; one room changes; only its socket
   should hear anything. No endpoint exposes the server's re-run count, so the
   messages received are counted. Baseline: the 1-subscriber fan-out of (3).

Run: ``python -m bench.bench_gateway`` (``--only fanout`` runs scenario 3 alone).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import percentiles_ms, print_table
from bench.gateway_load import FD_HEADROOM, raise_fd_limit

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "e2e" / "fixtures" / "convex"
SEED = 20240601
ROOMS = 1000
SEED_BATCH = 100  # rooms per seeding mutation (each function call has a time limit)
HTTP_WARMUP = 50
HTTP_CALLS = 500
OWN_ROUNDS = 100
OWN_KEY = ROOMS - 1
FANOUT_SIZES = (1, 100, 1000)
FANOUT_ROUNDS = 5
DISTINCT_ROUNDS = 5
TARGET_MS = 250.0
START_TIMEOUT_S = 90.0
LOAD_TIMEOUT_S = 150.0  # one load-generator run
STOP_TIMEOUT_S = 20.0

SCHEMA_TS = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({ body: v.string(), likes: v.int64() }),
  rooms: defineTable({ key: v.number(), value: v.number() }).index("by_key", ["key"]),
});
"""

ROOMS_TS = """import { v } from "convex/values";
import { mutation, query } from "./_generated/server";

async function room(ctx: any, key: number) {
  return await ctx.db.query("rooms").withIndex("by_key", (q: any) => q.eq("key", key)).unique();
}

export const get = query({
  args: { key: v.number() },
  handler: async (ctx, { key }) => {
    const found = await room(ctx, key);
    return found === null ? null : { key: found.key, value: found.value };
  },
});

export const set = mutation({
  args: { key: v.number(), value: v.number() },
  handler: async (ctx, { key, value }) => {
    const found = await room(ctx, key);
    if (found === null) throw new Error(`no room ${key}`);
    await ctx.db.patch(found._id, { value });
  },
});

export const seed = mutation({
  args: { from: v.number(), to: v.number() },
  handler: async (ctx, { from, to }) => {
    for (let key = from; key < to; key++) await ctx.db.insert("rooms", { key, value: 0 });
  },
});
"""

CLIENT_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def write_functions(root: Path) -> Path:
    """The fixture app plus ``rooms.ts`` and a schema with the ``rooms`` table."""
    functions = root / "convex"
    shutil.copytree(FIXTURE, functions, ignore=shutil.ignore_patterns("_generated"))
    (functions / "schema.ts").write_text(SCHEMA_TS)
    (functions / "rooms.ts").write_text(ROOMS_TS)
    return functions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Process:
    """A child process whose output is drained by a thread; ready when a line appears."""

    def __init__(self, argv: list[str], ready_prefix: str, *, stdin: bool = False) -> None:
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(CLIENT_ENV, PYTHONPATH=str(ROOT)),
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.ready_line = ""
        ready = threading.Event()

        def drain() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                if len(self.lines) < 200:
                    self.lines.append(line)
                if not ready.is_set() and line.startswith(ready_prefix):
                    self.ready_line = line[len(ready_prefix) :].strip()
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"{argv[2:4]} did not start:\n" + "".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_headwater(data: Path, functions: Path) -> tuple[_Process, str]:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
        "--functions",
        str(functions),
    ]
    return _Process(argv, "Admin key:"), f"http://127.0.0.1:{port}"


def start_bare(response_text: str) -> tuple[_Process, str]:
    argv = [
        sys.executable,
        "-m",
        "bench.gateway_load",
        "bare-server",
        "--response",
        response_text,
        "--sizes",
        str(max(FANOUT_SIZES)),
    ]
    process = _Process(argv, "URL ", stdin=True)
    return process, process.ready_line


def run_load(url: str, mode: str, *options: str) -> dict[str, Any]:
    """One load-generator run (bounded); its ``RESULT`` line."""
    argv = [sys.executable, "-m", "bench.gateway_load", mode, "--url", url, *options]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT_S,
        env=dict(CLIENT_ENV, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"load generator {mode} failed:\n{done.stderr[-3000:]}")


# -- 1. HTTP query round trip ---------------------------------------------------------


def _keys(count: int) -> list[int]:
    rng = random.Random(SEED)
    return [rng.randrange(ROOMS) for _ in range(count)]


def http_latencies(
    client: Any, url: str, *, check: bool, same_key: int | None = None
) -> list[float]:
    """Sequential calls on random keys, or all on ``same_key`` (a repeated query)."""
    samples = []
    keys = _keys(HTTP_WARMUP + HTTP_CALLS)
    if same_key is not None:
        keys = [same_key] * len(keys)
    for n, key in enumerate(keys):
        body = {"path": "rooms:get", "args": {"key": key}, "format": "json"}
        started = time.perf_counter()
        response = client.post(f"{url}/api/query", json=body)
        answer = response.json()
        elapsed = time.perf_counter() - started
        if check and (answer.get("status") != "success" or answer["value"]["key"] != key):
            raise RuntimeError(f"unexpected answer to rooms:get {key}: {answer}")
        if n >= HTTP_WARMUP:
            samples.append(elapsed)
    return samples


def in_process_latencies(data: Path, functions: Path) -> list[float]:
    """``Executor.run`` on rooms:get in this process, on its own data folder."""
    from engine import Database
    from udf.calls import FunctionCall
    from udf.executor import Executor

    samples = []
    with Database.open(data) as db:
        executor = Executor(db)
        try:
            executor.deploy(functions)
            for start in range(0, ROOMS, SEED_BATCH):
                seeded = executor.run(
                    FunctionCall(
                        "rooms:seed",
                        {"from": float(start), "to": float(start + SEED_BATCH)},
                        "mutation",
                    )
                )
                if seeded.error is not None:
                    raise RuntimeError(seeded.error.message)
            for n, key in enumerate(_keys(HTTP_WARMUP + HTTP_CALLS)):
                started = time.perf_counter()
                outcome = executor.run(FunctionCall("rooms:get", {"key": float(key)}, "query"))
                elapsed = time.perf_counter() - started
                if outcome.error is not None:
                    raise RuntimeError(outcome.error.message)
                if n >= HTTP_WARMUP:
                    samples.append(elapsed)
        finally:
            executor.close()
    return samples


def seed_rooms(client: Any, url: str) -> None:
    for start in range(0, ROOMS, SEED_BATCH):
        body = {"path": "rooms:seed", "args": {"from": start, "to": start + SEED_BATCH}}
        answer = client.post(f"{url}/api/mutation", json=body).json()
        if answer.get("status") != "success":
            raise RuntimeError(f"seeding rooms failed: {answer}")


# -- reporting --------------------------------------------------------------------------


def _p50(samples_s: list[float]) -> float:
    return percentiles_ms(samples_s)[0] if samples_s else float("nan")


def _fanout_rows(ours: dict, bare: dict) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for size in FANOUT_SIZES:
        mine, floor = ours["sizes"][str(size)], bare["sizes"][str(size)]
        last = [max(r["arrivals_s"]) for r in mine["rounds"] if not r["missing"]]
        first = [min(r["arrivals_s"]) for r in mine["rounds"] if r["arrivals_s"]]
        responses = [r["response_s"] for r in mine["rounds"]]
        bare_last = [max(r["arrivals_s"]) for r in floor["rounds"] if not r["missing"]]
        missing = sum(r["missing"] for r in mine["rounds"])
        last_p50 = _p50(last)
        rows.append(
            (
                size,
                last_p50,
                max(last) * 1e3 if last else float("nan"),
                _p50(first),
                _p50(responses),
                missing,
                _p50(bare_last),
                last_p50 / _p50(bare_last),
                _verdict(last_p50),
            )
        )
    return rows


def _verdict(p50_ms: float) -> str:
    return "yes" if p50_ms <= TARGET_MS else "NO"


def _measure(tmp: Path, *, fanout_only: bool = False) -> dict[str, Any]:
    import httpx

    functions = write_functions(tmp)
    out: dict[str, Any] = {}
    if not fanout_only:
        print("in-process executor baseline ...", flush=True)
        out["in_process"] = in_process_latencies(tmp / "inproc", functions)
    raise_fd_limit(max(FANOUT_SIZES) * 2 + FD_HEADROOM)
    print("starting headwater serve ...", flush=True)
    server, url = start_headwater(tmp / "data", functions)
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            seed_rooms(client, url)
            if not fanout_only:
                print("HTTP queries ...", flush=True)
                out["http"] = http_latencies(client, url, check=True)
                out["http_repeated"] = http_latencies(client, url, check=True, same_key=7)
            response_text = client.post(
                f"{url}/api/query", json={"path": "rooms:get", "args": {"key": 7}}
            ).text
        if not fanout_only:
            print("own-mutation visibility ...", flush=True)
            out["own"] = run_load(url, "own", "--rounds", str(OWN_ROUNDS), "--key", str(OWN_KEY))
        print("fan-out ...", flush=True)
        sizes = ",".join(map(str, FANOUT_SIZES))
        out["fanout"] = run_load(url, "fanout", "--sizes", sizes, "--rounds", str(FANOUT_ROUNDS))
        if not fanout_only:
            print("1,000 different queries ...", flush=True)
            out["distinct"] = run_load(
                url, "distinct", "--subscribers", str(ROOMS), "--rounds", str(DISTINCT_ROUNDS)
            )
    finally:
        server.stop()
    print("bare Starlette baselines ...", flush=True)
    bare, bare_url = start_bare(response_text)
    try:
        if not fanout_only:
            with httpx.Client(trust_env=False, timeout=30) as client:
                out["bare_http"] = http_latencies(client, bare_url, check=False)
            out["bare_own"] = run_load(bare_url, "own", "--bare", "--rounds", str(OWN_ROUNDS))
        out["bare_fanout"] = run_load(
            bare_url, "fanout", "--bare", "--sizes", sizes, "--rounds", str(FANOUT_ROUNDS)
        )
    finally:
        bare.stop()
    return out


def _print_http(m: dict[str, Any]) -> None:
    http50, http99 = percentiles_ms(m["http"])
    rows: list[tuple[object, ...]] = [("headwater serve, POST /api/query", http50, http99, 1.0)]
    for name, samples in (
        ("in-process Executor.run", m["in_process"]),
        ("bare Starlette on hypercorn/trio", m["bare_http"]),
    ):
        p50, p99 = percentiles_ms(samples)
        rows.append((name, p50, p99, http50 / p50))
    cached50, cached99 = percentiles_ms(m["http_repeated"])
    rows.append(("headwater serve, one key repeated (query cache)", cached50, cached99, ""))
    print_table(
        f"1. Query round trip: rooms:get (one indexed read), {HTTP_CALLS} sequential calls",
        ("path", "p50 ms", "p99 ms", "headwater p50 / this p50"),
        rows,
    )
    bare50 = percentiles_ms(m["bare_http"])[0]
    print(
        f"\nPOST /api/query / bare Starlette at p50: {http50 / bare50:.2f}x on random keys "
        f"(every call runs V8), {cached50 / bare50:.2f}x for a repeated query (cache hits)"
    )


def _print_own(m: dict[str, Any]) -> None:
    vis50, vis99 = percentiles_ms(m["own"]["visible_s"])
    resp50, resp99 = percentiles_ms(m["own"]["response_s"])
    echo50, echo99 = percentiles_ms(m["bare_own"]["visible_s"])
    print_table(
        f"2. Own-mutation visibility over one socket, {OWN_ROUNDS} rounds "
        f"(target p50 <= {TARGET_MS:.0f} ms)",
        ("step", "p50 ms", "p99 ms", "p50 / bare echo p50", "meets target"),
        [
            ("Mutation -> MutationResponse", resp50, resp99, resp50 / echo50, ""),
            (
                "Mutation -> Transition with new value",
                vis50,
                vis99,
                vis50 / echo50,
                _verdict(vis50),
            ),
            ("bare WebSocket echo (baseline)", echo50, echo99, 1.0, ""),
        ],
    )


def _print_fanout(m: dict[str, Any]) -> None:
    print_table(
        f"3. Live fan-out: one query, one mutation from another socket, p50 of "
        f"{FANOUT_ROUNDS} rounds (target p50 <= {TARGET_MS:.0f} ms)",
        (
            "subscribers",
            "last saw it p50 ms",
            "worst ms",
            "first p50 ms",
            "MutationResponse ms",
            "missed",
            "bare broadcast last p50 ms",
            "ratio",
            "meets target",
        ),
        _fanout_rows(m["fanout"], m["bare_fanout"]),
    )


def _print_distinct(m: dict[str, Any]) -> None:
    d = m["distinct"]
    target = [r["arrivals_s"][0] for r in d["rounds"] if r["arrivals_s"]]
    one = [max(r["arrivals_s"]) for r in m["fanout"]["sizes"]["1"]["rounds"] if r["arrivals_s"]]
    t50 = _p50(target)
    print_table(
        f"4. {ROOMS:,} sockets on {ROOMS:,} different queries; {DISTINCT_ROUNDS} mutations, "
        "each changing one room",
        ("figure", "value"),
        [
            ("subscribers opened (s)", d["opened_s"]),
            ("changed room's socket saw it, p50 ms", t50),
            ("same with 1 subscriber alone (3.), p50 ms", _p50(one)),
            ("ratio", t50 / _p50(one)),
            ("rounds missed", sum(r["missing"] for r in d["rounds"])),
            ("QueryUpdated at the changed rooms' sockets", d["target_updates"]),
            ("Transitions at the other sockets (want 0)", d["other_transitions"]),
            ("QueryUpdated at the other sockets (want 0)", d["other_updates"]),
            (
                "re-runs observed per mutation",
                (d["target_updates"] + d["other_updates"]) / DISTINCT_ROUNDS,
            ),
            ("socket errors", d["socket_errors"]),
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gateway")
    parser.add_argument(
        "--only", choices=("fanout",), help="run one scenario (and its baseline) alone"
    )
    fanout_only = parser.parse_args(argv).only == "fanout"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        m = _measure(Path(tmp), fanout_only=fanout_only)
    if not fanout_only:
        _print_http(m)
        _print_own(m)
    _print_fanout(m)
    if not fanout_only:
        _print_distinct(m)
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
