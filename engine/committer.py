"""The single writer: validates transactions (OCC), orders them, makes them durable.

Transactions hand their snapshot ts, read set and writes to ``commit``, which
blocks until the commit is durable. One thread takes every commit waiting in
the queue (group commit), validates each in order against the write log —
including the ones accepted earlier in the same batch — assigns strictly
increasing timestamps, appends the log entries and applies the stored
projections inside ONE LMDB write transaction, and fsyncs once for the whole
batch. Only then are the callers released and the live projections fed.

Following: the log may hold entries this committer did not write (another
process that bypassed the data folder's lock today, other nodes tomorrow).
Before validating a batch, inside the same LMDB write transaction (so no
other writer can slip in between), and every ``log_follow_interval_ms`` while
idle, the committer reads the entries after its own last ts, derives what
they wrote (``ProjectionRunner.written_by``: their projections are already
applied) and treats them as commits: the write log (OCC), the catalog, and
the ``on_committed`` hook (live queries, search indexes), in ts order.

A read-only committer (a process beside the folder's writer) commits nothing
and only follows.

Cluster mode (``cluster`` given, ``engine.cluster``): the shared store's log is
the truth and the local LMDB log is its mirror. Following reads the store: its
entries after our last ts are appended to the mirror AND applied to the
projections, in local write transactions of ``cluster_catch_up_batch_entries``.
A watcher thread waits on the store (LISTEN/NOTIFY or polling) and wakes the
committer. On the leader, each batch first catches up, then is validated,
appended to the store with the lease's fencing token and, only then, committed
locally; any other node forwards its commits (``ClusterNode.route_commit``).

Named pause points let race tests hold the committer at a chosen step.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from engine.catalog import Catalog
from engine.commit_ts import resolve_writes
from engine.errors import ConflictError, HeadwaterError, ReadOnlyError
from engine.limits import LIMITS, Limits
from engine.pending_commit import PendingCommit
from engine.write_log import WriteLog, Written
from log.entry import LogEntry
from log.lmdb_store import LmdbLog
from log.shared_store import FencedError
from projections.runner import ProjectionRunner

PAUSE_BEFORE_VALIDATE = "before_validate"
PAUSE_BEFORE_DURABLE = "before_durable"
PAUSE_AFTER_DURABLE = "after_durable"

_STOP = object()
# How long the store watcher waits for new entries before looking whether to stop:
# a close waits for it, so short; a wake-up without news costs one idle check.
_WATCH_WAIT_S = 0.25
_FOLLOW = object()  # queue item: catch up from the shared store now
logger = logging.getLogger("headwater.committer")


@dataclass(frozen=True)
class CommittedEntry:
    entry: LogEntry
    written: Sequence[Written]  # B-tree keys and search-index versions


def wall_clock_ns() -> int:
    return time.time_ns()


class Committer:
    def __init__(
        self,
        env: Any,
        log: LmdbLog,
        runner: ProjectionRunner,
        catalog: Catalog,
        *,
        clock: Callable[[], int] = wall_clock_ns,
        limits: Limits = LIMITS,
        on_committed: Callable[[list[CommittedEntry]], None] = lambda _: None,
        read_only: str | None = None,
        cluster: Any = None,
    ) -> None:
        """``read_only``: None for the folder's writer, else why this process may not commit.
        ``cluster``: an ``engine.cluster.ClusterNode`` when a shared store holds the log."""
        self._env = env
        self._log = log
        self._runner = runner
        self._catalog = catalog
        self._clock = clock
        self._limits = limits
        self._on_committed = on_committed
        self._read_only = read_only
        self._last_ts = log.latest_ts() or 0
        self.write_log = WriteLog(self._last_ts, limits.write_log_entries_max)
        self.pause_points: dict[str, Callable[[], None]] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._batches = 0
        self._commits = 0
        self._conflicts = 0
        self._followed = 0
        # Receipts of the forwarded commits this node committed, newest last (bounded):
        # a forward sent again after its answer was lost gets the first one's ts.
        self._receipts: OrderedDict[bytes, int] = OrderedDict()
        self._cluster = cluster
        self._applied = threading.Condition()
        self._visible_ts = self._last_ts  # committed in LMDB: what readers see
        self._caught_up_token: int | None = None  # lease token we last caught up under
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headwater-committer", daemon=True)
        self._thread.start()
        self._watcher: threading.Thread | None = None
        if cluster is not None:
            self._watcher = threading.Thread(
                target=self._watch_store, name="headwater-store-watch", daemon=True
            )
            self._watcher.start()

    @property
    def last_ts(self) -> int:
        return self._last_ts

    def next_ts(self) -> int:
        """The timestamp oracle: wall-clock ns, bumped by one when the clock has not moved."""
        return max(self._clock(), self._last_ts + 1)

    def commit(self, pending: PendingCommit) -> int:
        """Validate and durably commit; returns the commit ts or raises ConflictError."""
        self._check_writable()
        if self._cluster is not None:
            try:
                return self._cluster.route_commit(
                    pending, self._commit_here, self.wait_applied, self._find_landed
                )
            except ConflictError:
                # The conflicting commit may be one this node has not applied yet: take
                # it in before the caller retries, or every retry would conflict again.
                self.sync_with_store(10.0)
                raise
        return self._commit_here(pending)

    def commit_forwarded(self, pending: PendingCommit) -> int:
        """A commit another node sent: ours to order while we lead, else ``FencedError``."""
        self._check_writable()
        self._lead_token()
        return self._commit_here(pending)

    def _commit_here(self, pending: PendingCommit) -> int:
        future: Future[int] = Future()
        self._queue.put((pending, future))
        return future.result()

    def commit_entries(self, writes_batches: Sequence[PendingCommit]) -> list[int]:
        """Commit several transactions in order (used by bulk import); same rules."""
        self._check_writable()
        futures = []
        for pending in writes_batches:
            future: Future[int] = Future()
            self._queue.put((pending, future))
            futures.append(future)
        return [f.result() for f in futures]

    def close(self) -> None:
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join()
        if self._watcher is not None:
            self._watcher.join(5.0)  # it waits on the store at most _WATCH_WAIT_S

    def wait_applied(self, ts: int, timeout_s: float = 10.0) -> bool:
        """Block until this node has applied every commit up to ``ts`` (cluster mode:
        asks for a catch-up first, so a forwarded commit is visible when this returns)."""
        if self._visible_ts >= ts:
            return True
        if self._cluster is not None:
            self._queue.put((_FOLLOW, None))
        with self._applied:
            return self._applied.wait_for(lambda: self._visible_ts >= ts, timeout_s)

    def sync_with_store(self, timeout_s: float | None = None) -> int:
        """Catch up with the shared store now (on the committer thread); our last ts."""
        future: Future[int] = Future()
        self._queue.put((_FOLLOW, future))
        return future.result(timeout_s)

    def statistics(self) -> dict[str, int]:
        return {
            "commits": self._commits,
            "batches": self._batches,
            "conflicts": self._conflicts,
            "followed": self._followed,
            "last_ts": self._last_ts,
            "write_log_entries": len(self.write_log),
        }

    # -- the committer thread -------------------------------------------------

    def _pause(self, name: str) -> None:
        hook = self.pause_points.get(name)
        if hook is not None:
            hook()

    def _run(self) -> None:
        stopping = False
        follow_s = self._limits.log_follow_interval_ms / 1000
        while not stopping:
            try:
                item = self._queue.get(timeout=follow_s)
            except queue.Empty:
                self._follow_idle()
                continue
            if item is _STOP:
                return
            if item[0] is _FOLLOW:
                self._follow_requested(item[1])
                continue
            batch = [item]
            while len(batch) < self._limits.group_commit_batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                if nxt[0] is _FOLLOW:
                    self._follow_requested(nxt[1])
                    continue
                batch.append(nxt)
            self._process(batch)

    def _process(self, batch: list[tuple[PendingCommit, Future[int]]]) -> None:
        self._pause(PAUSE_BEFORE_VALIDATE)
        accepted: list[tuple[Future[int], CommittedEntry]] = []
        receipts: list[bytes | None] = []
        foreign: list[CommittedEntry] = []
        token = None
        if self._cluster is not None:
            try:
                token = self._lead_token()
                if token != self._caught_up_token:
                    # Once caught up under our token no other node can append, so
                    # later batches skip the store read.
                    self._catch_up_store()  # delivers what it applied itself
                    self._caught_up_token = token
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(_as_commit_error(exc))
                return
        start_ts = self._last_ts
        try:
            with self._env.begin(write=True) as txn:
                if self._cluster is None:
                    foreign = self._follow_in(txn)
                start_ts = self._last_ts
                for pending, future in batch:
                    landed = self._receipts.get(pending.receipt) if pending.receipt else None
                    if landed is not None:
                        future.set_result(landed)  # sent again after a lost answer
                        continue
                    conflict = self.write_log.find_conflict(pending.read_set, pending.snapshot_ts)
                    if conflict is not None:
                        self._conflicts += 1
                        future.set_exception(_conflict_error(conflict))
                        continue
                    ts = self.next_ts()
                    writes = resolve_writes(pending.writes, pending.commit_ts_paths, ts)
                    entry = LogEntry(ts, writes)
                    self._log.append_in(txn, [entry])
                    written = self._runner.apply_in(txn, entry)
                    self._last_ts = ts
                    self.write_log.append(ts, written)
                    accepted.append((future, CommittedEntry(entry, written)))
                    receipts.append(pending.receipt)
                if token is not None and accepted:
                    # The store first: once it holds the entries they are the truth,
                    # and a crash before the local commit is repaired by catching up.
                    self._cluster.store.append_fenced(
                        [c.entry for _, c in accepted], token, receipts
                    )
                self._pause(PAUSE_BEFORE_DURABLE)
        except BaseException as exc:
            self._caught_up_token = None  # an append whose outcome is unknown: look again
            self._last_ts = start_ts
            self.write_log.truncate_after(start_ts)
            self._runner.abort()
            error = _as_commit_error(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if foreign:
                self._on_committed(foreign)
            return
        self._batches += 1
        self._commits += len(accepted)
        committed = [c for _, c in accepted]
        self._remember_receipts(committed, receipts)
        self._pause(PAUSE_AFTER_DURABLE)  # readers see the commit; the catalog not yet
        for c in committed:
            self._catalog.observe_entry(c.entry)
        for future, c in accepted:
            future.set_result(c.entry.ts)
        self._notify_applied()
        if foreign or committed:
            self._on_committed(foreign + committed)

    # -- following entries other processes wrote ----------------------------------

    def _check_writable(self) -> None:
        if self._read_only is not None:
            raise ReadOnlyError(self._read_only)

    def _follow_idle(self) -> None:
        if self._cluster is not None:
            self._follow_requested(None)
            return
        try:
            with self._env.begin() as txn:
                foreign = self._follow_in(txn)
        except Exception:  # the next round tries again; a commit follows first anyway
            logger.exception("following the log failed")
            return
        if foreign:
            self._on_committed(foreign)

    def _follow_in(self, txn: Any) -> list[CommittedEntry]:
        """Take in the entries after our last ts (another writer's), in ts order."""
        latest = self._log.latest_ts(txn)
        if latest is None or latest <= self._last_ts:
            return []
        found = []
        for entry in self._log.read_range(self._last_ts + 1, latest, txn):
            written = self._runner.written_by(txn, entry)
            self._last_ts = entry.ts
            self.write_log.append(entry.ts, written)
            self._catalog.observe_entry(entry)
            found.append(CommittedEntry(entry, written))
        self._followed += len(found)
        return found

    # -- cluster mode: the shared store's log is the truth ------------------------------

    def _lead_token(self) -> int:
        if self._cluster is None:
            raise FencedError("This node serves no cluster; it takes no forwarded commits")
        token = self._cluster.lease_token()
        if token is None:
            raise FencedError("This node does not lead the deployment now; commit elsewhere")
        return token

    def _follow_requested(self, future: Future[int] | None) -> None:
        try:
            self._catch_up_store()
        except Exception as exc:
            logger.warning("catching up from the shared store failed: %s", exc)
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(self._last_ts)

    def _catch_up_store(self) -> None:
        """Mirror and apply the store's entries after our last ts (the committer thread)."""
        store = self._cluster.store
        latest = store.latest_ts()
        while latest is not None and latest > self._last_ts:
            start_ts = self._last_ts
            found: list[CommittedEntry] = []
            try:
                with self._env.begin(write=True) as txn:
                    for entry in store.read_range(start_ts + 1, latest):
                        self._log.append_in(txn, [entry])
                        written = self._runner.apply_in(txn, entry)
                        self._last_ts = entry.ts
                        self.write_log.append(entry.ts, written)
                        found.append(CommittedEntry(entry, written))
                        if len(found) >= self._limits.cluster_catch_up_batch_entries:
                            break
            except BaseException:
                self._last_ts = start_ts
                self.write_log.truncate_after(start_ts)
                self._runner.abort()
                raise
            if not found:
                return
            for c in found:
                self._catalog.observe_entry(c.entry)
            self._followed += len(found)
            self._notify_applied()
            self._on_committed(found)

    def _watch_store(self) -> None:
        """Wake the committer as soon as the store holds entries we have not applied."""
        store = self._cluster.store
        while not self._closing.is_set():
            try:
                if not store.wait_for_entries(self._last_ts, _WATCH_WAIT_S):
                    continue
            except Exception as exc:
                if self._closing.is_set():
                    return
                logger.warning("watching the shared store failed: %s", exc)
                self._closing.wait(0.5)
                continue
            done: Future[int] = Future()
            self._queue.put((_FOLLOW, done))
            while not self._closing.is_set():  # one catch-up at a time, never past close
                try:
                    done.result(0.5)
                    break
                except TimeoutError:
                    continue
                except Exception:  # logged where it failed; the next wake tries again
                    self._closing.wait(0.5)
                    break

    def _notify_applied(self) -> None:
        """After a local commit: readers see everything up to our last ts now."""
        with self._applied:
            self._visible_ts = self._last_ts
            self._applied.notify_all()

    def _remember_receipts(
        self, committed: list[CommittedEntry], receipts: list[bytes | None]
    ) -> None:
        for c, receipt in zip(committed, receipts, strict=True):
            if receipt is not None:
                self._receipts[receipt] = c.entry.ts
        while len(self._receipts) > self._limits.cluster_receipts_remembered:
            self._receipts.popitem(last=False)

    def _find_landed(self, pending: PendingCommit) -> int | None:
        """After an unanswered forward: the ts of the entry stored with ``pending``'s
        receipt, None when the log has none. (Never the entry's contents: another
        commit can write the same values over the same versions.)"""
        assert pending.receipt is not None
        return self._cluster.store.find_receipt(pending.receipt)


def _as_commit_error(exc: BaseException) -> BaseException:
    if isinstance(exc, HeadwaterError):
        return exc
    return HeadwaterError(f"Commit failed: {exc}", code="CommitFailed")


def _conflict_error(conflict: Any) -> ConflictError:
    if conflict.key is None:
        return ConflictError(
            "The transaction's snapshot is older than the commits held for validation; retry."
        )
    return ConflictError(
        f"Documents read from or written to the index {conflict.index_id} changed while this "
        f"transaction was being run and on every subsequent retry (commit at ts {conflict.ts})."
    )
