"""The ``headwater`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine import UNSET, Database, HeadwaterError
from engine.recovery import rebuild_projections

DEFAULT_DATA = "headwater_data"


def _cmd_replay(args: argparse.Namespace) -> int:
    report = rebuild_projections(args.data)
    print(
        f"Rebuilt all projections from {report.entries} log entries in "
        f"{report.seconds:.3f} s ({report.entries_per_s:,.0f} entries/s)."
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """A short tour of the embedded engine: writes, an indexed query, a point-in-time read."""
    with Database.open(args.data) as db:
        print(f"Opened {args.data} (replayed {db.recovery.entries} log entries on open).")
        db.set_schema(DEMO_SCHEMA)

        def post(tx, channel, body):
            return tx.insert("messages", {"channel": channel, "body": body, "likes": 0})

        first = db.mutate(post, "general", "hello from the engine")
        db.mutate(post, "general", "a second message")
        db.mutate(post, "random", "elsewhere")

        def in_channel(tx, channel):
            return (
                tx.query("messages")
                .with_index("by_channel", lambda q: q.eq("channel", channel))
                .collect()
            )

        seen = []
        sub = db.subscribe(in_channel, "general", on_change=lambda r: seen.append(r.value))
        db.mutate(lambda tx: tx.patch(first.value, {"likes": 1, "body": UNSET}))
        db.wait_for_subscriptions()
        now = db.query(in_channel, "general")
        then = db.query(in_channel, "general", ts=first.ts)
        sub.close()
        print(f"Now, #general holds {len(now.value)} messages (at ts {now.ts}).")
        print(f"At ts {first.ts} it held {len(then.value)}: {then.value[0]['body']!r}.")
        print(f"The live query saw {len(seen)} change(s); latest: {seen[-1] if seen else None}.")
        stats = db.statistics()["committer"]
        print(f"Committed {stats['commits']} transactions in {stats['batches']} durable batches.")
    return 0


DEMO_SCHEMA = {
    "tables": [
        {
            "tableName": "messages",
            "indexes": [{"indexDescriptor": "by_channel", "fields": ["channel"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": None,
        }
    ],
    "schemaValidation": True,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headwater", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay", help="rebuild every projection from the log")
    replay.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    replay.set_defaults(run=_cmd_replay)
    demo = sub.add_parser("demo", help="a short tour of the embedded engine")
    demo.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (HeadwaterError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
