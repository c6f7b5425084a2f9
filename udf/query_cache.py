"""Query results kept while they stay true, so a repeated query does not run V8.

A query is a function of its arguments, its caller and the data it read, so a
result computed at ts C is still the answer at any later ts T while no commit
in (C, T] touched its read set. The subscription matcher already knows which
commits touch which read sets: each cached result holds a one-shot watch on
its read set (``Database.watch``) and is dropped when the watch fires. A
lookup at T is a hit only when the matcher has checked every commit up to T
and the watch has not fired, so a hit is exactly what running the query at T
would have returned (Convex keeps the same kind of cache, keyed the same way).

Key: the deployment's ts, the component, the function, the arguments (Convex
JSON), the caller's identity and the pagination journal. Only successful
results are kept (an error may come from a limit, not from the data). The
cache is bounded in bytes (``limits.query_cache_bytes_max``, each result's
Convex value size), least recently used first out. Caveat: a hit hands back
the log lines of the run it reuses, as Convex does.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.values import value_size
from udf.calls import FunctionCall, FunctionOutcome

Watcher = Callable[[Any, int, Callable[[int], None]], Any]


@dataclass
class _Cached:
    outcome: FunctionOutcome
    size: int
    watch: Any = None


class QueryCache:
    def __init__(self, watch: Watcher, processed_ts: Callable[[], int], bytes_max: int) -> None:
        self._watch = watch
        self._processed_ts = processed_ts
        self._bytes_max = bytes_max
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, _Cached] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(call: FunctionCall, udf_path: str, deployment_ts: int, args_json: str) -> tuple:
        identity = call.identity
        who = json.dumps(identity.user, sort_keys=True, default=str) if identity.user else ""
        return (
            deployment_ts,
            call.component_path,
            udf_path,
            args_json,
            who,
            identity.admin,
            call.journal,
        )

    def get(self, key: tuple, ts: int, *, count_miss: bool = True) -> FunctionOutcome | None:
        """The cached outcome as of ``ts``, or None (a miss; not counted when the
        caller goes on to the lookup that counts it)."""
        with self._lock:
            cached = self._entries.get(key)
            valid = (
                cached is not None
                and cached.outcome.ts <= ts
                and self._processed_ts() >= ts
                and cached.watch is not None
                and not cached.watch.closed  # closed: a commit touched it
            )
            if not valid:
                if count_miss:
                    self.misses += 1
                return None
            assert cached is not None
            self._entries.move_to_end(key)
            self.hits += 1
        return replace(cached.outcome, ts=ts)

    def put(self, key: tuple, outcome: FunctionOutcome) -> None:
        """Keep a successful query outcome until a commit touches its read set."""
        if outcome.error is not None or outcome.read_set is None:
            return
        size = value_size(outcome.value) + sum(len(line) for line in outcome.log_lines) + 256
        if size > self._bytes_max // 4:
            return  # one result must not flush the rest
        cached = _Cached(outcome, size)
        with self._lock:
            self._drop(key)
            self._entries[key] = cached
            self._bytes += size
            while self._bytes > self._bytes_max:
                self._drop(next(iter(self._entries)))
        watch = self._watch(outcome.read_set, outcome.ts, lambda _ts: self._forget(key, cached))
        with self._lock:
            cached.watch = watch
            if self._entries.get(key) is not cached:
                watch.close()  # dropped meanwhile

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._drop(key)

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._entries),
                "bytes": self._bytes,
            }

    def _forget(self, key: tuple, cached: _Cached) -> None:
        with self._lock:
            if self._entries.get(key) is cached:
                self._drop(key)

    def _drop(self, key: tuple) -> None:
        cached = self._entries.pop(key, None)
        if cached is None:
            return
        self._bytes -= cached.size
        if cached.watch is not None:
            cached.watch.close()
