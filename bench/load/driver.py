"""The run: client threads per operation kind, and subscribers on one event loop.

Every client is an official ``convex.ConvexClient`` with a WebSocket of its own. A
worker thread calls its operation in a paced loop (``rate / threads`` calls per second
each, no catch-up burst when it falls behind), timing each call from send to answer.
Subscribers use the client's async iterator: its blocking ``next()`` holds the GIL while
it waits, which would stall every other thread of the driver.

The clock starts only once every client has connected and answered one call, so the
figures hold no connection set-up. The client's calls have no timeout of their own, so
the threads are daemons and every join is bounded; a call still hanging at the end is
reported, not waited for.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field

from convex import ConvexClient

from bench.load.samples import Samples, merged
from bench.load.settings import Settings
from bench.load.workload import NEWEST, OPERATIONS, SUBSCRIPTION, Operation, message

READY_TIMEOUT_S = 60.0  # every client connected and warmed up
JOIN_TIMEOUT_S = 15.0  # in-flight calls finishing after the clock stops
SEED_TIMEOUT_S = 120.0
SEED_THREADS = 4
STOP_POLL_S = 0.1
LAST_UPDATE_TIMEOUT_S = 5.0


class RunError(Exception):
    """The run could not start: seeding or connecting did not finish in time."""


@dataclass
class _Clock:
    """Shared by all threads: set once by the run, read by the clients."""

    go: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0  # perf_counter() at go
    ready: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self) -> None:
        with self.lock:
            self.ready += 1


@dataclass
class RunResult:
    samples: dict[str, Samples]  # by operation kind, "subscription" included
    elapsed_s: float
    subscribers_updated: int  # subscribers that saw at least one new message
    hanging_threads: int  # client threads still in a call when the run ended


def seed_messages(url: str, count: int, seed: int) -> None:
    """Write ``count`` messages before the clock starts, so every read has data."""
    errors: list[BaseException] = []

    def write(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        client = ConvexClient(url)
        try:
            for _ in range(k, count, SEED_THREADS):
                client.mutation("messages:send", message(rng))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(SEED_THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SEED_TIMEOUT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors or any(t.is_alive() for t in threads):
        cause = f": {errors[0]}" if errors else f" within {SEED_TIMEOUT_S:g} s"
        raise RunError(f"seeding {count} messages failed{cause}")


def _work(url: str, op: Operation, interval_s: float, rng: random.Random, clock: _Clock,
          out: Samples) -> None:  # fmt: skip
    client = ConvexClient(url)
    try:
        op.call(client, rng)  # connects; not measured
    except Exception as exc:
        out.fail(exc)
    clock.arrive()
    if not clock.go.wait(READY_TIMEOUT_S):
        return
    next_at = time.perf_counter()
    while not clock.stop.is_set():
        if interval_s > 0:
            now = time.perf_counter()
            if next_at > now and clock.stop.wait(next_at - now):
                break
            next_at = max(next_at + interval_s, time.perf_counter() - interval_s)
        started = time.perf_counter()
        try:
            op.call(client, rng)
        except Exception as exc:
            out.fail(exc)
            continue
        out.add(started - clock.t0, time.perf_counter() - started)


async def _subscriber(url: str, limit: int, clock: _Clock, out: Samples, seen: list[int]) -> None:
    subscription = ConvexClient(url).subscribe(NEWEST, {"limit": limit})
    newest_ms = -1.0
    first = True
    while True:
        try:
            value = await subscription.__anext__()
        except Exception as exc:  # the server refused the query; stop this subscriber
            out.fail(exc)
            if first:
                clock.arrive()
            return
        arrived_ms = time.time() * 1000.0
        shown = max((m["sentAtMs"] for m in value), default=-1.0)
        if first:
            first = False
            clock.arrive()
        elif shown > newest_ms and clock.go.is_set() and not clock.stop.is_set():
            out.add(time.perf_counter() - clock.t0, (arrived_ms - shown) / 1000.0)
            seen[0] += 1
        newest_ms = max(newest_ms, shown)
        if clock.stop.is_set():
            return  # between updates: no pending call left to cancel


async def _subscribers(url: str, count: int, limit: int, clock: _Clock,
                       parts: list[Samples], updated: list[int]) -> None:  # fmt: skip
    seen = [[0] for _ in range(count)]
    tasks = [
        asyncio.create_task(_subscriber(url, limit, clock, parts[k], seen[k])) for k in range(count)
    ]
    while not clock.stop.is_set():
        await asyncio.sleep(STOP_POLL_S)
    # Cancelling a pending update panics inside the client (a Rust unwrap), so one last
    # message lets every subscriber return between updates; only stragglers are cancelled.
    rng = random.Random(0)
    await asyncio.to_thread(lambda: ConvexClient(url).mutation("messages:send", message(rng)))
    await asyncio.wait(tasks, timeout=LAST_UPDATE_TIMEOUT_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    updated.append(sum(1 for s in seen if s[0] > 0))


def run(url: str, settings: Settings) -> RunResult:
    """Drive ``url`` for ``settings.duration_s`` and return what every client observed."""
    clock = _Clock()
    parts: dict[str, list[Samples]] = {op.kind: [] for op in OPERATIONS}
    threads: list[threading.Thread] = []
    for op in OPERATIONS:
        rate = settings.rate_of(op.kind)
        interval_s = settings.threads / rate if rate > 0 else 0.0
        for k in range(settings.threads):
            part = Samples()
            parts[op.kind].append(part)
            rng = random.Random(f"{settings.seed}-{op.kind}-{k}")
            args = (url, op, interval_s, rng, clock, part)
            threads.append(threading.Thread(target=_work, args=args, daemon=True))
    sub_parts = [Samples() for _ in range(settings.subscribers)]
    updated: list[int] = []
    if settings.subscribers:
        args = (url, settings.subscribers, settings.newest_limit, clock, sub_parts, updated)
        threads.append(
            threading.Thread(target=lambda: asyncio.run(_subscribers(*args)), daemon=True)
        )
    expected = len(OPERATIONS) * settings.threads + settings.subscribers
    try:
        for t in threads:
            t.start()
        _wait_ready(clock, expected)
        clock.t0 = time.perf_counter()
        clock.go.set()
        clock.stop.wait(settings.duration_s)
    finally:
        clock.stop.set()
        elapsed_s = time.perf_counter() - clock.t0 if clock.t0 else 0.0
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
    samples = {kind: merged(p) for kind, p in parts.items()}
    samples[SUBSCRIPTION] = merged(sub_parts)
    return RunResult(
        samples=samples,
        elapsed_s=elapsed_s,
        subscribers_updated=updated[0] if updated else 0,
        hanging_threads=sum(1 for t in threads if t.is_alive()),
    )


def _wait_ready(clock: _Clock, expected: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while clock.ready < expected:
        if time.monotonic() > deadline:
            raise RunError(
                f"only {clock.ready} of {expected} clients connected within {READY_TIMEOUT_S:g} s"
            )
        time.sleep(0.05)
