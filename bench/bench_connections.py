"""Benchmark: 10,000 WebSocket subscribers — the server's memory per connection, and fan-out.

``headwater serve`` runs in its own process with the rooms app of
``bench.bench_gateway``; a client process (``bench.connection_holder``) opens
1,000 and then 9,999 sockets (with its writer: 10,000, the server's default
``connections_max``), each a sync client subscribed to the same ``rooms:get``
query, and holds them while this process reads the server's resident memory
(``VmRSS``). Per connection: the growth from 1,000 to 9,999 subscribers over
the 8,999 added (start-up and the first sockets' one-off costs cancel out).
Then another socket changes the room and every subscriber waits for the new
value: the last one's arrival, p50 over the rounds.

Baseline in the same run: the bare Starlette WebSocket server of
``bench.gateway_load`` (hypercorn on trio, the same per-socket outbox, no
database) with the same clients, memory and broadcast alike. Targets: ≤ 30 KB
a connection, last subscriber p50 ≤ 1 s. Run: ``python -m bench.bench_connections``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

from bench.bench_gateway import (
    CLIENT_ENV,
    ROOT,
    _Process,
    seed_rooms,
    start_headwater,
    write_functions,
)
from bench.common import percentiles_ms, print_table
from bench.gateway_load import FD_HEADROOM, raise_fd_limit

# 9,999 subscribers and the writer: 10,000 sockets, the server's default connections_max.
SIZES = (1_000, 9_999)
ROUNDS = 3
KEY = 5
LINE_TIMEOUT_S = 240.0  # opening 9,000 sockets, or the fan-out rounds
TARGET_KB = 30.0
TARGET_LAST_S = 1.0


def rss_kb(pid: int) -> int:
    """A process's resident memory (VmRSS, KiB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def hold_and_fan_out(url: str, server_pid: int, *, bare: bool, log: Path) -> dict[str, Any]:
    """Run the holder against ``url``: the server's RSS at each size, then the rounds."""
    argv = [sys.executable, "-m", "bench.connection_holder", "--url", url]
    argv += ["--sizes", ",".join(map(str, SIZES)), "--rounds", str(ROUNDS), "--key", str(KEY)]
    if bare:
        argv.append("--bare")
    errors = log.open("w")
    holder = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=dict(CLIENT_ENV, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        assert holder.stdout is not None
        for line in holder.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=drain, daemon=True).start()
    rss: dict[int, int] = {}
    opened_s: dict[int, float] = {}
    try:
        while True:
            line = lines.get(timeout=LINE_TIMEOUT_S)
            if not line:
                tail = log.read_text()[-6000:]
                raise RuntimeError(f"the connection holder ended without a result:\n{tail}")
            if line.startswith("HELD "):
                _, size, seconds = line.split()
                rss[int(size)], opened_s[int(size)] = rss_kb(server_pid), float(seconds)
                assert holder.stdin is not None
                holder.stdin.write("go\n")
                holder.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                return {"rss_kb": rss, "opened_s": opened_s, **result}
    finally:
        if holder.poll() is None:
            holder.wait(LINE_TIMEOUT_S)
        errors.close()


def _measure(tmp: Path) -> dict[str, Any]:
    raise_fd_limit(2 * max(SIZES) + FD_HEADROOM)
    functions = write_functions(tmp)
    server, url = start_headwater(tmp / "data", functions)
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            seed_rooms(client, url)
            response = client.post(
                f"{url}/api/query", json={"path": "rooms:get", "args": {"key": KEY}}
            ).text
        print("headwater: holding sockets ...", flush=True)
        ours = hold_and_fan_out(url, server.process.pid, bare=False, log=tmp / "ours.log")
    finally:
        server.stop()
    argv = [sys.executable, "-m", "bench.gateway_load", "bare-server", "--response", response]
    bare = _Process(argv + ["--sizes", str(max(SIZES))], "URL ", stdin=True)
    try:
        print("bare server: holding sockets ...", flush=True)
        floor = hold_and_fan_out(bare.ready_line, bare.process.pid, bare=True, log=tmp / "bare.log")
    finally:
        bare.stop()
    return {"ours": ours, "bare": floor}


def _per_connection_kb(run: dict[str, Any]) -> float:
    low, high = SIZES
    rss = run["rss_kb"]
    return (rss[high] - rss[low]) * 1.024 / (high - low)  # KiB -> KB


def _last_p50_s(run: dict[str, Any]) -> float:
    lasts = [max(r["arrivals_s"]) for r in run["rounds"] if not r["missing"]]
    return percentiles_ms(lasts)[0] / 1000 if lasts else float("nan")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = _measure(Path(tmp))
    ours, bare = m["ours"], m["bare"]
    kb, bare_kb = _per_connection_kb(ours), _per_connection_kb(bare)
    last, bare_last = _last_p50_s(ours), _last_p50_s(bare)
    missed = sum(r["missing"] for r in ours["rounds"])
    print_table(
        f"{max(SIZES) + 1:,} WebSockets: {max(SIZES):,} subscribers of one query and a writer"
        f" ({ROUNDS} rounds)",
        ("figure", "headwater", "bare Starlette", "ratio", "target"),
        [
            ("server RSS per connection, KB", kb, bare_kb, kb / bare_kb, f"<= {TARGET_KB:g}"),
            (
                f"server RSS at {max(SIZES) + 1:,} sockets, MB",
                ours["rss_kb"][max(SIZES)] / 1024,
                bare["rss_kb"][max(SIZES)] / 1024,
                "",
                "",
            ),
            ("last subscriber updated, p50 s", last, bare_last, last / bare_last, "<= 1"),
            (
                f"{max(SIZES) - min(SIZES):,} sockets opened in, s",
                ours["opened_s"][max(SIZES)],
                bare["opened_s"][max(SIZES)],
                "",
                "",
            ),
            ("updates missed / socket errors", f"{missed} / {ours['socket_errors']}", "", "", ""),
        ],
    )


if __name__ == "__main__":
    main()
