"""Benchmark: matching a commit against 10k and 100k live subscriptions.

Each subscription reads like a chat client: one ``get`` on the messages'
``by_id`` index, one range over a channel in ``by_channel`` (most read the
whole channel and so share the interval; some read from a creation time on),
and a few read a window of ``by_creation_time``. A commit updates one message:
the old and new keys in its three indexes, six written keys.

The matcher is timed against the baseline it replaces, ``ReadSet.intersects``
over every subscription, in the same run. Run: ``python -m bench.bench_subscriptions``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from engine.read_set import ReadSet, ReadSetBuilder
from projections.subscriptions import SubscriptionMatcher

SEED = 20240601
CHANNELS = 3000
MESSAGES = 200_000
BY_ID = "10001:by_id"
BY_CHANNEL = "10001:by_channel"
BY_CREATION = "10001:by_creation_time"
COMMITS_TIMED = 5000
SIZES = (10_000, 100_000)


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _channel_prefix(channel: int) -> bytes:
    # Stand-in for an encoded string field: tag, text, terminator.
    return b"\x0e" + b"channel-%05d" % channel + b"\x00"


def _channel_end(channel: int) -> bytes:
    return b"\x0e" + b"channel-%05d" % channel + b"\x01"


class _World:
    """Synthetic messages: id, channel, creation time (ms)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.channel = [rng.randrange(CHANNELS) for _ in range(MESSAGES)]
        created = sorted(rng.randrange(10**9) for _ in range(MESSAGES))
        # Messages nobody has read yet: after every window, before every live tail.
        self.created = created + [10**9 + 2 * 10**6 + i for i in range(MESSAGES)]

    def keys(self, message: int, channel: int) -> list[tuple[str, bytes]]:
        doc_id = b"\x0c" + _u64(message * 7919 + 13)
        created = _u64(self.created[message])
        return [
            (BY_ID, doc_id),
            (BY_CHANNEL, _channel_prefix(channel) + created + doc_id),
            (BY_CREATION, created + doc_id),
        ]

    def read_set(self) -> ReadSet:
        rng = self.rng
        builder = ReadSetBuilder()
        builder.add_point(BY_ID, b"\x0c" + _u64(rng.randrange(MESSAGES) * 7919 + 13))
        channel = rng.randrange(CHANNELS)
        if rng.random() < 0.7:
            builder.add(BY_CHANNEL, _channel_prefix(channel), _channel_end(channel))
        else:
            since = _u64(rng.randrange(10**9))
            builder.add(BY_CHANNEL, _channel_prefix(channel) + since, _channel_end(channel))
        if rng.random() < 0.05:
            start = rng.randrange(10**9)
            builder.add(BY_CREATION, _u64(start), _u64(start + rng.randrange(10**6)))
        if rng.random() < 0.001:
            # A live tail: everything from a point after the unread messages on.
            builder.add(BY_CREATION, _u64(10**9 + 5 * 10**6 + rng.randrange(10**6)), None)
        return builder.build()

    def unread_commit(self) -> list[tuple[str, bytes]]:
        """An edit nobody reads: a new message id in a channel nobody watches, at a fresh time."""
        message = MESSAGES + self.rng.randrange(MESSAGES)
        return self.keys(message, CHANNELS + 1) + self.keys(message, CHANNELS + 2)

    def commit(self) -> list[tuple[str, bytes]]:
        """The written keys of one message edit that may also move it to another channel."""
        message = self.rng.randrange(MESSAGES)
        old = self.keys(message, self.channel[message])
        moved = self.channel[message] if self.rng.random() < 0.9 else self.rng.randrange(CHANNELS)
        return old + self.keys(message, moved)


def _time_per_call_us(fn: Callable[[], object], calls: int, rounds: int = 10) -> float:
    """Mean µs per call in the fastest of ``rounds`` rounds (other processes add noise)."""
    per_round = max(1, calls // rounds)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best * 1e6


def _run_size(world: _World, size: int) -> dict[str, float]:
    read_sets = [world.read_set() for _ in range(size)]
    matcher = SubscriptionMatcher()
    start = time.perf_counter()
    for sub_id, read_set in enumerate(read_sets):
        matcher.add(sub_id, read_set)
    add_us = (time.perf_counter() - start) / size * 1e6

    commits = [world.commit() for _ in range(COMMITS_TIMED)]
    matched = sum(len(matcher.match(c)) for c in commits) / len(commits)
    it = iter(commits * 2)
    match_us = _time_per_call_us(lambda: matcher.match(next(it)), COMMITS_TIMED)

    misses = [world.unread_commit() for _ in range(COMMITS_TIMED)]
    if any(matcher.match(c) for c in misses):
        raise RuntimeError("an unread commit matched")
    it_miss = iter(misses)
    miss_us = _time_per_call_us(lambda: matcher.match(next(it_miss)), COMMITS_TIMED)

    subs = list(enumerate(read_sets))
    baseline_calls = max(3, 200_000 // size)
    it_base = iter(commits * 2)

    def brute() -> set:
        written = next(it_base)
        return {s for s, r in subs if r.intersects(written)}

    for commit in commits[:20]:
        if brute() != matcher.match(commit):
            raise RuntimeError("matcher and brute force disagree")
    baseline_us = _time_per_call_us(brute, baseline_calls)

    churn = max(1000, size // 10)
    victims = world.rng.sample(range(size), churn)
    start = time.perf_counter()
    for sub_id in victims:
        matcher.remove(sub_id)
    remove_us = (time.perf_counter() - start) / churn * 1e6
    stats = matcher.statistics()
    return {
        "match_us": match_us,
        "miss_us": miss_us,
        "baseline_us": baseline_us,
        "matched": matched,
        "add_us": add_us,
        "remove_us": remove_us,
        "levels": stats["levels"],
        "rebuilds": stats["rebuilds"],
        "ranges": stats["distinct_ranges"] + stats["dead_ranges"],
    }


def main() -> None:
    started = time.perf_counter()
    world = _World(random.Random(SEED))
    results = {size: _run_size(world, size) for size in SIZES}
    print("Subscription matching: one commit (6 written keys over 3 indexes)\n")
    header = (
        f"{'subs':>8} {'matcher µs':>11} {'brute µs':>11} {'speedup':>9} {'no-hit µs':>10} "
        f"{'matched':>8} {'add µs':>7} {'remove µs':>10} {'ranges':>7} {'levels':>7}"
    )
    print(header)
    print("-" * len(header))
    for size, r in results.items():
        print(
            f"{size:>8} {r['match_us']:>11.1f} {r['baseline_us']:>11.0f} "
            f"{r['baseline_us'] / r['match_us']:>8.0f}x {r['miss_us']:>10.1f} {r['matched']:>8.1f} "
            f"{r['add_us']:>7.1f} {r['remove_us']:>10.1f} {r['ranges']:>7.0f} "
            f"{r['levels']:>7.0f}"
        )
    small, large = (results[s] for s in SIZES)
    print(
        f"\ngrowth {SIZES[0]} -> {SIZES[1]} subscriptions (x{SIZES[1] // SIZES[0]}): "
        f"matcher x{large['match_us'] / small['match_us']:.2f} "
        f"(matches x{large['matched'] / small['matched']:.1f}; "
        f"a commit nobody reads x{large['miss_us'] / small['miss_us']:.2f}), "
        f"brute force x{large['baseline_us'] / small['baseline_us']:.2f}"
    )
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
