"""The run's settings: the command line, checked against limits before anything starts.

A refused flag is one ``error: ...`` line on stderr and exit status 2, so a typo never
starts a server or a ten-minute run.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

DURATION_S_DEFAULT = 30.0
DURATION_S_MIN = 1.0
DURATION_S_MAX = 600.0  # a run holds a server and client threads; ten minutes is plenty
THREADS_MAX = 64  # per operation kind: each thread holds its own WebSocket client
SUBSCRIBERS_MAX = 500  # each subscriber is a WebSocket client of its own
RATE_MAX = 10_000.0  # ops/s per kind; past it the pacing sleep is below the timer's grain
DEFAULT_OUT = Path(__file__).parent / "report.html"


class SettingsError(Exception):
    """A flag the run cannot honour; the message names the flag and the allowed range."""


@dataclass(frozen=True)
class Settings:
    duration_s: float = DURATION_S_DEFAULT
    threads: int = 2  # per operation kind
    insert_rate: float = 20.0  # ops/s across the kind's threads; 0: as fast as answered
    query_rate: float = 50.0
    search_rate: float = 10.0
    vector_rate: float = 10.0
    subscribers: int = 10
    newest_limit: int = 20  # messages each subscriber holds
    seed_messages: int = 200  # written before the clock starts, so reads find something
    out: Path = DEFAULT_OUT
    json_out: Path | None = None
    url: str | None = None
    admin_key: str | None = None
    seed: int = 0

    @property
    def cores(self) -> int:
        return os.cpu_count() or 1

    def rate_of(self, kind: str) -> float:
        return float(getattr(self, f"{kind}_rate"))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SettingsError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench.load",
        description="Drive a Headwater server with queries, inserts, text and vector searches "
        "and live subscribers through the official Python client; write an HTML report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = Settings()
    add = parser.add_argument
    add("--duration", type=float, default=d.duration_s, help="seconds of traffic (1-600)")
    add("--threads", type=int, default=d.threads, help="client threads per operation kind")
    add("--insert-rate", type=float, default=d.insert_rate, help="inserts/s (0: unpaced)")
    add("--query-rate", type=float, default=d.query_rate, help="indexed reads/s (0: unpaced)")
    add("--search-rate", type=float, default=d.search_rate, help="text searches/s (0: unpaced)")
    add("--vector-rate", type=float, default=d.vector_rate, help="vector searches/s (0: unpaced)")
    add("--subscribers", type=int, default=d.subscribers, help="clients subscribed to the newest")
    add("--newest", type=int, default=d.newest_limit, help="messages each subscriber holds")
    add("--seed-messages", type=int, default=d.seed_messages, help="messages written first")
    add("--out", type=Path, default=d.out, help="the HTML report")
    add("--json", type=Path, default=None, help="also write the summary as JSON here")
    add("--url", default=None, help="an already running server (else one is started)")
    add("--admin-key", default=None, help="with --url: that server's admin key")
    add("--seed", type=int, default=d.seed, help="seed of the random messages and vectors")
    return parser


def parse_settings(argv: list[str] | None) -> Settings:
    """The settings of ``argv``, or :class:`SettingsError` naming the first bad flag."""
    a = build_parser().parse_args(argv)
    _check_range("--duration", a.duration, DURATION_S_MIN, DURATION_S_MAX, "seconds")
    _check_range("--threads", a.threads, 1, THREADS_MAX, "threads")
    _check_range("--subscribers", a.subscribers, 0, SUBSCRIBERS_MAX, "clients")
    _check_range("--newest", a.newest, 1, 1000, "messages")
    _check_range("--seed-messages", a.seed_messages, 1, 100_000, "messages")
    for flag in ("insert_rate", "query_rate", "search_rate", "vector_rate"):
        _check_range("--" + flag.replace("_", "-"), getattr(a, flag), 0, RATE_MAX, "ops/s")
    if (a.url is None) != (a.admin_key is None):
        raise SettingsError("--url and --admin-key go together")
    if a.url is not None and not a.url.startswith(("http://127.0.0.1", "http://localhost")):
        raise SettingsError(
            f"--url must be a loopback address (http://127.0.0.1:PORT), got {a.url}"
        )
    return Settings(
        duration_s=a.duration,
        threads=a.threads,
        insert_rate=a.insert_rate,
        query_rate=a.query_rate,
        search_rate=a.search_rate,
        vector_rate=a.vector_rate,
        subscribers=a.subscribers,
        newest_limit=a.newest,
        seed_messages=a.seed_messages,
        out=a.out,
        json_out=a.json,
        url=a.url,
        admin_key=a.admin_key,
        seed=a.seed,
    )


def _check_range(flag: str, value: float, low: float, high: float, unit: str) -> None:
    # `not (low <= value <= high)` also refuses NaN.
    if not (low <= value <= high):
        raise SettingsError(f"{flag} must be between {low:g} and {high:g} {unit}, got {value:g}")
