"""``ops:health``: the figures of the dashboard's health screen, measured when asked.

- commits per second over the last minute: the log's entries in that minute, counted
  from their keys (``LmdbLog.count_range``; nothing decoded);
- function latency p50/p99 (ms) over the function log's most recent executions;
- live WebSocket connections and subscriptions, and Kafka exporters' lag: figures only
  the gateway knows, read from the gauges its composition root registers
  (``DashboardContext.gauges``: ``"sync"`` → ``{connections, subscriptions}``, and
  ``"kafka:<name>"`` → ``{lagCommits}`` per exporter running in the server);
- the search indexer's lag behind the newest commit, in commits;
- the data folder's size (the sum of its files' sizes) and the newest commit ts;
- the query cache's hits, misses, entries and bytes (``udf.query_cache``; None when off);
- with ``--store``: the deployment's nodes, its leader and each node's lag (``cluster``,
  None on an embedded deployment), read from the store as ``headwater status`` reads it.

None of these is a document, so the query has no read set to make it live: the
screen asks again (``refresh``, any number, makes each ask a new subscription).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from engine.cluster import cluster_status
from engine.database import storage_handles
from engine.transaction import Transaction
from udf.dashboard_ops_args import check_keys

RATE_WINDOW_S = 60
LATENCY_SAMPLE = 1000  # the most recent executions the percentiles cover
LAG_COUNTED_MAX = 1_000_000  # a lag past this is reported as this


def health(context: Any, _tx: Transaction, args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, ("refresh",), "ops:health")
    db = context.db
    log = storage_handles(db)[1]
    now_ns = time.time_ns()
    newest = db.latest_ts()
    window_start = now_ns - RATE_WINDOW_S * 1_000_000_000
    commits = log.count_range(window_start, max(now_ns, newest))
    sync = _gauge(context, "sync")
    return {
        "commitsPerSecond": commits / RATE_WINDOW_S,
        "functionLatencyMs": latency_percentiles(context.executor),
        "connections": float(sync.get("connections", 0)),
        "subscriptions": float(sync.get("subscriptions", 0)),
        "kafka": _kafka(context),
        "search": _search(db, log, newest),
        "dataFolderBytes": float(folder_bytes(db.path)),
        "newestTs": str(newest),
        "cluster": _cluster(db),
        "queryCache": _query_cache(context.executor),
    }


def _query_cache(executor: Any) -> dict[str, float] | None:
    cache = getattr(executor, "query_cache", None)
    if cache is None:
        return None
    return {name: float(count) for name, count in cache.statistics().items()}


def _cluster(db: Any) -> dict[str, Any] | None:
    """The nodes of the deployment (``headwater status``), or None on one embedded node."""
    if db.cluster is None:
        return None
    status = cluster_status(db.cluster.store, count_entries=False)
    leader = status["leader"]
    return {
        "store": status["store"],
        "thisNode": db.cluster.node_id,
        "leader": None
        if leader is None
        else {"node": leader["node"], "address": leader["address"]},
        "nodes": [
            {
                "node": n["node"],
                "role": n["role"],
                "address": n["address"],
                "appliedTs": str(n["applied_ts"]),
                "lagMs": float(n["lag_ms"]),
                "seenMsAgo": float(n["seen_ms_ago"]),
            }
            for n in status["nodes"]
        ],
    }


def latency_percentiles(executor: Any) -> dict[str, float | None]:
    """p50 and p99 (nearest rank) of the recent executions' durations, in ms."""
    function_log = getattr(executor, "function_log", None)
    if function_log is None:
        return {"p50": None, "p99": None}
    entries, _ = function_log.entries_after(-math.inf)
    durations = sorted(e.execution_time_s * 1000 for e in entries[-LATENCY_SAMPLE:])
    return {"p50": _rank(durations, 0.50), "p99": _rank(durations, 0.99)}


def _rank(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _gauge(context: Any, name: str) -> dict[str, Any]:
    read = context.gauges.get(name)
    return {} if read is None else dict(read())


def _kafka(context: Any) -> list[dict[str, Any]]:
    found = []
    for name in sorted(context.gauges):
        if name.startswith("kafka:"):
            lag = context.gauges[name]().get("lagCommits", 0)
            found.append({"name": name.removeprefix("kafka:"), "lagCommits": float(lag)})
    return found


def _search(db: Any, log: Any, newest: int) -> dict[str, Any]:
    stats = db.search_statistics()
    applied = int(stats.get("applied_ts") or 0)
    indexes = stats.get("indexes") or {}
    backfilling = sum(1 for index in indexes.values() if not index.get("ready", True))
    lag = 0 if applied >= newest else log.count_range(applied + 1, newest, LAG_COUNTED_MAX)
    return {
        "caughtUp": lag == 0 and backfilling == 0,
        "lagCommits": float(lag),
        "indexes": float(len(indexes)),
        "backfilling": float(backfilling),
    }


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """The sum of the sizes of every file under ``path`` (a file gone meanwhile counts 0)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
