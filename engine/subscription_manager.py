"""Live queries: re-run a query whenever a commit touches what it read.

Each subscription keeps the read set of its last run in the matcher
(``projections.subscriptions``). The committer hands every durable batch to
``on_committed``; a notifier thread matches each entry's written keys, in ts
order, against the live read sets and re-runs exactly the subscriptions it
touches, at that entry's ts, then calls their ``on_change``. A commit that
touches no read set costs one matcher lookup per written key and runs nothing.

Registration is race-free: a query that ran at ts S and registers after the
notifier has passed S is checked against the write log for commits in
between, and re-run if one touched it.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from engine.committer import CommittedEntry
from engine.read_set import ReadSet
from engine.results import QueryResult
from engine.write_log import WriteLog
from projections.subscriptions import SubscriptionMatcher

_STOP = object()
logger = logging.getLogger("headwater.subscriptions")

QueryRunner = Callable[[int | None], QueryResult]


class Subscription:
    """The handle ``Database.subscribe`` returns: ``.result`` is the latest result."""

    def __init__(
        self,
        manager: SubscriptionManager,
        sub_id: int,
        run: QueryRunner,
        on_change: Callable[[QueryResult], None],
        result: QueryResult,
    ) -> None:
        self._manager = manager
        self.id = sub_id
        self._run = run
        self._on_change = on_change
        self.result = result
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._manager.remove(self)


class Watch:
    """A one-shot watch on a read set: ``on_invalidated(ts)`` fires once, for the first
    commit after ``since_ts`` that touches it (from the notifier thread)."""

    def __init__(
        self,
        manager: SubscriptionManager,
        watch_id: int,
        since_ts: int,
        on_invalidated: Callable[[int], None],
    ) -> None:
        self._manager = manager
        self.id = watch_id
        self.since_ts = since_ts
        self._on_invalidated = on_invalidated
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._manager.remove(self)


class SubscriptionManager:
    def __init__(self, write_log: WriteLog, initial_ts: int) -> None:
        self._write_log = write_log
        self._matcher = SubscriptionMatcher()
        self._subs: dict[int, Subscription | Watch] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._processed = threading.Condition()
        self._processed_ts = initial_ts
        self._queue: queue.Queue[Any] = queue.Queue()
        self._reruns = 0
        self._thread = threading.Thread(
            target=self._run, name="headwater-subscriptions", daemon=True
        )
        self._thread.start()

    def subscribe(self, run: QueryRunner, on_change: Callable[[QueryResult], None]) -> Subscription:
        result = run(None)
        with self._lock:
            # Commits the notifier already passed may have touched this read set.
            while result.ts < self._processed_ts and self._write_log.find_conflict(
                result.read_set, result.ts
            ):
                result = run(None)
            sub = Subscription(self, next(self._ids), run, on_change, result)
            self._subs[sub.id] = sub
            self._matcher.add(sub.id, result.read_set)
        return sub

    def watch(
        self, read_set: ReadSet, since_ts: int, on_invalidated: Callable[[int], None]
    ) -> Watch:
        """Call ``on_invalidated(ts)`` once, when a commit after ``since_ts`` touches
        ``read_set`` (immediately if one the notifier already passed did)."""
        with self._lock:
            watch = Watch(self, next(self._ids), since_ts, on_invalidated)
            fired_at = None
            if since_ts < self._processed_ts:
                conflict = self._write_log.find_conflict(read_set, since_ts)
                if conflict is not None:
                    fired_at = conflict.ts
            if fired_at is None:
                self._subs[watch.id] = watch
                self._matcher.add(watch.id, read_set)
        if fired_at is not None:
            watch.closed = True
            on_invalidated(fired_at)
        return watch

    @property
    def processed_ts(self) -> int:
        """Every commit up to this ts has been matched and its watchers told."""
        return self._processed_ts

    def wait_processed(self, ts: int, timeout_s: float = 10.0) -> bool:
        """Block until the notifier has matched every commit up to ``ts``."""
        with self._processed:
            return self._processed.wait_for(lambda: self._processed_ts >= ts, timeout_s)

    def remove(self, sub: Subscription | Watch) -> None:
        with self._lock:
            if self._subs.pop(sub.id, None) is not None:
                self._matcher.remove(sub.id)

    def on_committed(self, entries: list[CommittedEntry]) -> None:
        self._queue.put(entries)

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until every commit handed over so far has been processed (for tests)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout_s)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def statistics(self) -> dict[str, Any]:
        return {
            "subscriptions": len(self._subs),
            "reruns": self._reruns,
            "matcher": self._matcher.statistics(),
        }

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            for committed in item:
                self._process(committed)

    def _process(self, committed: CommittedEntry) -> None:
        ts = committed.entry.ts
        with self._lock:
            matched = self._matcher.match(committed.written)
            subs = [self._subs[i] for i in sorted(matched) if i in self._subs]
            watches = [w for w in subs if isinstance(w, Watch) and w.since_ts < ts]
            for w in watches:
                del self._subs[w.id]
                self._matcher.remove(w.id)
                w.closed = True
            self._processed_ts = ts
        with self._processed:
            self._processed.notify_all()
        for w in watches:
            try:
                w._on_invalidated(ts)
            except Exception:
                logger.exception("invalidation callback of watch %s failed", w.id)
        for sub in subs:
            if isinstance(sub, Watch):
                continue
            if sub.result.ts >= ts or sub.closed:
                continue
            result = self._rerun(sub, ts)
            with self._lock:
                if sub.closed:
                    continue
                sub.result = result
                self._matcher.replace(sub.id, result.read_set)
            self._reruns += 1
            try:
                sub._on_change(result)
            except Exception:
                logger.exception("on_change callback of subscription %s failed", sub.id)

    def _rerun(self, sub: Subscription, ts: int) -> QueryResult:
        try:
            return sub._run(ts)
        except Exception as exc:  # the query itself failed: report it, keep the old reads
            return QueryResult(None, ts, sub.result.read_set, error=exc)
