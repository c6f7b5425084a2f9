"""Live queries shared by every socket that subscribes to the same thing.

Identical subscriptions — same canonical udfPath, argument object, identity
``cache_key`` and journal — are one ``LiveQuery``: one execution per snapshot
ts and one executor watch, however many sockets hold it. A query runs with the
journal of its newest result (a paginated query's page end), so it is found
under that journal only: a new subscription without one (or with another) gets
its own query, which pages afresh, as it would on the reference. Sockets ask for "a
result valid at ts" (``result_at``); the first asker runs the query in a
worker thread, everyone asking for the same ts meanwhile awaits that run.

Validity. A run at snapshot R registers a one-shot watch since R. While the
watch has not fired, the result is valid at every ts in [R, processed_ts]
(every commit up to processed_ts has been matched against it). When it fires
for a commit at F, the result stays valid exactly on [R, F). A caller only
asks about a ts it read from ``processed_ts`` earlier, so "not fired" is
enough. Whenever a run's watch fires — or a result is replaced after its
watch fired — every socket holding the query is told to schedule an update
(spurious ones only cost an empty Transition).

Eager refresh (``refresh_fired=True``, what the sync endpoint uses). When the
current result of a held query fires, the registry itself runs the query once
at the newest processed ts, in a worker thread of its own, and tells the
holders only when the new result is in place: a thousand sockets on one query
then find its result ready instead of each parking on the shared run. Without
it, holders are told at once and the first one that asks runs the query.

Threads. Watch callbacks arrive on the executor's notifier thread (or inside
``watch`` itself, on the worker thread). They only record the ts and hand the
query to the event loop, in batches, through the loop token captured when the
query was created. An eager refresh runs in one of the registry's own few
daemon threads and hands its result back the same way.

Caveats: the executor may advance ``processed_ts`` a moment before it calls
the callbacks of that commit; a watch the engine already closed but whose
callback has not run yet is therefore treated as fired at an unknown ts (the
result is then valid only at its own R). Identical subscriptions share the
identity of the first socket that subscribed (same ``cache_key``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from engine.errors import HeadwaterError, LimitExceededError
from gateway.sync_client_messages import decode_args
from gateway.sync_messages import EncodedResult, new_request_id
from gateway.sync_session import encode_query_outcome
from udf.calls import FunctionCall, FunctionError, FunctionExecutor, FunctionOutcome, Identity

logger = logging.getLogger("headwater.sync")

# Waiting for the executor to match commits: one worker-thread wait at a time, this
# short so a cancelled waiter hands the wait to the next one promptly.
_WAIT_SLICE_S = 0.25
PROCESSED_WAIT_TIMEOUT_S = 30.0
# Worker threads for eager refreshes: queries run in V8 under one GIL, so a few suffice.
_REFRESH_THREADS = 4

Subscriber = Callable[[], None]


def args_key(raw: list[Any]) -> str:
    """Canonical text of raw args: equal for argument objects that are equal."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_udf_path(path: str) -> str:
    """``"messages"`` -> ``"messages:default"``, ``"a/b.js:f"`` -> ``"a/b:f"``."""
    module, _, export = path.partition(":")
    return f"{module.removesuffix('.js')}:{export or 'default'}"


@dataclass(frozen=True)
class QueryKey:
    udf_path: str  # canonical: "module:export"
    args: str  # canonical JSON text of the raw args array
    identity: str  # Identity.cache_key
    journal: str | None
    component_path: str = ""  # the component whose function it is (admin callers only)

    @classmethod
    def of(
        cls,
        udf_path: str,
        raw_args: list[Any],
        identity: Identity,
        journal: str | None,
        component_path: str = "",
    ):
        path = canonical_udf_path(udf_path)
        return cls(path, args_key(raw_args), identity.cache_key, journal, component_path)


class LiveResult:
    """One execution: its rendered result, snapshot ts and watch."""

    __slots__ = (
        "ts",
        "encoded",
        "journal",
        "watch",
        "has_read_set",
        "fired_ts",
        "retired",
        "notified",
    )

    def __init__(self, ts: int, encoded: EncodedResult, journal: str | None) -> None:
        self.ts = ts
        self.encoded = encoded
        self.journal = journal
        self.watch: Any = None
        self.has_read_set = False
        self.fired_ts: int | None = None
        self.retired = False  # we closed its watch: validity past R is unknown
        self.notified = False  # its holders were told it fired

    def valid_at(self, ts: int) -> bool:
        """Is this result the query's result at ``ts``? (``ts`` <= processed_ts.)"""
        if ts < self.ts:
            return False
        fired = self.fired_ts
        if fired is not None:
            return ts < fired
        if not self.has_read_set or self.retired or getattr(self.watch, "closed", False):
            return ts == self.ts
        return True

    @property
    def fired(self) -> bool:
        return self.fired_ts is not None or (
            not self.retired and bool(getattr(self.watch, "closed", False))
        )


class _Run:
    __slots__ = ("ts", "done", "result", "error")

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.done = anyio.Event()
        self.result: LiveResult | None = None
        self.error: BaseException | None = None


class LiveQuery:
    """A query that one or more sockets subscribe to."""

    def __init__(
        self, key: QueryKey, udf_path: str, raw_args: list[Any], identity: Identity, token: Any
    ) -> None:
        self.key = key  # the key it is found under while ``registered``
        self.registered = True
        self.udf_path = udf_path
        self.raw_args = raw_args
        self.identity = identity
        self.journal = key.journal
        self.component_path = key.component_path
        self.token = token
        self.current: LiveResult | None = None
        self.runs: dict[int, _Run] = {}
        self.subscribers: dict[Subscriber, int] = {}
        self.executions = 0

    def notify(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber()


class LiveQueryRegistry:
    """Every live query of one server, keyed by what makes two of them identical."""

    def __init__(
        self,
        executor: FunctionExecutor,
        *,
        subscriptions_max: int = 100_000,
        refresh_fired: bool = False,
    ) -> None:
        self._executor = executor
        self.subscriptions_max = subscriptions_max
        self.refresh_fired = refresh_fired
        # (query, run) for the refresh threads, started on first use; None stops one
        self._refresh_jobs: queue.SimpleQueue[tuple[LiveQuery, _Run] | None] = queue.SimpleQueue()
        self._refresh_threads: list[threading.Thread] = []
        self._queries: dict[QueryKey, LiveQuery] = {}
        self._subscriptions = 0
        self._lock = threading.Lock()
        # loop token -> fired results to tell their holders about
        self._fired: dict[Any, list[tuple[LiveQuery, LiveResult]]] = {}
        self._processed_moved: anyio.Event | None = None  # set when a shared wait returns
        self._executions = 0
        self._served = 0

    # -- subscribing ----------------------------------------------------------------

    def acquire(
        self,
        udf_path: str,
        raw_args: list[Any],
        identity: Identity,
        journal: str | None,
        subscriber: Subscriber,
        component_path: str = "",
    ) -> LiveQuery:
        """Hold the live query for these parameters (shared when identical)."""
        if self._subscriptions >= self.subscriptions_max:
            raise LimitExceededError(
                f"TooManySubscriptions: the server holds its maximum of "
                f"{self.subscriptions_max} live query subscriptions; try again later.",
                code="TooManySubscriptions",
            )
        key = QueryKey.of(udf_path, raw_args, identity, journal, component_path)
        query = self._queries.get(key)
        if query is None:
            token = anyio.lowlevel.current_token()
            query = LiveQuery(key, udf_path, raw_args, identity, token)
            self._queries[key] = query
        query.subscribers[subscriber] = query.subscribers.get(subscriber, 0) + 1
        self._subscriptions += 1
        return query

    def release(self, query: LiveQuery, subscriber: Subscriber) -> None:
        count = query.subscribers.get(subscriber, 0)
        if count == 0:
            return
        self._subscriptions -= 1
        if count > 1:
            query.subscribers[subscriber] = count - 1
            return
        del query.subscribers[subscriber]
        if query.subscribers:
            return
        self._unregister(query)
        if query.current is not None:
            self._retire(query, query.current, notify=False)
            query.current = None

    # -- results ----------------------------------------------------------------

    def valid_result(self, query: LiveQuery, ts: int) -> EncodedResult | None:
        """The query's result at ``ts`` if known without running it."""
        current = query.current
        if current is not None and current.valid_at(ts):
            self._served += 1
            return current.encoded
        return None

    async def result_at(self, query: LiveQuery, ts: int) -> EncodedResult:
        """The query's result at ``ts`` (<= processed_ts), running it if needed (shared)."""
        known = self.valid_result(query, ts)
        if known is not None:
            return known
        earlier = [r for t, r in query.runs.items() if t <= ts]
        if earlier:
            joined = max(earlier, key=lambda r: r.ts)
            await joined.done.wait()
            if joined.result is not None and joined.result.valid_at(ts):
                self._served += 1
                return joined.result.encoded
        run = query.runs.get(ts)
        if run is None:
            run = _Run(ts)
            query.runs[ts] = run
            try:
                run.result = await anyio.to_thread.run_sync(self._execute, query, ts)
            except BaseException as exc:
                run.error = exc
                if self.refresh_fired:  # holders not told yet were waiting for this run
                    query.notify()
                raise
            finally:
                del query.runs[ts]
                run.done.set()
                if run.result is not None:
                    self._adopt(query, run.result)
            return run.result.encoded
        await run.done.wait()
        if run.result is None:
            raise RuntimeError(f"the shared run of {query.udf_path} failed") from run.error
        self._served += 1
        return run.result.encoded

    def _execute(self, query: LiveQuery, ts: int) -> LiveResult:
        """Worker thread: run the query at ``ts`` and watch what it read."""
        request_id = new_request_id()
        try:
            args = decode_args(query.raw_args, query.udf_path)
        except HeadwaterError as exc:
            outcome = FunctionOutcome(error=FunctionError(exc.message), ts=ts)
        else:
            call = FunctionCall(
                path=query.udf_path,
                args=args,
                kind="query",
                identity=query.identity,
                ts=ts,
                journal=query.journal,
                request_id=request_id,
                component_path=query.component_path,
            )
            outcome = self._executor.run(call)
        query.executions += 1
        self._executions += 1
        result = LiveResult(ts, encode_query_outcome(outcome, request_id), outcome.journal)
        if outcome.read_set is not None:
            result.has_read_set = True

            def on_invalidated(fired_ts: int) -> None:
                self._on_fired(query, result, fired_ts)

            result.watch = self._executor.watch(outcome.read_set, ts, on_invalidated)
        return result

    def _adopt(self, query: LiveQuery, result: LiveResult) -> None:
        """Make a finished run the query's current result if it is the newest."""
        if not query.subscribers:
            self._retire(query, result, notify=False)
            return
        current = query.current
        if current is not None and current.ts > result.ts:
            self._retire(query, result, notify=True)
            return
        if result.journal != query.journal:
            self._rekey(query, result.journal)
        query.current = result
        refreshing = result.fired and self.refresh_fired
        if refreshing:  # holders hear when the refresh is in place, not before
            self._refresh(query, result)
        if current is not None:
            self._retire(query, current, notify=not refreshing)
        if result.fired and not refreshing:
            self._notify(query, result)

    def _unregister(self, query: LiveQuery) -> None:
        if query.registered and self._queries.get(query.key) is query:
            del self._queries[query.key]
        query.registered = False

    def _rekey(self, query: LiveQuery, journal: str | None) -> None:
        """The query's next runs use ``journal``: find it under that journal only."""
        self._unregister(query)
        query.journal = journal
        key = query.key
        query.key = QueryKey(key.udf_path, key.args, key.identity, journal, key.component_path)
        # Another query may hold that key already (it paged to the same end): both stay.
        query.registered = self._queries.setdefault(query.key, query) is query

    def _retire(self, query: LiveQuery, result: LiveResult, *, notify: bool) -> None:
        """Close a result's watch; if it had fired, holders of the query must update."""
        fired = result.fired
        result.retired = True
        if result.watch is not None:
            result.watch.close()
        if notify and fired:
            self._notify(query, result)

    @staticmethod
    def _notify(query: LiveQuery, result: LiveResult) -> None:
        """Once per fired result: every socket holding the query schedules an update."""
        if not result.notified:
            result.notified = True
            query.notify()

    # -- invalidation (any thread) ------------------------------------------------

    def _on_fired(self, query: LiveQuery, result: LiveResult, fired_ts: int) -> None:
        if result.fired_ts is None:
            result.fired_ts = fired_ts
        token = query.token
        with self._lock:
            first = token not in self._fired
            self._fired.setdefault(token, []).append((query, result))
        if first:
            try:
                anyio.from_thread.run_sync(self._drain, token, token=token)
            except Exception:  # the loop has finished: nobody is left to tell
                with self._lock:
                    self._fired.pop(token, None)

    def _drain(self, token: Any) -> None:
        """Event loop: tell every socket holding a fired query to schedule an update
        (with eager refresh: once its new result is in place)."""
        with self._lock:
            batch = self._fired.pop(token, [])
        for query, result in batch:
            if self.refresh_fired and result is query.current and query.subscribers:
                self._refresh(query, result)
            else:
                self._notify(query, result)

    # -- eager refresh ------------------------------------------------------------

    def _refresh(self, query: LiveQuery, fired: LiveResult) -> None:
        """Event loop: run a held query whose result ``fired`` once, for all its holders.

        A run already under way at or after the firing commit will do; its
        adoption retires ``fired`` and tells the holders.
        """
        ts = self._executor.processed_ts()
        covered = fired.fired_ts if fired.fired_ts is not None else ts
        if any(t >= covered for t in query.runs):
            return
        if not self._refresh_threads:
            for n in range(_REFRESH_THREADS):
                thread = threading.Thread(
                    target=self._refresh_worker, name=f"headwater-live-refresh-{n}", daemon=True
                )
                thread.start()
                self._refresh_threads.append(thread)
        run = _Run(ts)
        query.runs[ts] = run
        self._refresh_jobs.put((query, run))

    def _refresh_worker(self) -> None:
        """A refresh thread (daemon: a stopped server never waits for it)."""
        while (job := self._refresh_jobs.get()) is not None:
            self._refresh_in_thread(*job)

    def _refresh_in_thread(self, query: LiveQuery, run: _Run) -> None:
        result: LiveResult | None = None
        error: BaseException | None = None
        try:
            result = self._execute(query, run.ts)
        except BaseException as exc:  # handed to the loop, which tells the holders
            error = exc
        try:
            refreshed = self._refreshed
            anyio.from_thread.run_sync(refreshed, query, run, result, error, token=query.token)
        except Exception:  # the loop has finished: nobody is left to tell
            if result is not None and result.watch is not None:
                result.watch.close()

    def _refreshed(
        self, query: LiveQuery, run: _Run, result: LiveResult | None, error: BaseException | None
    ) -> None:
        """Event loop: adopt a refresh (which tells the holders), or tell them it failed."""
        query.runs.pop(run.ts, None)
        run.result, run.error = result, error
        run.done.set()
        if result is None:
            logger.warning("refreshing %s failed: %r", query.udf_path, error)
            query.notify()  # each holder runs it itself and meets the failure
            return
        self._adopt(query, result)

    # -- waiting for the executor -------------------------------------------------

    async def wait_processed(self, ts: int) -> None:
        """Until every commit up to ``ts`` has been matched against the watches.

        One waiter at a time blocks a worker thread until ``processed_ts`` moves
        at all; every other waiter sleeps on an event that is set when it moves,
        so a commit costs one thread hop however many sockets wait for it.
        """
        executor = self._executor
        if executor.processed_ts() >= ts:
            return
        with anyio.fail_after(PROCESSED_WAIT_TIMEOUT_S):
            while (seen := executor.processed_ts()) < ts:
                moved = self._processed_moved
                if moved is not None:
                    await moved.wait()
                    continue
                self._processed_moved = moved = anyio.Event()
                try:
                    await anyio.to_thread.run_sync(
                        executor.wait_processed,
                        seen + 1,
                        _WAIT_SLICE_S,
                        abandon_on_cancel=True,
                    )
                finally:
                    self._processed_moved = None
                    moved.set()

    # -- housekeeping -----------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        return {
            "live_queries": len({id(q) for q in self._queries.values()}),
            "subscriptions": self._subscriptions,
            "executions": self._executions,
            "served_without_running": self._served,
        }

    def close(self) -> None:
        for _ in self._refresh_threads:
            self._refresh_jobs.put(None)
        self._refresh_threads = []
        for query in list(self._queries.values()):
            if query.current is not None:
                self._retire(query, query.current, notify=False)
                query.current = None
        self._queries.clear()
        self._subscriptions = 0
