"""The query cache's half of the executor: keys, and answering a hit without a thread.

``udf.query_cache`` keeps results while they stay true; this half decides what
a call's key is and lets the gateway ask for a client's query on its event loop
(no V8, no waiting), so a hit skips the hand-off to a worker thread. ``Executor``
inherits these methods; the attributes below are set up by ``Executor.__init__``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from engine import Database
from engine.convex_json import to_convex_json
from engine.limits import Limits
from udf.calls import FunctionCall, FunctionOutcome
from udf.dashboard_functions import is_dashboard_path
from udf.deployment import Deployment
from udf.function_log import FunctionLog
from udf.outcome import FunctionInfo
from udf.query_cache import QueryCache
from udf.system_functions import is_system_path


class ExecutorQueryCache:
    """Query-cache lookups of an ``Executor`` (its base class)."""

    db: Database
    limits: Limits
    query_cache: QueryCache | None
    function_log: FunctionLog | None
    _deployment: Deployment | None
    _on_deploy: list[Callable[[Deployment], None]]
    _resolve: Callable[..., Any]

    def _start_query_cache(self) -> QueryCache | None:
        """Results still true at the newest commit, emptied by every deploy; none beside
        another process's writer, whose commits this one sees only by polling."""
        db, bytes_max = self.db, self.limits.query_cache_bytes_max
        if db.read_only or not bytes_max:
            return None
        cache = QueryCache(db.watch, lambda: db.processed_ts, bytes_max)
        self._on_deploy.append(lambda _deployment: cache.clear())
        return cache

    def cached_query(self, call: FunctionCall) -> FunctionOutcome | None:
        """A client's query answered from the query cache (and logged), or None.

        Never runs V8 and never waits, so the gateway asks it on its event loop
        before handing a query to a worker thread: a hit skips that hand-off."""
        cache = self.query_cache
        if cache is None or call.ts is not None:
            return None
        if is_dashboard_path(call.path) or is_system_path(call.path):
            return None
        started_s, started = time.time(), time.perf_counter()
        resolved = self._resolve(call, 0)
        if isinstance(resolved, FunctionOutcome) or resolved[0].kind != "query":
            return None  # the worker thread answers (and logs) it as any call
        key = self._cache_key(call, resolved[0])
        hit = cache.get(key, self.db.latest_ts(), count_miss=False)
        if hit is not None and self.function_log is not None:
            self.function_log.record(
                call, hit, started_s=started_s, execution_time_s=time.perf_counter() - started
            )
        return hit

    def _cache_key(self, call: FunctionCall, info: FunctionInfo) -> tuple:
        deployment_ts = 0 if self._deployment is None else self._deployment.ts
        args_json = json.dumps(to_convex_json(call.args), separators=(",", ":"))
        return QueryCache.key(call, info.udf_path, deployment_ts, args_json)
