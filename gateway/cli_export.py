"""The export commands of ``headwater``: snapshot export and import, and the Kafka exporter.

    headwater export --data DIR | --store URL --out FILE.zip [--ts TS]
    headwater import FILE.zip --data DIR | --store URL [--replace]
    headwater kafka-export --data DIR | --store URL --bootstrap HOST:PORT [--topic T]
                           [--topic-per-table]
                           [--envelope debezium] [--partitions N] [--verbose]

``kafka-export`` runs beside a running deployment (LMDB lets a second process
read the same data folder) until interrupted; stopping it at any moment is
safe, the next run resumes from what the topic holds. It prints a status line
when its state changes and every ``_STATUS_INTERVAL_S``; the Kafka client's own
logging is shown only with ``--verbose``. On SIGINT or SIGTERM it exits within
``_STOP_WAIT_S`` even while the broker is unreachable (a chunk in flight is
re-planned from the topic by the next run, so nothing is lost or doubled).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from gateway.cli_errors import CliError, existing_data_folder, writable_data_folder
from gateway.cli_store import DEFAULT_DATA, add_store_option
from gateway.ts_arguments import TS_HELP, format_iso, ts_argument

_STATUS_INTERVAL_S = 10.0
_STATUS_POLL_S = 0.25  # how often a state change is looked for
_STOP_WAIT_S = 1.0  # SIGTERM to exit, even with a chunk stuck on a dead broker


def add_export_commands(
    subparsers: Any, formatter: type[argparse.HelpFormatter] = argparse.HelpFormatter
) -> None:
    """Register ``export``, ``import`` and ``kafka-export`` on the ``headwater`` parser."""

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name, help=help, description=help, formatter_class=formatter
        )
        return parser

    export = command("export", "write a snapshot of every table to a ZIP file")
    export.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(export)
    export.add_argument("--out", required=True, help="the ZIP file to write")
    export.add_argument(
        "--ts", type=ts_argument, default=None, help=f"{TS_HELP} to export (default: now)"
    )
    export.add_argument(
        "--include-file-storage",
        action="store_true",
        help="also write the stored files (as `npx convex export --include-file-storage`)",
    )
    export.set_defaults(run=_cmd_export)

    imp = command("import", "load a snapshot ZIP into an empty deployment")
    imp.add_argument("zip", help="a ZIP file written by `headwater export`")
    imp.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(imp)
    imp.add_argument(
        "--replace", action="store_true", help="delete the deployment's documents first"
    )
    imp.set_defaults(run=_cmd_import)

    kafka = command("kafka-export", "stream every committed write to Kafka")
    kafka.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(kafka)
    kafka.add_argument("--bootstrap", required=True, help="Kafka bootstrap server HOST:PORT")
    kafka.add_argument("--topic", default="headwater", help="topic (or prefix with per-table)")
    kafka.add_argument(
        "--topic-per-table", action="store_true", help="one topic per table: TOPIC.TABLE"
    )
    kafka.add_argument("--envelope", choices=["debezium"], default=None, help="value envelope")
    kafka.add_argument("--partitions", type=int, default=1, help="partitions of topics it creates")
    kafka.add_argument(
        "--verbose", action="store_true", help="also show the Kafka client's own log"
    )
    kafka.set_defaults(run=_cmd_kafka_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.snapshot_export import export_snapshot

    if args.store is None:
        existing_data_folder(args.data)
    out_folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_folder):
        raise CliError(f"The folder of --out {args.out} does not exist: create it first.")
    with _deployment(args) as source:
        report = export_snapshot(
            source, args.out, ts=args.ts, include_storage=args.include_file_storage
        )
    print(
        f"Exported {report.documents} documents in {len(report.tables)} tables at ts "
        f"{report.ts} to {args.out}."
    )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from engine.snapshot_import import import_snapshot

    if args.store is None:
        writable_data_folder(args.data)
    with _deployment(args) as target:
        report = import_snapshot(args.zip, target, replace=args.replace)
    deleted = f" after deleting {report.deleted}" if report.deleted else ""
    print(
        f"Imported {report.documents} documents in {len(report.tables)} tables{deleted} "
        f"({report.commits} commits)."
    )
    return 0


def _cmd_kafka_export(args: argparse.Namespace) -> int:
    # Imported here: the Kafka client is only loaded by the command that needs it.
    from projections.kafka_export import KafkaExportConfig

    if args.store is None:
        existing_data_folder(args.data)
    _quiet_kafka_logging(args.verbose)
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
    with _kafka_source(args, config) as exporter:
        exporter.start()
        print(
            f"Exporting {args.store or args.data} to Kafka at {args.bootstrap} "
            f"(topic {args.topic}); Ctrl-C stops.",
            flush=True,
        )
        try:
            _report_until(stop, exporter, args.bootstrap)
        finally:
            stopped = exporter.stop(timeout_s=_STOP_WAIT_S)
        if not stopped:
            # The exporter thread is stuck in the Kafka client (a dead broker) and the
            # interpreter's shutdown would wait on that client: leave now (before its
            # storage is closed under it). Nothing is lost; the next run resumes from
            # what the topic holds.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


@contextlib.contextmanager
def _deployment(args: argparse.Namespace) -> Iterator[Any]:
    """``--data``'s folder (opened by the command itself), or a node of ``--store``."""
    if args.store is None:
        yield args.data
        return
    from gateway.cluster_services import store_database

    with store_database(args.store) as db:
        yield db


@contextlib.contextmanager
def _kafka_source(args: argparse.Namespace, config: Any) -> Iterator[Any]:
    """The exporter over ``--data``'s folder, or over a node of ``--store`` (its cache
    follows the store's log, and the exporter reads the cache's mirror of it)."""
    from projections.kafka_export import KafkaExporter, open_kafka_exporter

    if args.store is None:
        yield open_kafka_exporter(args.data, config)
        return
    from engine.database import storage_handles
    from gateway.cluster_services import store_database

    with store_database(args.store) as db:
        env, log = storage_handles(db)
        yield KafkaExporter(env, log, config)


def _quiet_kafka_logging(verbose: bool) -> None:
    """The Kafka client logs every connection attempt; the status line says what matters."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
        return
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("headwater.kafka_export").setLevel(logging.ERROR)


def _report_until(stop: threading.Event, exporter: Any, bootstrap: str) -> None:
    """A status line at each change of state and every ``_STATUS_INTERVAL_S``."""
    shown: tuple[Any, ...] | None = None
    shown_at = 0.0
    while True:
        stats = exporter.statistics()
        key = (stats["state"], stats["entries_behind"] == 0, stats["last_error"])
        now = time.monotonic()
        if key != shown or now - shown_at >= _STATUS_INTERVAL_S or stop.is_set():
            print(status_line(stats, bootstrap), flush=True)
            shown, shown_at = key, now
        if stop.is_set():
            return
        stop.wait(_STATUS_POLL_S)


def status_line(stats: dict[str, Any], bootstrap: str) -> str:
    """One readable line: broker state, how far behind, what was sent."""
    state = stats["state"]
    if state == "running":
        broker = f"broker {bootstrap} connected"
    elif state == "retrying":
        broker = f"broker {bootstrap} unreachable, retrying ({_short(stats['last_error'])})"
    elif state == "starting":
        broker = f"connecting to broker {bootstrap}"
    else:
        broker = "stopped"
    behind = stats["entries_behind"]
    if behind is None:
        progress = "commits behind: not known until the broker answers"
        if stats["latest_ts"] is not None:
            progress = f"latest commit {format_iso(stats['latest_ts'])}; {progress}"
    elif behind == 0:
        progress = "up to date"
    else:
        progress = f"{behind:,} commits behind"
    exported = stats["exported_ts"]
    through = "" if exported is None else f", exported through {format_iso(exported)}"
    return (
        f"{time.strftime('%H:%M:%S')} {broker}; {progress}{through}; "
        f"{stats['messages_sent']:,} records sent"
    )


def _short(error: str | None) -> str:
    """``KafkaTimeoutError: KafkaTimeoutError: Unable to ...`` without the repeated name."""
    if error is None:
        return "no error"
    name, _, rest = error.partition(": ")
    while rest.startswith(name + ": "):
        rest = rest[len(name) + 2 :]
    return f"{name}: {rest}" if rest else name
