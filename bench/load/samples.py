"""Latency samples and what is read from them: counts, rates, percentiles, per-second series.

Each client thread appends to a :class:`Samples` of its own (no lock on the hot path);
the run merges them at the end. Percentiles are nearest-rank, so they are samples that
were actually observed and p50 <= p99 <= p99.9 holds by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PERCENTILES = (0.50, 0.99, 0.999)


@dataclass
class Samples:
    """One operation kind's observations: when each started (s since the run began) and took."""

    started_s: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def add(self, started_s: float, latency_s: float) -> None:
        self.started_s.append(started_s)
        self.latencies_s.append(latency_s)

    def fail(self, error: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]

    def extend(self, other: Samples) -> None:
        self.started_s.extend(other.started_s)
        self.latencies_s.extend(other.latencies_s)
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


def merged(parts: list[Samples]) -> Samples:
    whole = Samples()
    for part in parts:
        whole.extend(part)
    return whole


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Summary:
    kind: str
    title: str
    count: int
    errors: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    first_error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in vars(self).items()
        }


def summarize(kind: str, title: str, samples: Samples, elapsed_s: float) -> Summary:
    ordered = sorted(samples.latencies_s)
    p50, p99, p999 = (percentile(ordered, q) * 1e3 for q in PERCENTILES)
    return Summary(
        kind=kind,
        title=title,
        count=len(ordered),
        errors=samples.errors,
        ops_per_s=len(ordered) / elapsed_s if elapsed_s > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        p999_ms=p999,
        first_error=samples.first_error,
    )


def per_second(samples: Samples) -> tuple[list[int], list[float], list[float]]:
    """For each second of the run that saw samples: (second, p50 ms, p99 ms)."""
    buckets: dict[int, list[float]] = {}
    for started, latency in zip(samples.started_s, samples.latencies_s, strict=True):
        buckets.setdefault(int(started), []).append(latency)
    seconds = sorted(buckets)
    p50s, p99s = [], []
    for second in seconds:
        ordered = sorted(buckets[second])
        p50s.append(percentile(ordered, 0.50) * 1e3)
        p99s.append(percentile(ordered, 0.99) * 1e3)
    return seconds, p50s, p99s
