"""The client side of ``bench.bench_connections``: many sockets held open, then a fan-out.

Run as a subprocess (the clients must not share the server's GIL):

    python -m bench.connection_holder --url URL [--bare] --sizes 1000,10000 --rounds R --key K

For each size it opens sockets up to that many, each subscribed to room ``key``
(``bench.gateway_load``'s clients), prints ``HELD <size> <seconds to open>`` and
waits for a line on stdin (the benchmark reads the server's memory meanwhile).
At the last size another socket changes the room ``R + 1`` times (the first
warms up) and it prints ``RESULT <json>``: each round's arrival times. Every
wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from bench.gateway_load import (
    FD_HEADROOM,
    Round,
    Values,
    close_all,
    open_client,
    open_subscribers,
    raise_fd_limit,
    timed_change,
)

GO_TIMEOUT_S = 120.0


async def _go() -> None:
    """Wait for the benchmark's go-ahead (a line on stdin)."""
    line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), GO_TIMEOUT_S)
    if not line:
        raise SystemExit("the benchmark went away")


async def hold(url: str, *, bare: bool, sizes: list[int], rounds: int, key: int) -> dict[str, Any]:
    writer = await open_client(url, bare=bare, key=None)
    subscribers: list[Any] = []
    try:
        for size in sizes:
            started = time.perf_counter()
            subscribers += await open_subscribers(url, [key] * (size - len(subscribers)), bare=bare)
            print(f"HELD {size} {time.perf_counter() - started:.2f}", flush=True)
            await _go()
        values = Values()
        per_round = []
        for _ in range(rounds + 1):
            rnd = Round(values.fresh(), len(subscribers))
            for sub in subscribers:
                sub.round = rnd
            per_round.append(await timed_change(writer, rnd, key, rnd.expected, bare=bare))
        errors = sum(1 for s in subscribers if s.error is not None)
        return {"rounds": per_round[1:], "socket_errors": errors}
    finally:
        await close_all([writer, *subscribers])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connection_holder")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    raise_fd_limit(max(sizes) + FD_HEADROOM)
    result = asyncio.run(
        hold(args.url, bare=args.bare, sizes=sizes, rounds=args.rounds, key=args.key)
    )
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
