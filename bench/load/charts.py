"""The report's charts: per operation, latency over the run and its histogram, as PNG bytes.

Drawn with matplotlib's Agg canvas on a bare ``Figure`` (no pyplot, so no global state
and no display needed). PNG at a modest size keeps a report of five charts near 200 KB.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.load.samples import Samples, per_second

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 3.0, 80
HISTOGRAM_BINS = 60
LOG_SCALE_SPREAD = 20.0  # a log axis once the slowest sample is this many times the fastest


def latency_png(title: str, samples: Samples) -> bytes:
    """One PNG: per-second p50/p99 on the left, the latency histogram on the right."""
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    over_time, histogram = figure.subplots(1, 2, width_ratios=(3, 2))
    figure.suptitle(title, fontsize=11)
    latencies_ms = np.asarray(samples.latencies_s, dtype=float) * 1e3
    if latencies_ms.size == 0:
        for axes in (over_time, histogram):
            axes.text(0.5, 0.5, "no samples", ha="center", va="center", transform=axes.transAxes)
    else:
        _draw_over_time(over_time, samples)
        _draw_histogram(histogram, latencies_ms)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _log_worthy(latencies_ms: np.ndarray) -> bool:
    low = max(float(latencies_ms.min()), 1e-3)
    return float(latencies_ms.max()) / low > LOG_SCALE_SPREAD


def _draw_over_time(axes, samples: Samples) -> None:  # type: ignore[no-untyped-def]
    seconds, p50s, p99s = per_second(samples)
    axes.plot(seconds, p99s, color="#d62728", linewidth=1.2, label="p99")
    axes.plot(seconds, p50s, color="#1f77b4", linewidth=1.2, label="p50")
    axes.set_xlabel("second of the run")
    axes.set_ylabel("latency (ms)")
    if _log_worthy(np.asarray(p50s + p99s)):
        axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)


def _draw_histogram(axes, latencies_ms: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    low, high = max(float(latencies_ms.min()), 1e-3), float(latencies_ms.max())
    if _log_worthy(latencies_ms):
        bins = np.geomspace(low, high * 1.0001, HISTOGRAM_BINS)
        axes.set_xscale("log")
    else:
        bins = np.linspace(low, high * 1.0001 if high > low else low + 1.0, HISTOGRAM_BINS)
    axes.hist(latencies_ms, bins=bins, color="#1f77b4", alpha=0.85)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("operations")
    axes.grid(True, alpha=0.3)
