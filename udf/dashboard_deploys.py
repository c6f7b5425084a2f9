"""``ops:deploys``: the deploy history, newest first, read back from the log.

A deploy is one commit that writes the ``_deployment`` document (with every
``_modules`` document of the push), so the history is that document's chain of
versions: each log entry's write names the commit of the version it replaced
(``prev_ts``), and the log keeps every version whole. Walking the chain reads one
entry per deploy; nothing is indexed or kept for it. Each deploy reports the
modules it added, removed and changed (a module whose pushed hash differs from the
version it replaced) and the app's schema before and after. A commit that rewrote
the document without deploying (an environment variable that ``auth.config`` reads
changed) is walked through but not listed. The bundler's shared
chunks (``_deps/``) are left out: their names change with every bundling and they
are no module a user wrote; a module that imports a renamed chunk counts as changed.
"""

from __future__ import annotations

import json
from typing import Any

from engine.components import ROOT, module_key
from engine.convex_json import from_convex_json
from engine.database import storage_handles
from engine.ids import decode_id
from engine.system_tables import DEPLOYMENT_DOC_ID, MODULES_TABLE, keyed_system_id
from engine.transaction import Transaction
from log.entry import LogEntry, Write
from udf.dashboard_ops_args import check_keys, limit_arg, wall_ms

DEPLOYS_DEFAULT = 20
DEPLOYS_MAX = 100
_CHUNKS = "_deps/"


def list_deploys(context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    check_keys(args, ("limit",), "ops:deploys")
    limit = limit_arg(args, "limit", DEPLOYS_DEFAULT, DEPLOYS_MAX, "ops:deploys")
    if tx.get(DEPLOYMENT_DOC_ID) is None:  # the read that makes the list live
        return []
    version = tx.snapshot.get(decode_id(DEPLOYMENT_DOC_ID).storage_key())
    if version is None:
        return []
    entries = _Entries(context.db)
    deploys: list[dict[str, Any]] = []
    ts: int | None = version[0]
    while ts is not None and len(deploys) < limit:
        entry = entries.at(ts)
        write = None if entry is None else _write_of(entry, DEPLOYMENT_DOC_ID)
        if entry is None or write is None or write.value is None:
            break  # the log no longer holds this version
        before = _deployment_at(entries, write.prev_ts)
        if _is_deploy(entry, before, write.value):
            deploys.append(_describe(entries, entry, before, write.value))
        ts = write.prev_ts
    return deploys


class _Entries:
    """Log entries by commit ts, each read once per call."""

    def __init__(self, db: Any) -> None:
        self._log = storage_handles(db)[1]
        self._cache: dict[int, LogEntry | None] = {}

    def at(self, ts: int) -> LogEntry | None:
        if ts not in self._cache:
            found = next(iter(self._log.read_range(ts, ts)), None)
            self._cache[ts] = found if found is not None and found.ts == ts else None
        return self._cache[ts]


def _write_of(entry: LogEntry, doc_id: str) -> Write | None:
    return next((w for w in entry.writes if w.id == doc_id), None)


def _is_deploy(entry: LogEntry, before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """A deploy writes its modules; a variable change that re-analysed ``auth.config``
    rewrites only the ``_deployment`` document (same code: no deploy)."""
    if before is None or before.get("sourceHash") != after.get("sourceHash"):
        return True
    return any(w.table == MODULES_TABLE for w in entry.writes)


def _deployment_at(entries: _Entries, ts: int | None) -> dict[str, Any] | None:
    if ts is None:
        return None
    entry = entries.at(ts)
    write = None if entry is None else _write_of(entry, DEPLOYMENT_DOC_ID)
    return None if write is None else write.value


def _module_keys(record: dict[str, Any] | None) -> list[str]:
    """Every module of a deployment record, the component definitions' by their key."""
    if record is None:
        return []
    keys = [module_key(ROOT, path) for path in _user_modules(record)]
    definitions = (record.get("components") or {}).get("definitions") or {}
    for definition_path, stored in sorted(definitions.items()):
        keys.extend(module_key(definition_path, path) for path in _user_modules(stored))
    return keys


def _user_modules(stored: dict[str, Any]) -> list[str]:
    return [path for path in stored.get("modules") or () if not path.startswith(_CHUNKS)]


def _describe(
    entries: _Entries, entry: LogEntry, before: dict[str, Any] | None, after: dict[str, Any]
) -> dict[str, Any]:
    old, new = _module_keys(before), _module_keys(after)
    kept = set(old) & set(new)
    changed = [key for key in new if key in kept and _module_changed(entries, entry, key)]
    schema_before, schema_after = _schema_of(before), _schema_of(after)
    return {
        "ts": str(entry.ts),
        "wallTime": wall_ms(entry.ts),
        "modules": {
            "added": [key for key in new if key not in kept],
            "removed": [key for key in old if key not in kept],
            "changed": changed,
        },
        "schemaChanged": schema_before != schema_after,
        "schemaBefore": schema_before,
        "schemaAfter": schema_after,
    }


def _module_changed(entries: _Entries, entry: LogEntry, key: str) -> bool:
    """Whether the deploy wrote the module with other code than the version it replaced."""
    write = _write_of(entry, keyed_system_id(MODULES_TABLE, key))
    if write is None or write.value is None:
        return False
    if write.prev_ts is None:
        return True
    previous_entry = entries.at(write.prev_ts)
    previous = None if previous_entry is None else _write_of(previous_entry, write.id)
    if previous is None or previous.value is None:
        return True
    return bool(
        previous.value.get("sha256") != write.value.get("sha256")
        or previous.value.get("source") != write.value.get("source")
    )


def _schema_of(record: dict[str, Any] | None) -> Any:
    """The app's schema as ``defineSchema`` exported it (None: no schema.ts)."""
    if record is None:
        return None
    text = json.loads(record["analysis"]).get("schema")
    return None if text is None else from_convex_json(json.loads(text))
