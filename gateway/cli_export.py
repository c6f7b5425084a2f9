"""The export commands of ``headwater``: snapshot export and import, and the Kafka exporter.

    headwater export --data DIR --out FILE.zip [--ts TS]
    headwater import FILE.zip --data DIR [--replace]
    headwater kafka-export --data DIR --bootstrap HOST:PORT [--topic T] [--topic-per-table]
                           [--envelope debezium] [--partitions N]

``kafka-export`` runs beside a running deployment (LMDB lets a second process
read the same data folder) until interrupted; stopping it at any moment is
safe, the next run resumes from what the topic holds.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any

from engine.snapshot_export import export_snapshot, import_snapshot

DEFAULT_DATA = "headwater_data"
_STATUS_INTERVAL_S = 10.0


def add_export_commands(subparsers: Any) -> None:
    """Register ``export``, ``import`` and ``kafka-export`` on the ``headwater`` parser."""
    export = subparsers.add_parser("export", help="write a snapshot of every table to a ZIP file")
    export.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    export.add_argument("--out", required=True, help="the ZIP file to write")
    export.add_argument("--ts", type=int, default=None, help="commit ts to export (default: now)")
    export.set_defaults(run=_cmd_export)

    imp = subparsers.add_parser("import", help="load a snapshot ZIP into an empty deployment")
    imp.add_argument("zip", help="a ZIP file written by `headwater export`")
    imp.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    imp.add_argument(
        "--replace", action="store_true", help="delete the deployment's documents first"
    )
    imp.set_defaults(run=_cmd_import)

    kafka = subparsers.add_parser("kafka-export", help="stream every committed write to Kafka")
    kafka.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    kafka.add_argument("--bootstrap", required=True, help="Kafka bootstrap server HOST:PORT")
    kafka.add_argument("--topic", default="headwater", help="topic (or prefix with per-table)")
    kafka.add_argument(
        "--topic-per-table", action="store_true", help="one topic per table: TOPIC.TABLE"
    )
    kafka.add_argument("--envelope", choices=["debezium"], default=None, help="value envelope")
    kafka.add_argument("--partitions", type=int, default=1, help="partitions of topics it creates")
    kafka.set_defaults(run=_cmd_kafka_export)


def _cmd_export(args: argparse.Namespace) -> int:
    report = export_snapshot(args.data, args.out, ts=args.ts)
    print(
        f"Exported {report.documents} documents in {len(report.tables)} tables at ts "
        f"{report.ts} to {args.out}."
    )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    report = import_snapshot(args.zip, args.data, replace=args.replace)
    deleted = f" after deleting {report.deleted}" if report.deleted else ""
    print(
        f"Imported {report.documents} documents in {len(report.tables)} tables{deleted} "
        f"({report.commits} commits)."
    )
    return 0


def _cmd_kafka_export(args: argparse.Namespace) -> int:
    # Imported here: the Kafka client is only loaded by the command that needs it.
    from projections.kafka_export import KafkaExportConfig, open_kafka_exporter

    config = KafkaExportConfig(
        args.bootstrap,
        topic=args.topic,
        topic_per_table=args.topic_per_table,
        envelope=args.envelope,
        partitions=args.partitions,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    exporter = open_kafka_exporter(args.data, config).start()
    print(f"Exporting {args.data} to {args.bootstrap} (topic {args.topic}); Ctrl-C stops.")
    try:
        while not stop.wait(_STATUS_INTERVAL_S):
            _print_status(exporter.statistics())
        _print_status(exporter.statistics())
    finally:
        exporter.stop()
    return 0


def _print_status(stats: dict[str, Any]) -> None:
    error = f"; last error: {stats['last_error']}" if stats["state"] == "retrying" else ""
    print(
        f"{time.strftime('%H:%M:%S')} {stats['state']}: exported through ts "
        f"{stats['exported_ts']}, {stats['entries_behind']} entries behind, "
        f"{stats['messages_sent']} messages sent{error}",
        flush=True,
    )
