"""Which function made a commit: a bounded in-memory map of commit ts to its origin.

The log records what a commit wrote, not who wrote it; the dashboard's log and
commit views want both. The executor records a mutation's origin when its commit
lands (path, kind, the caller's identity subject, where the call came from), the
dashboard's own edits are recorded under ``_dashboard/<verb>``. Commits no one
recorded (before a restart, by an import, by another process) have no origin:
``None``. Deploys are recognised from the log entry itself (``origin_of_entry``).

Caveats: in memory only and bounded (``commit_origins_max`` newest commits);
the oldest are forgotten first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from engine.system_tables import DEPLOYMENT_TABLE, MODULES_TABLE, SCHEMAS_TABLE
from udf.calls import FunctionCall

ORIGINS_MAX = 100_000
_DEPLOY_TABLES = frozenset((MODULES_TABLE, DEPLOYMENT_TABLE))


class CommitOrigins:
    """``ts -> {path, kind, identity, caller}``, the newest ``entries_max`` commits."""

    def __init__(self, entries_max: int = ORIGINS_MAX) -> None:
        self._entries_max = entries_max
        self._by_ts: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, ts: int, origin: dict[str, Any]) -> None:
        with self._lock:
            self._by_ts[ts] = origin
            while len(self._by_ts) > self._entries_max:
                self._by_ts.popitem(last=False)

    def record_call(self, ts: int, call: FunctionCall, *, nested: bool) -> None:
        """A function's mutation committed at ``ts``."""
        user = call.identity.user
        subject = None if user is None else user.get("subject")
        caller = "action" if nested else call.started_by or "client"
        path = call.path.removesuffix(".js").replace(".js:", ":")
        if call.component_path:
            path = f"{call.component_path}/{path}"
        identity = subject if subject is not None else ("admin" if call.identity.admin else None)
        self.record(ts, {"path": path, "kind": "mutation", "identity": identity, "caller": caller})

    def get(self, ts: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._by_ts.get(ts)
        return None if found is None else dict(found)


def dashboard_origin(verb: str) -> dict[str, Any]:
    return {
        "path": f"_dashboard/{verb}",
        "kind": "mutation",
        "identity": "admin",
        "caller": "dashboard",
    }


def origin_of_entry(origins: CommitOrigins | None, ts: int, tables: set[str]) -> Any:
    """The recorded origin of a commit, or a deploy's label when it wrote code or the
    deployment record, or a schema change's; else None (unknown)."""
    found = None if origins is None else origins.get(ts)
    if found is not None:
        return found
    if tables & _DEPLOY_TABLES:
        return {"path": "_deploy", "kind": "deploy", "identity": "admin", "caller": "deploy"}
    if SCHEMAS_TABLE in tables:
        return {"path": "_schema", "kind": "deploy", "identity": "admin", "caller": "deploy"}
    return None
