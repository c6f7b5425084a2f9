"""``headwater status --store URL``: the nodes of a deployment, its leader, their lag.

Read from the store alone (the lease, the nodes' heartbeats, the log's newest
ts), so it works while any or none of the nodes run. A node's lag is how many
ns of log it has yet to apply; a node not seen for three lease lifetimes is
shown as gone.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.limits import LIMITS
from log.store_url import open_shared_store


def add_status_command(subparsers: Any, formatter: type[argparse.HelpFormatter]) -> None:
    status = subparsers.add_parser(
        "status",
        help="show the nodes of a deployment in a shared store, its leader and their lag",
        description="The nodes serving a deployment held in a shared store.",
        formatter_class=formatter,
    )
    status.add_argument("--store", required=True, help="postgresql://..., mysql://..., sqlite:///...")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(run=cmd_status)


def cluster_status(store: Any) -> dict[str, Any]:
    """What ``status`` prints, as data (the dashboard shows the same)."""
    latest = store.latest_ts() or 0
    lease = store.current_lease()
    gone_ms = 3 * LIMITS.cluster_lease_ttl_ms
    leader = None
    if lease is not None and lease.expires_in_ms > 0:
        leader = {"node": lease.node_id, "address": lease.address, "token": lease.token}
    return {
        "store": store.describe(),
        "deployment": store.deployment_id(),
        "latest_ts": latest,
        "entries": store.count(),
        "leader": leader,
        "nodes": [
            {
                "node": n.node_id,
                "address": n.address,
                "role": n.role if n.seen_ms_ago < gone_ms else "gone",
                "applied_ts": n.applied_ts,
                "lag_ms": max(latest - n.applied_ts, 0) / 1e6,
                "seen_ms_ago": n.seen_ms_ago,
            }
            for n in store.nodes()
        ],
    }


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
            f"lag {n['lag_ms']:.1f} ms  seen {n['seen_ms_ago'] / 1000:.1f} s ago"
        )
    return 0
