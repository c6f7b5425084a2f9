"""Benchmark: Kafka export and snapshot export/import, each against a no-database baseline.

Kafka (tansu on a loopback port, started here): export throughput in documents
per second from a log written beforehand, and commit-to-Kafka latency (from a
commit's acknowledgement to the exporter's confirmation that the broker holds
it). Baseline in the same run: a plain kafka-python producer sending the same
messages (same keys, values and headers) with its defaults, and one-message
send-and-wait for latency. Snapshots: export and import in documents per
second, against writing the same JSONL into a ZIP (and reading it back) with
no database. Run: ``python -m bench.bench_export``.
"""

from __future__ import annotations

import io
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

from bench.common import percentiles_ms, print_table
from engine import Database
from engine.convex_json import dumps, loads
from engine.database import storage_handles
from engine.snapshot_export import export_snapshot
from engine.snapshot_import import import_snapshot
from engine.streaming_export import iter_table_at

TRANSACTIONS = 2_000
DOCS_PER_TRANSACTION = 10
LATENCY_SAMPLES = 300
SNAPSHOT_DOCS = 40_000


def _document(i: int) -> dict:
    return {"n": i, "name": f"user {i}", "score": i * 0.5, "tags": ["a", "b"], "ok": True}


def _kafka_modules():
    # kafka-python 3.0 warns about a deprecated resources API while importing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer

        from projections.kafka_export import KafkaExportConfig, KafkaExporter, messages_of
        from tests.kafka_broker import TansuBroker
    return KafkaProducer, KafkaExportConfig, KafkaExporter, messages_of, TansuBroker


def bench_kafka(tmp: Path) -> list[tuple[object, ...]]:
    producer_cls, config_cls, exporter_cls, messages_of, broker_cls = _kafka_modules()
    rows: list[tuple[object, ...]] = []
    with broker_cls() as broker, Database.open(tmp / "kafka") as db:
        for _ in range(TRANSACTIONS):
            db.mutate(lambda tx: [tx.insert("users", _document(j)) for j in range(10)])
        env, log = storage_handles(db)
        config = config_cls(broker.bootstrap, topic="bench", partitions=4)
        started = time.perf_counter()
        with exporter_cls(env, log, config) as exporter:
            exporter.wait_exported(db.latest_ts(), 300)
            ours = TRANSACTIONS * DOCS_PER_TRANSACTION / (time.perf_counter() - started)
            latencies = []
            for i in range(LATENCY_SAMPLES):
                ts = db.mutate(lambda tx, i=i: tx.insert("users", _document(i))).ts
                acked = time.perf_counter()
                exporter.wait_exported(ts, 30)
                latencies.append(time.perf_counter() - acked)
        # Baseline: the same messages through a plain producer, no log and no database.
        messages = [m for entry in log.read_from(0) for m in messages_of(entry, config)]
        producer = producer_cls(bootstrap_servers=broker.bootstrap, acks="all")
        started = time.perf_counter()
        for m in messages[: TRANSACTIONS * DOCS_PER_TRANSACTION]:
            headers = m.headers(0, 0)
            producer.send("baseline", key=m.key, value=m.value, headers=headers)
        producer.flush()
        base = TRANSACTIONS * DOCS_PER_TRANSACTION / (time.perf_counter() - started)
        one = []
        for m in messages[:LATENCY_SAMPLES]:
            sent = time.perf_counter()
            producer.send("baseline", key=m.key, value=m.value).get(30)
            one.append(time.perf_counter() - sent)
        producer.close()
    p50, p99 = percentiles_ms(latencies)
    b50, b99 = percentiles_ms(one)
    rows.append(("export throughput (documents/s)", ours, base, ours / base))
    rows.append(("commit-to-Kafka latency p50 (ms)", p50, b50, p50 / b50))
    rows.append(("commit-to-Kafka latency p99 (ms)", p99, b99, p99 / b99))
    return rows


def bench_snapshots(tmp: Path) -> list[tuple[object, ...]]:
    with Database.open(tmp / "source") as db:
        for start in range(0, SNAPSHOT_DOCS, 4_000):
            db.mutate(
                lambda tx, s=start: [tx.insert("users", _document(s + j)) for j in range(4_000)]
            )
        started = time.perf_counter()
        export_snapshot(db, tmp / "snap.zip")
        export_s = time.perf_counter() - started
        tx = db.begin(writable=False)
        docs = [doc for _, doc in iter_table_at(tx.snapshot, "users")]
        tx.close()
    started = time.perf_counter()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("users/documents.jsonl", "".join(dumps(d) + "\n" for d in docs))
    plain_export_s = time.perf_counter() - started
    started = time.perf_counter()
    import_snapshot(tmp / "snap.zip", tmp / "copy")
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    with zipfile.ZipFile(raw) as zf, zf.open("users/documents.jsonl") as lines:
        parsed = [loads(line) for line in lines]
    plain_import_s = time.perf_counter() - started
    assert len(parsed) == SNAPSHOT_DOCS
    n = SNAPSHOT_DOCS
    return [
        (
            "snapshot export (documents/s)",
            n / export_s,
            n / plain_export_s,
            plain_export_s / export_s,
        ),
        (
            "snapshot import (documents/s)",
            n / import_s,
            n / plain_import_s,
            plain_import_s / import_s,
        ),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        rows = bench_kafka(tmp) + bench_snapshots(tmp)
    print_table(
        f"Kafka export ({TRANSACTIONS} transactions of {DOCS_PER_TRANSACTION} documents, "
        f"tansu on loopback) and snapshots ({SNAPSHOT_DOCS} documents)",
        ("measure", "headwater", "baseline (no database)", "ratio"),
        rows,
    )
    print(
        "\nBaselines: a plain kafka-python producer with the same messages; one send-and-wait;"
        " the same JSONL zipped (export) and parsed (import) with no database."
    )


if __name__ == "__main__":
    main()
