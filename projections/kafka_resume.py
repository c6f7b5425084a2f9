"""Where Kafka export resumes: read back from the last message of each partition.

Each message carries the exporter's headers (``projections.kafka_messages``), so
the topics themselves are the checkpoint: the largest ``confirmed_ts`` says
where to replay the log from, each partition's last (ts, index) which messages
to skip. Apart from the exporter because it is the exactly-once argument's
reading half, and reads only what a consumer gives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from projections.kafka_messages import (
    HEADER_CONFIRMED,
    HEADER_INDEX,
    HEADER_OFFSET,
    HEADER_TS,
    KafkaExportError,
)

_RESUME_HEADERS = (HEADER_TS, HEADER_INDEX, HEADER_CONFIRMED, HEADER_OFFSET)


@dataclass(frozen=True)
class ResumePoint:
    """What the topics already hold, read back from their last messages."""

    confirmed_ts: int | None  # every transaction up to this ts is in the topics
    last: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset per partition

    def holds(self, topic: str, partition: int, ts: int, index: int) -> bool:
        last = self.last.get((topic, partition))
        return last is not None and (ts, index) <= last


def read_resume_point(
    consumer: KafkaConsumer, topics: dict[str, int], timeout_s: float
) -> ResumePoint:
    """The resume point from the last message of each partition of ``topics``."""
    tps = [TopicPartition(t, p) for t, n in sorted(topics.items()) for p in range(n)]
    if not tps:
        return ResumePoint(None)
    deadline = time.monotonic() + timeout_s
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    while any(consumer.highwater(tp) is None for tp in tps):
        _poll(consumer, deadline)
    ends = {tp: consumer.highwater(tp) for tp in tps}
    tails = [tp for tp in tps if ends[tp]]
    for tp in tps:
        consumer.seek(tp, max(0, ends[tp] - 1))
    last_records: dict[TopicPartition, Any] = {}
    while any(tp not in last_records or last_records[tp].offset < ends[tp] - 1 for tp in tails):
        for tp, records in _poll(consumer, deadline).items():
            last_records[tp] = records[-1]
    confirmed = 0
    last = {}
    for tp, record in last_records.items():
        headers = _our_headers(record)
        last[(tp.topic, tp.partition)] = (headers[HEADER_TS], headers[HEADER_INDEX])
        confirmed = max(confirmed, headers[HEADER_CONFIRMED])
    offsets = {(tp.topic, tp.partition): end for tp, end in ends.items()}
    return ResumePoint(confirmed or None, last, offsets)


def _poll(consumer: KafkaConsumer, deadline: float) -> dict[Any, list[Any]]:
    if time.monotonic() > deadline:
        raise KafkaExportError("Kafka export: timed out reading the ends of the topic partitions.")
    return dict(consumer.poll(timeout_ms=50))


def _our_headers(record: Any) -> dict[str, int]:
    found = dict(record.headers or ())
    try:
        headers = {h: int(found[h]) for h in _RESUME_HEADERS}
    except (KeyError, ValueError):
        raise KafkaExportError(
            f"Kafka export: the last message of {record.topic} partition {record.partition} "
            f"(offset {record.offset}) was not written by Headwater's exporter; export to a "
            "topic no other producer writes."
        ) from None
    if headers[HEADER_OFFSET] != record.offset:
        raise KafkaExportError(
            f"Kafka export: {record.topic} partition {record.partition} holds at offset "
            f"{record.offset} a message sent for offset {headers[HEADER_OFFSET]}: the broker "
            "lost messages it had acknowledged (restarted without storage?). Delete the topic "
            "to export everything again."
        )
    return headers
