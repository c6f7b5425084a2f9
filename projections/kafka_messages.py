"""Kafka export's messages: the config, and one message per written document.

The format (key, value, envelope, headers, partition) is specified in
``projections.kafka_export``'s header; it lives here, apart from producing and
resuming, because it is plain functions of log entries (the benchmarks build
messages without a broker).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.partitioner.default import murmur2

from engine.components import split_table
from engine.convex_json import dumps, to_convex_json
from engine.errors import HeadwaterError, InvalidValueError
from log.entry import LogEntry, Write

ENVELOPE_DEBEZIUM = "debezium"
HEADER_TS, HEADER_TABLE, HEADER_INDEX = "ts", "table", "index"
HEADER_COUNT, HEADER_CONFIRMED, HEADER_OFFSET = "count", "confirmed_ts", "offset"
HEADER_COMPONENT = "component"

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")


class KafkaExportError(HeadwaterError):
    code = "KafkaExportError"


@dataclass(frozen=True)
class KafkaExportConfig:
    bootstrap_servers: str
    topic: str = "headwater"  # with topic_per_table: "<topic>[.<component>].<table>"
    topic_per_table: bool = False
    envelope: str | None = None  # None or "debezium"
    partitions: int = 1  # for topics the exporter creates
    replication_factor: int = 1
    chunk_bytes_max: int = 512 << 10
    poll_interval_ms: float = 2.0
    request_timeout_ms: int = 5000
    backoff_initial_ms: int = 50
    backoff_max_ms: int = 2000

    def __post_init__(self) -> None:
        if not isinstance(self.bootstrap_servers, str) or not self.bootstrap_servers:
            raise InvalidValueError("Kafka export: bootstrap_servers must be 'host:port'.")
        if not isinstance(self.topic, str) or not _TOPIC_NAME.fullmatch(self.topic):
            raise InvalidValueError(
                f"Kafka export: invalid topic name {self.topic!r} (1-200 of A-Z a-z 0-9 . _ -)."
            )
        if self.envelope not in (None, ENVELOPE_DEBEZIUM):
            raise InvalidValueError(f"Kafka export: unknown envelope {self.envelope!r}.")
        for name in ("partitions", "replication_factor", "chunk_bytes_max", "request_timeout_ms"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise InvalidValueError(f"Kafka export: {name} must be a positive integer.")

    def topic_for(self, table: str, component: str = "") -> str:
        """The topic of ``table`` of the component at ``component`` ("" = the app): one
        topic, or with ``topic_per_table`` "<topic>.<table>" for the app's tables and
        "<topic>.<component path, "/" as ".">.<table>" for a component's (names
        have no dots, so no two tables share a topic)."""
        if not self.topic_per_table:
            return self.topic
        if component:
            return f"{self.topic}.{component.replace('/', '.')}.{table}"
        return f"{self.topic}.{table}"


@dataclass(frozen=True, slots=True)
class ExportMessage:
    topic: str
    key: bytes
    value: bytes | None
    ts: int
    table: str
    index: int
    count: int
    component: str = ""  # the table's component path ("" = the app)

    def headers(self, confirmed_ts: int, offset: int) -> list[tuple[str, bytes]]:
        return [
            (HEADER_TS, b"%d" % self.ts),
            (HEADER_TABLE, self.table.encode()),
            (HEADER_COMPONENT, self.component.encode()),
            (HEADER_INDEX, b"%d" % self.index),
            (HEADER_COUNT, b"%d" % self.count),
            (HEADER_CONFIRMED, b"%d" % confirmed_ts),
            (HEADER_OFFSET, b"%d" % offset),
        ]

    @property
    def size(self) -> int:
        return len(self.key) + len(self.value or b"") + len(self.table) + len(self.component) + 112


def messages_of(
    entry: LogEntry,
    config: KafkaExportConfig,
    before: Callable[[Write], dict[str, Any] | None] = lambda _: None,
) -> list[ExportMessage]:
    """The messages of one log entry: its user-table writes, in order."""
    writes = [w for w in entry.writes if not split_table(w.table)[1].startswith("_")]
    out = []
    for index, write in enumerate(writes):
        component, table = split_table(write.table)
        if config.envelope == ENVELOPE_DEBEZIUM:
            value: bytes | None = _debezium(entry.ts, write, before(write), component, table)
        else:
            value = None if write.value is None else dumps(write.value).encode()
        key = write.id.encode()
        topic = config.topic_for(table, component)
        out.append(ExportMessage(topic, key, value, entry.ts, table, index, len(writes), component))
    return out


def _debezium(
    ts: int, write: Write, before: dict[str, Any] | None, component: str, table: str
) -> bytes:
    op = "d" if write.value is None else ("c" if write.prev_ts is None else "u")
    envelope = {
        "before": None if before is None else to_convex_json(before),
        "after": None if write.value is None else to_convex_json(write.value),
        "op": op,
        "ts_ms": ts // 1_000_000,
        "source": {
            "connector": "headwater",
            "component": component,
            "table": table,
            "ts_ns": ts,
        },
    }
    text = json.dumps(envelope, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.encode()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of ``key``, as the Java client's default partitioner picks it."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)
