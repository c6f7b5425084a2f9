"""The embedded facade: ``Database.open(path)`` and the read/write entry points.

This module wires the engine together: the LMDB environment, the log, the
stored projections (caught up on open: recovery is replay), the catalog, the
committer and the live subscriptions. Everything it does is also what the
function runtime and the gateway use, one level down (``begin``/``commit``).

Exactly one process commits to a data folder: a writable ``Database`` holds
the folder's lock (``log.folder_lock``) from open to close, and refuses to
open while another process holds it. ``read_only=True`` opens beside that
writer without the lock: no catch-up, no genesis, search indexes opened
without a tantivy writer, every commit refused; its committer thread only
follows the log.

``cluster=ClusterNode(store)`` makes the folder a node's cache of a shared
store (``engine.cluster_cache``): opening catches up from the store's log,
starts the node's lease thread, and commits go through the leader
(``engine.cluster``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.catalog import Catalog
from engine.cluster import ClusterNode
from engine.cluster_cache import prepare_cache, snapshot_cache
from engine.committer import Committer, wall_clock_ns
from engine.errors import ConflictError, DataFolderBusyError, TooManyConflictsError
from engine.limits import LIMITS, Limits
from engine.occ_retry import ContentionGate, attempts
from engine.pending_commit import PendingCommit
from engine.read_set import ReadSet
from engine.results import MutationResult, QueryResult
from engine.retention import CompactionReport, compact
from engine.schema import Schema, parse_schema
from engine.schema_apply import apply_schema, schema_text
from engine.search import VECTOR_RESULTS_DEFAULT, VectorFilterBuilder
from engine.search import vector_search as search_vectors
from engine.snapshot import SchemaCache, Snapshot
from engine.subscription_manager import Subscription, SubscriptionManager
from engine.system_tables import SCHEMA_DOC_ID, SCHEMAS_TABLE, SYSTEM_TABLE_NUMBERS, TABLES_TABLE
from engine.transaction import Transaction
from log.entry import Write
from log.folder_lock import FolderLock, read_holder
from log.lmdb_store import LmdbLog, open_environment
from log.shared_store import StoreUnavailableError
from projections.runner import ProjectionRunner, ReplayReport
from projections.search_indexes import SearchIndexes


class Database:
    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], int] = wall_clock_ns,
        random_bytes: Callable[[int], bytes] = os.urandom,
        limits: Limits = LIMITS,
        retention_ns: int | None = None,
        read_only: bool = False,
        cluster: ClusterNode | None = None,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.cluster = cluster
        self.cache_state = ""
        # The writer lock first: nothing may touch the folder's storage for writing without it.
        self._folder_lock = None if read_only else FolderLock.acquire(path)
        try:
            if cluster is not None:
                self.cache_state = prepare_cache(path, cluster.store)
            self._open(clock, random_bytes, limits, retention_ns)
        except BaseException:
            if self._folder_lock is not None:
                self._folder_lock.release()
            raise

    def _open(
        self,
        clock: Callable[[], int],
        random_bytes: Callable[[int], bytes],
        limits: Limits,
        retention_ns: int | None,
    ) -> None:
        # How far back point-in-time reads go; None keeps all history (the default).
        self.retention_ns = retention_ns
        self.limits = limits
        self._clock = clock
        self._random_bytes = random_bytes
        self._commit_listeners: list[Callable[[list[Any]], None]] = []
        self._env = open_environment(self.path)
        self._log = LmdbLog(self._env)
        self._runner = ProjectionRunner(self._env, self._log)
        # A read-only opener trusts the writer beside it to keep the projections caught up.
        self.recovery: ReplayReport = (
            ReplayReport(0, 0.0) if self.read_only else self._runner.catch_up()
        )
        self._open_search_indexes()  # search section below
        self._schemas = SchemaCache()
        self.contention = ContentionGate()
        self._catalog = Catalog()
        self._load_catalog()
        self._committer = Committer(
            self._env,
            self._log,
            self._runner,
            self._catalog,
            clock=clock,
            limits=limits,
            on_committed=self._on_committed,
            read_only=self._read_only_reason() if self.read_only else None,
            cluster=self.cluster,
        )
        self._subscriptions = SubscriptionManager(
            self._committer.write_log, self._committer.last_ts
        )
        if self.cluster is not None:
            self._join_cluster()
        elif self._log.latest_ts() is None and not self.read_only:
            self._write_genesis()
        self._closed = False
        self._stop_compaction = threading.Event()
        if retention_ns is not None and not self.read_only:
            threading.Thread(
                target=self._compact_periodically, name="headwater-retention", daemon=True
            ).start()

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> Database:
        """Create or open the database in folder ``path``, replaying the log as needed."""
        return cls(os.fspath(path), **options)

    @classmethod
    def open_reader(cls, path: str | os.PathLike[str], **options: Any) -> Database:
        """For a process that only reads: the folder's writer when the folder is free
        (caught up as ``open`` does), else read-only beside the process that writes it."""
        try:
            return cls.open(path, **options)
        except DataFolderBusyError:
            return cls.open(path, read_only=True, **options)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_compaction.set()
        if self.cluster is not None:
            self.cluster.close()
        self._committer.close()
        self._search.close()
        self._subscriptions.close()
        self._env.close()
        if self._folder_lock is not None:
            self._folder_lock.release()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the embedded API --------------------------------------------------------

    def mutate(self, fn: Callable[..., Any], *args: Any) -> MutationResult:
        """Run ``fn(tx, *args)`` read-write with OCC retries; returns value and commit ts."""
        for attempt in attempts(self.limits):
            if attempt.pause_s:
                time.sleep(attempt.pause_s)
            with self.contention.attempt(attempt.exclusive):
                tx = self.begin(writable=True)
                try:
                    value = fn(tx, *args)
                    pending = tx.pending_commit()
                finally:
                    tx.close()
                if not pending.writes:
                    return MutationResult(value, pending.snapshot_ts)
                try:
                    return MutationResult(value, self._committer.commit(pending))
                except ConflictError:
                    continue
        raise TooManyConflictsError(
            f"The mutation conflicted with concurrent commits {self.limits.occ_retries_max + 1} "
            f"times in a row; it was not applied. Reduce contention on the documents it reads."
        )

    def query(self, fn: Callable[..., Any], *args: Any, ts: int | None = None) -> QueryResult:
        """Run ``fn(tx, *args)`` read-only at the newest ts, or at ``ts`` (point in time)."""
        tx = self.begin(writable=False, ts=ts)
        try:
            value = fn(tx, *args)
            return QueryResult(value, tx.snapshot_ts, tx.read_set)
        finally:
            tx.close()

    def subscribe(
        self, fn: Callable[..., Any], *args: Any, on_change: Callable[[QueryResult], None]
    ) -> Subscription:
        """Run the query now (``.result``) and re-run it after every commit that touches it."""
        return self._subscriptions.subscribe(lambda ts: self.query(fn, *args, ts=ts), on_change)

    def set_schema(self, schema_json: str | dict) -> MutationResult:
        """Make a schema active: a committed log entry; new indexes are backfilled."""
        schema = parse_schema(schema_json)
        return self.mutate(apply_schema, schema)

    # -- one level down: for the function runtime and the gateway ---------------

    def begin(
        self, *, writable: bool, ts: int | None = None, limits: Limits | None = None
    ) -> Transaction:
        """A transaction at the newest ts (or ``ts``); ``limits`` overrides the per-call ones."""
        snapshot = Snapshot(self._runner, self._schemas, ts)
        return Transaction(
            snapshot,
            self._catalog,
            writable=writable,
            begin_ns=self._clock(),
            random_bytes=self._random_bytes,
            limits=self.limits if limits is None else limits,
        )

    def commit(self, tx: Transaction) -> int:
        """Commit a transaction begun with ``begin``; raises ConflictError on a conflict."""
        pending = tx.pending_commit()
        tx.close()
        if not pending.writes:
            return pending.snapshot_ts
        return self._committer.commit(pending)

    def table_name(self, number: int) -> str | None:
        """The name of the table with this number (tables are never renamed)."""
        return self._catalog.name_of(number)

    def table_numbers(self) -> dict[str, int]:
        """Every table's number, system tables included (for ``db.normalizeId`` in V8)."""
        return self._catalog.all_tables()

    def latest_ts(self) -> int:
        if self.read_only:  # the writer is elsewhere: the log knows best
            return self._log.latest_ts() or 0
        return self._committer.last_ts

    def publish_url(self, url: str) -> None:
        """Tell processes beside this writer where it serves (``headwater run`` sends
        its writes there)."""
        if self._folder_lock is not None:
            self._folder_lock.set_url(url)

    def first_ts(self) -> int | None:
        """The oldest ts a point-in-time read may use (start of the retained history)."""
        return self._runner.first_ts()

    def _compact_periodically(self) -> None:
        while not self._stop_compaction.wait(self.limits.retention_compact_interval_s):
            try:
                self.compact_history()
            except Exception:  # keep serving; the next round tries again
                logging.getLogger("headwater.retention").exception("compaction failed")

    def compact_history(self) -> CompactionReport | None:
        """Apply the retention window now: drop versions no retained read can see."""
        if self.retention_ns is None:
            return None
        floor = self.latest_ts() - self.retention_ns
        first = self._runner.first_ts()
        if first is None or floor <= first:
            return None
        return compact(
            self._env,
            self._runner.meta_db,
            self._runner.documents.history_db,
            self._runner.btree.history_db,
            floor,
        )

    def watch(self, read_set: Any, since_ts: int, on_invalidated: Callable[[int], None]) -> Any:
        """One-shot: ``on_invalidated(ts)`` for the first commit after ``since_ts`` that
        touches ``read_set`` (how the gateway learns a live query must re-run)."""
        return self._subscriptions.watch(read_set, since_ts, on_invalidated)

    @property
    def processed_ts(self) -> int:
        """Every commit up to this ts has been matched against live read sets."""
        return self._subscriptions.processed_ts

    def wait_processed(self, ts: int, timeout_s: float = 10.0) -> bool:
        return self._subscriptions.wait_processed(ts, timeout_s)

    def wait_for_subscriptions(self, timeout_s: float = 10.0) -> None:
        """Block until every commit so far has been matched and its re-runs delivered."""
        self._subscriptions.wait_idle(timeout_s)

    @property
    def committer(self) -> Committer:
        return self._committer

    def statistics(self) -> dict[str, Any]:
        return {
            "committer": self._committer.statistics(),
            "projections": self._runner.statistics(),
            "subscriptions": self._subscriptions.statistics(),
            "log": self._log.statistics(),
        }

    # -- internals ---------------------------------------------------------------

    def add_commit_listener(self, listener: Callable[[list[Any]], None]) -> None:
        """Call ``listener(entries)`` with every durable batch of log entries, in ts order,
        on the committer's thread (keep it short: the scheduler queues and returns)."""
        self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: Callable[[list[Any]], None]) -> None:
        if listener in self._commit_listeners:
            self._commit_listeners.remove(listener)

    def _on_committed(self, committed: list[Any]) -> None:
        entries = [c.entry for c in committed]
        self._search.submit(entries)
        self._subscriptions.on_committed(committed)
        for listener in list(self._commit_listeners):
            listener(entries)

    def _read_only_reason(self) -> str:
        holder = read_holder(self.path)
        who = "another process" if holder.pid is None else f"process {holder.pid}"
        return (
            f"The data folder {self.path} is open read-only here: {who} writes to it; "
            "send writes through that process."
        )

    def _load_catalog(self) -> None:
        with self._env.begin() as txn:
            number = SYSTEM_TABLE_NUMBERS[TABLES_TABLE]
            docs = [doc for _, doc in self._runner.documents.iter_table_latest(txn, number)]
        self._catalog.observe(docs)

    def snapshot_cache(self, target: str) -> int | None:
        """Copy this node's cache to ``target`` while it runs (see ``cluster_cache``)."""
        return snapshot_cache(self.path, target, env=self._env)

    def _join_cluster(self) -> None:
        """Catch up from the store, take part in the lease, and see the log started."""
        assert self.cluster is not None
        self._committer.sync_with_store()
        self.cluster.start(lambda: self._committer.last_ts)
        deadline = time.monotonic() + self.limits.cluster_commit_wait_ms / 1000
        while self.cluster.store.latest_ts() is None:  # a new deployment: the leader starts it
            if self.cluster.lease_token() is not None:
                self._write_genesis()
                break
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"The store {self.cluster.store.describe()} is empty and no node started it"
                )
            time.sleep(0.05)
        self._committer.sync_with_store()

    def _write_genesis(self) -> None:
        """The first entry: the empty schema. It starts the retained history."""
        text = schema_text(Schema.empty())
        now_ms = self._clock() / 1e6
        doc = {"_id": SCHEMA_DOC_ID, "_creationTime": now_ms, "json": text}
        self._committer.commit(
            PendingCommit(0, ReadSet.empty(), (Write(SCHEMA_DOC_ID, SCHEMAS_TABLE, None, doc),))
        )

    # -- search: text and vector indexes (engine.search, projections.search_indexes) --

    def _open_search_indexes(self) -> None:
        """Open ``<path>/search/``, replaying what each index missed (called by ``__init__``)."""
        self._search = SearchIndexes(
            os.path.join(self.path, "search"),
            self._env,
            self._log,
            self._runner.documents,
            read_only=self.read_only,
        )
        self._runner.search_indexes = self._search
        self._search.open()

    def vector_search(
        self,
        table: str,
        index: str,
        vector: list[float],
        limit: int | None = VECTOR_RESULTS_DEFAULT,
        filter: Any = None,
    ) -> list[tuple[str, float]]:
        """``[(id, _score)]`` most similar first (cosine similarity), at the newest ts.

        ``filter``: None, ``lambda q: q.or_(q.eq("genre", "a"), q.eq("genre", "b"))``, or
        the filter-expression JSON of the ``vectorSearch`` syscall (``$eq`` / ``$or``).
        """
        if callable(filter):
            filter = filter(VectorFilterBuilder())
        snapshot = Snapshot(self._runner, self._schemas)
        try:
            number = self._catalog.number_of(table)
            return search_vectors(snapshot, number, table, index, vector, limit, filter)
        finally:
            snapshot.close()

    def wait_for_search_indexes(self, timeout_s: float = 10.0) -> bool:
        """Block until every search and vector index is backfilled and caught up to now."""
        return self._search.wait_caught_up(self.latest_ts(), timeout_s)

    def search_statistics(self) -> dict[str, Any]:
        return self._search.statistics()


# -- Export access (issue 6: snapshot, streaming and Kafka export) -------------
# LMDB allows one open environment per data folder per process, so exporters
# running in this process borrow the Database's handles instead of opening
# their own. They only read: the committer stays the one writer.


def storage_handles(db: Database) -> tuple[Any, LmdbLog]:
    """(LMDB environment, log) of an open ``Database``, for readers in this process."""
    return db._env, db._log
