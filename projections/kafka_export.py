"""Kafka export: every committed write to a user table, produced once, in commit order.

Messages, one per written document. Key: the document id (its versions share a
partition, so they stay in order). Value: the document as convex encoded JSON
text, null for a delete (compacted topics then forget it); with
``envelope="debezium"``, ``{"before", "after", "op", "ts_ms", "source"}``, a
delete being op "d" without a separate tombstone. Headers (ASCII decimal):

    ts            commit ts of the transaction (int64 ns)
    table         the document's table, as its component names it (UTF-8)
    component     the table's component path (UTF-8; "" for the app's tables)
    index, count  the write's position among the transaction's exported writes, and their number
    confirmed_ts  every transaction up to this ts was in the topic when this was sent
    offset        the partition offset this message was sent for

Topics: one (``topic``), or with ``topic_per_table`` one per table:
``<topic>.<table>`` for the app's, ``<topic>.<component path, "/" as ".">.<table>``
for a component's (``headwater.limiter.rateLimits``); names have no dots, so no
two tables share one. The partition is murmur2(key) modulo the partition count,
as in the Java client. Missing topics are created; an existing one is used as it is.

Exactly once. The exporter is its topics' only producer. It sends chunks of
at most ``chunk_bytes_max``, appended while the producer lingers and flushed
at once, so a chunk reaches each partition as ONE record batch, appended
whole; the next chunk waits for every acknowledgement. Each partition thus
holds a prefix of what was sent to it. On start and after any failure the
exporter reads each partition's last message (the end from a fetch's
high-water mark: tansu 0.6 answers ListOffsets with 1): the largest
``confirmed_ts`` says where to replay the log from, and each partition's last
(ts, index) which messages to skip. Nothing is lost or doubled, whenever the
exporter process dies.

Caveats. Client retries are off; a failed chunk is re-planned from the topic.
An unexpected offset means the broker lost acknowledged messages (tansu's
memory storage across a restart): a topic that is gone is produced again from
the start, once; a chunk that already landed in a new incarnation stops the
exporter with an error asking to delete the topic. A request that timed out
but is appended later by a slow broker would double a chunk. Adding
partitions moves keys: do it while the exporter is stopped and caught up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from log.entry import LogEntry, Write
from log.lmdb_store import LmdbLog, open_environment
from projections.documents import DocumentStore, storage_key_of
from projections.kafka_messages import (
    ENVELOPE_DEBEZIUM,
    ExportMessage,
    KafkaExportConfig,
    KafkaExportError,
    messages_of,
    partition_of,
)
from projections.kafka_resume import ResumePoint, read_resume_point

_CHUNK_ENTRIES_MAX = 10_000
_LOG = logging.getLogger("headwater.kafka_export")


class _Session:
    """Kafka clients for one connected stretch; any failure ends the session."""

    def __init__(self, config: KafkaExportConfig) -> None:
        self.config = config
        timeout = config.request_timeout_ms
        # No auto-creation: a broker that lost the topic must fail the send, so the
        # exporter re-plans from what the topic holds instead of writing into a new one.
        common: dict[str, Any] = {
            "bootstrap_servers": config.bootstrap_servers,
            "allow_auto_create_topics": False,
        }
        self.admin: Any = None
        self.producer: Any = None
        self.consumer: Any = None
        try:
            # A broker that does not answer within the request timeout is reported as
            # unreachable (the client would otherwise wait 30 s before saying so).
            self.admin = KafkaAdminClient(
                bootstrap_servers=config.bootstrap_servers,
                request_timeout_ms=timeout,
                bootstrap_timeout_ms=timeout,
            )
            # Batches leave only on flush (linger outlasts appending one chunk), so a
            # chunk reaches each partition as one record batch.
            linger_ms = min(1000, timeout)
            self.producer = KafkaProducer(
                **common,
                acks="all",
                retries=0,
                linger_ms=linger_ms,
                batch_size=4 * config.chunk_bytes_max,
                max_request_size=64 << 20,
                max_in_flight_requests_per_connection=1,
                request_timeout_ms=timeout,
                delivery_timeout_ms=linger_ms + timeout,
                max_block_ms=timeout,
                # Once its connection drops, the producer waits out every pending batch
                # before reconnecting: a batch never reaches a broker that restarted
                # empty (tansu would create the topic anew and take it).
                reconnect_backoff_ms=linger_ms + 2 * timeout,
                reconnect_backoff_max_ms=linger_ms + 2 * timeout,
            )
            self.consumer = KafkaConsumer(
                **common,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=10,
                max_partition_fetch_bytes=1 << 16,
            )
        except BaseException:
            self.close()
            raise
        self.flush_timeout_s = (2 * linger_ms + timeout) / 1000 + 5
        self._partitions: dict[str, int] = {}

    def existing_topics(self) -> dict[str, int]:
        """Our topics that exist (creating the single topic if missing), with partition counts."""
        if not self.config.topic_per_table:
            return {self.config.topic: self.partitions(self.config.topic)}
        prefix = self.config.topic + "."
        names = [t for t in self.admin.list_topics() if t.startswith(prefix)]
        return {t: self.partitions(t) for t in names}

    def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            self._ensure_topic(topic)
            found = self.producer.partitions_for(topic)
            if not found:
                raise KafkaExportError(f"Kafka export: topic {topic} has no partitions yet.")
            count = self._partitions[topic] = len(found)
        return count

    def _ensure_topic(self, topic: str) -> None:
        if topic in set(self.admin.list_topics()):
            return
        new = NewTopic(topic, self.config.partitions, self.config.replication_factor)
        try:
            self.admin.create_topics([new])
        except TopicAlreadyExistsError:
            pass

    def send(
        self,
        messages: Sequence[tuple[ExportMessage, int]],
        confirmed_ts: int,
        ends: dict[tuple[str, int], int],
    ) -> None:
        """Produce one chunk and return once every message is acknowledged (else raise).

        Each acknowledged offset must be the partition's next one (``ends``, moved
        along): anything else means the topic changed under us, e.g. a broker that
        lost it on restart, and the exporter must re-plan from what it now holds.
        """
        sent = []
        next_offsets = dict(ends)
        for m, partition in messages:
            offset = next_offsets.get((m.topic, partition), 0)
            next_offsets[(m.topic, partition)] = offset + 1
            future = self.producer.send(
                m.topic,
                key=m.key,
                value=m.value,
                partition=partition,
                headers=m.headers(confirmed_ts, offset),
                timestamp_ms=m.ts // 1_000_000,
            )
            sent.append((future, offset))
        self.producer.flush(timeout=self.flush_timeout_s)
        for future, offset in sent:
            meta = future.get(timeout=0)
            if meta.offset != offset:
                raise KafkaExportError(
                    f"Kafka export: {meta.topic} partition {meta.partition} stored a message at "
                    f"offset {meta.offset}, sent for offset {offset}: the topic changed under "
                    "the exporter."
                )
        ends.update(next_offsets)

    def close(self) -> None:
        for client in (self.consumer, self.producer, self.admin):
            if client is None:
                continue
            try:
                client.close(timeout=0) if client is self.producer else client.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken client must not mask the cause
                _LOG.debug("closing a Kafka client failed: %s", exc)


@dataclass
class _Chunk:
    messages: list[tuple[ExportMessage, int]]
    done_ts: int | None  # the last entry this chunk finishes
    entries_done: int
    next_position: tuple[int, int]  # (ts, index) where the next chunk starts


class KafkaExporter:
    """Tails the log in its own thread and produces every user-table write to Kafka.

    ``env`` and ``log`` are the data folder's LMDB environment and log: the
    Database's own in-process (``engine.database.storage_handles``), or a
    separate process's (LMDB lets both read the same folder).
    """

    name = "kafka_export"

    def __init__(
        self, env: Any, log: LmdbLog, config: KafkaExportConfig, *, owns_env: bool = False
    ) -> None:
        self.config = config
        self._env = env
        self._log = log
        self._owns_env = owns_env
        debezium = config.envelope == ENVELOPE_DEBEZIUM
        self._documents = DocumentStore(env, env.open_db(b"meta")) if debezium else None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._confirmed: int | None = None
        self._entries_confirmed: int | None = None
        self._state = "stopped"
        self._counters = {"messages_sent": 0, "chunks_sent": 0, "errors": 0, "sessions": 0}
        self._last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> KafkaExporter:
        if self._thread is not None:
            raise KafkaExportError("Kafka export: the exporter is already running.")
        self._state = "starting"
        thread = threading.Thread(target=self._run, name="headwater-kafka-export", daemon=True)
        self._thread = thread
        thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop after the chunk in flight (its messages are then acknowledged or re-planned).

        False if the thread is still blocked in the Kafka client after ``timeout_s`` (a
        dead broker): it is a daemon thread, so a process may exit anyway, and the data
        folder stays open under it rather than closed while it reads.
        """
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                return False
        self._state = "stopped"
        if self._owns_env:
            self._owns_env = False
            self._env.close()
        return True

    def __enter__(self) -> KafkaExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def notify(self) -> None:
        """New commits exist: skip the rest of the idle poll interval."""
        self._wake.set()

    def apply(self, entries: Sequence[LogEntry]) -> None:
        """``LiveProjection``: durable entries exist. The thread reads them from the log
        itself (so a separate process works the same), so this only wakes it."""
        self._wake.set()

    # -- observing -------------------------------------------------------------

    @property
    def confirmed_ts(self) -> int | None:
        """Every transaction up to this ts is in Kafka (log retention must keep the rest)."""
        return self._confirmed

    def wait_exported(self, ts: int, timeout_s: float = 10.0) -> bool:
        """Block until every transaction up to ``ts`` is in Kafka; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._confirmed is None or self._confirmed < ts:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def statistics(self) -> dict[str, Any]:
        """State, progress and lag: ``lag_ms`` and ``entries_behind`` are None until known."""
        latest = self._log.latest_ts()
        confirmed, counted = self._confirmed, self._entries_confirmed
        behind = None if counted is None else self._log.count() - counted
        lag_ms = None
        if latest is not None and counted is not None:
            since = confirmed if confirmed is not None else (self._log.first_ts() or latest) - 1
            lag_ms = 0.0 if behind == 0 else (latest - since) / 1e6
        return {
            "state": self._state,
            "exported_ts": confirmed,
            "latest_ts": latest,
            "lag_ms": lag_ms,
            "entries_behind": behind,
            "last_error": self._last_error,
            **self._counters,
        }

    # -- the exporter thread ----------------------------------------------------

    def _run(self) -> None:
        backoff_ms = self.config.backoff_initial_ms
        while not self._stop.is_set():
            session = None
            try:
                session = _Session(self.config)
                self._counters["sessions"] += 1
                self._pump(session, self._resume(session))
            except Exception as exc:  # noqa: BLE001 - any failure: re-plan from the topic
                if self._state == "running":  # the session worked for a while
                    backoff_ms = self.config.backoff_initial_ms
                self._counters["errors"] += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._state = "retrying"
                _LOG.warning("Kafka export paused (%s); retrying in %d ms", exc, backoff_ms)
                self._stop.wait(backoff_ms / 1000)
                backoff_ms = min(2 * backoff_ms, self.config.backoff_max_ms)
            finally:
                if session is not None:
                    session.close()

    def _resume(self, session: _Session) -> ResumePoint:
        topics = session.existing_topics()
        point = read_resume_point(session.consumer, topics, self.config.request_timeout_ms / 1000)
        counted = 0
        if point.confirmed_ts is not None:
            with self._env.begin() as txn:
                later = sum(1 for _ in self._log.read_from(point.confirmed_ts + 1, txn))
                counted = self._log.count(txn) - later
        with self._changed:
            self._confirmed, self._entries_confirmed = point.confirmed_ts, counted
        self._state = "running"
        return point

    def _pump(self, session: _Session, resume: ResumePoint) -> None:
        position = (0 if resume.confirmed_ts is None else resume.confirmed_ts + 1, 0)
        ends = dict(resume.ends)
        while not self._stop.is_set():
            chunk = self._plan(session, resume, position)
            if chunk.messages:
                session.send(chunk.messages, self._confirmed or 0, ends)
                self._counters["messages_sent"] += len(chunk.messages)
                self._counters["chunks_sent"] += 1
            position = chunk.next_position
            if chunk.done_ts is not None:
                with self._changed:
                    self._confirmed = chunk.done_ts
                    self._entries_confirmed = (self._entries_confirmed or 0) + chunk.entries_done
                    self._changed.notify_all()
            if not chunk.messages and chunk.done_ts is None:
                self._wake.wait(self.config.poll_interval_ms / 1000)
                self._wake.clear()

    def _plan(self, session: _Session, resume: ResumePoint, position: tuple[int, int]) -> _Chunk:
        """The next chunk from ``position``: whole entries, or a cut inside a large one."""
        start_ts, start_index = position
        chunk = _Chunk([], None, 0, position)
        size = 0
        with self._env.begin() as txn:
            before = self._before_lookup(txn)
            for entry in self._log.read_from(start_ts, txn):
                first = start_index if entry.ts == start_ts else 0
                for message in messages_of(entry, self.config, before)[first:]:
                    partition = partition_of(message.key, session.partitions(message.topic))
                    if resume.holds(message.topic, partition, message.ts, message.index):
                        continue
                    if chunk.messages and size + message.size > self.config.chunk_bytes_max:
                        chunk.next_position = (entry.ts, message.index)
                        return chunk
                    chunk.messages.append((message, partition))
                    size += message.size
                chunk.done_ts, chunk.next_position = entry.ts, (entry.ts + 1, 0)
                chunk.entries_done += 1
                if size >= self.config.chunk_bytes_max or chunk.entries_done >= _CHUNK_ENTRIES_MAX:
                    break
        return chunk

    def _before_lookup(self, txn: Any) -> Callable[[Write], dict[str, Any] | None]:
        documents = self._documents
        if documents is None:
            return lambda _: None

        def before(write: Write) -> dict[str, Any] | None:
            if write.prev_ts is None:
                return None
            return documents.version(txn, storage_key_of(write.id), write.prev_ts)

        return before


def open_kafka_exporter(path: str, config: KafkaExportConfig) -> KafkaExporter:
    """An exporter over the data folder ``path`` with its own LMDB environment (another process)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No data folder at {path!r}.")
    env = open_environment(path)
    return KafkaExporter(env, LmdbLog(env), config, owns_env=True)
