"""``--store`` on the command line, and ``headwater status --store URL``.

Every command that works on a deployment takes ``--store URL`` instead of
``--data`` (``add_store_option``): it then runs as a short-lived node of the
deployment in that store (``gateway.cluster_services.store_database``).

``status`` shows the nodes of a deployment, its leader and their lag.
``cache-snapshot`` copies a node's cache (while it runs) to seed a new node,
which then catches up only the log's tail.

Read from the store alone (the lease, the nodes' heartbeats, the log's newest
ts: ``engine.cluster.cluster_status``), so it works while any or none of the
nodes run.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.cluster import cluster_status
from engine.cluster_cache import snapshot_cache
from log.store_url import open_shared_store

DEFAULT_DATA = "headwater_data"  # the data folder (or a store node's cache) by default

STORE_HELP = (
    "the deployment in a shared store instead of --data: postgresql://USER@HOST:PORT/DB, "
    "mysql://USER@HOST:PORT/DB or sqlite:///PATH"
)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help=STORE_HELP)


def add_status_command(subparsers: Any, formatter: type[argparse.HelpFormatter]) -> None:
    status = subparsers.add_parser(
        "status",
        help="show the nodes of a deployment in a shared store, its leader and their lag",
        description="The nodes serving a deployment held in a shared store.",
        formatter_class=formatter,
    )
    status.add_argument(
        "--store", required=True, help="postgresql://..., mysql://..., sqlite:///..."
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(run=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    store = open_shared_store(args.store)
    try:
        status = cluster_status(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    leader = status["leader"]
    print(f"Store: {status['store']}  deployment {status['deployment']}")
    print(f"Log: {status['entries']} entries, newest ts {status['latest_ts']}")
    print(
        "Leader: none (no node holds the lease)"
        if leader is None
        else f"Leader: {leader['node']} at {leader['address']} (lease token {leader['token']})"
    )
    for n in status["nodes"]:
        print(
            f"  {n['node']:<32} {n['role']:<9} {n['address']:<28} applied {n['applied_ts']}  "
            f"lag {n['lag_ms']:.1f} ms  seen {n['seen_ms_ago'] / 1000:.1f} s ago  "
            f"code {n['code_hash'][:12] or '-'}"
        )
    return 0


def add_cache_snapshot_command(subparsers: Any, formatter: type[argparse.HelpFormatter]) -> None:
    snapshot = subparsers.add_parser(
        "cache-snapshot",
        help="copy a store node's --data cache (even while it runs) to start a new node from",
        description="Copy a node's cache folder consistently; `serve --store URL --data OUT` "
        "then applies only the log written after the copy.",
        formatter_class=formatter,
    )
    snapshot.add_argument("--data", default=DEFAULT_DATA, help="the cache folder of a node")
    snapshot.add_argument("--out", required=True, help="a new, empty folder")
    snapshot.set_defaults(run=cmd_cache_snapshot)


def cmd_cache_snapshot(args: argparse.Namespace) -> int:
    ts = snapshot_cache(args.data, args.out)
    print(f"Snapshot of {args.data} in {args.out}, up to ts {ts}")
    return 0
