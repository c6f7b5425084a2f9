"""The dashboard's time travel: the retained range, adjacent commits, a document's
versions, the commit log and one commit's writes.

Read from the log (``read_backward``/``read_range``, never newer than the call's
snapshot) and the MVCC history the documents projection keeps. Timestamps cross
the wire as decimal strings; ``wallTime`` is the commit ts in milliseconds (the
committer assigns ts from the wall clock). A commit's ``function`` is what
``udf.commit_origins`` knows about it, or None.

The range and the newest page of the log are live: they read every table's whole id
range (``watch_every_commit``), so any commit re-runs their subscriptions. A commit
lists at most ``COMMIT_WRITES_MAX`` writes.
"""

from __future__ import annotations

from typing import Any

from engine.components import split_table
from engine.database import storage_handles
from engine.errors import HeadwaterError, InvalidIdError
from engine.ids import decode_id
from engine.system_tables import SYSTEM_TABLE_NUMBERS, TABLES_TABLE
from engine.transaction import Transaction
from engine.values import UNSET, values_equal
from log.entry import LogEntry, Write
from udf.commit_origins import origin_of_entry
from udf.dashboard_args import bad_args, count_arg, string_arg, ts_arg

LOG_ITEMS_MAX = 100
LOG_WRITES_MAX = 50
COMMIT_WRITES_MAX = 1000


def wall_time_ms(ts: int) -> float:
    return float(ts // 1_000_000)


def _log(context: Any) -> Any:
    return storage_handles(context.db)[1]


def _origins(context: Any) -> Any:
    return getattr(context.executor, "commit_origins", None)


def watch_every_commit(tx: Transaction) -> None:
    """Make the call's read set cover every document of every table (system ones too,
    and ``_tables`` for tables yet to come): every commit writes one, so a subscription
    to the call re-runs after each commit."""
    names = {doc["name"] for doc in tx.query(TABLES_TABLE).collect()}
    for name in names | set(SYSTEM_TABLE_NUMBERS):
        tx.reads.add(f"{name}.by_id", b"", None)


def time_range(context: Any, tx: Transaction, _args: dict[str, Any]) -> dict[str, str]:
    watch_every_commit(tx)
    oldest = context.db.first_ts()
    return {
        "oldestTs": str(oldest if oldest is not None else tx.snapshot_ts),
        "newestTs": str(tx.snapshot_ts),
    }


def neighbour_ts(context: Any, tx: Transaction, args: dict[str, Any]) -> str | None:
    ts = ts_arg(args, "ts")
    assert ts is not None
    direction = args.get("direction")
    log = _log(context)
    if direction == "previous":
        found = log.read_backward(ts, 1)
        oldest = context.db.first_ts() or 0
        return str(found[0].ts) if found and found[0].ts >= oldest else None
    if direction == "next":
        watch_every_commit(tx)  # "none yet" turns into the next commit when one lands
        if ts >= tx.snapshot_ts:
            return None
        entries = log.read_range(ts + 1, tx.snapshot_ts)
        first = next(iter(entries), None)
        close = getattr(entries, "close", None)
        if close is not None:
            close()
        return None if first is None else str(first.ts)
    raise bad_args(f'`direction` must be "previous" or "next", got {direction!r}.')


def _op(write: Write) -> str:
    if write.value is None:
        return "delete"
    return "insert" if write.prev_ts is None else "update"


def _write_summary(write: Write) -> dict[str, Any]:
    component, table = split_table(write.table)
    return {"table": table, "component": component, "id": write.id, "op": _op(write)}


def _origin(context: Any, entry: LogEntry) -> Any:
    return origin_of_entry(_origins(context), entry.ts, {w.table for w in entry.writes})


def commit_log(context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    before = ts_arg(args, "beforeTs", required=False)
    limit = count_arg(args, "limit", LOG_ITEMS_MAX, default=LOG_ITEMS_MAX)
    bound = tx.snapshot_ts + 1 if before is None else min(before, tx.snapshot_ts + 1)
    oldest = context.db.first_ts() or 0
    if before is None:
        watch_every_commit(tx)  # the newest page shows each new commit as it lands
    listed = []
    for entry in _log(context).read_backward(bound, limit):
        if entry.ts < oldest:
            break
        listed.append(
            {
                "ts": str(entry.ts),
                "wallTime": wall_time_ms(entry.ts),
                "function": _origin(context, entry),
                "writes": [_write_summary(w) for w in entry.writes[:LOG_WRITES_MAX]],
                "writeCount": float(len(entry.writes)),
            }
        )
    return listed


def commit(context: Any, tx: Transaction, args: dict[str, Any]) -> dict[str, Any]:
    ts = ts_arg(args, "ts")
    assert ts is not None
    if ts > tx.snapshot_ts:
        raise HeadwaterError(
            f"ts {ts} is newer than the newest commit {tx.snapshot_ts}.", code="BadArgs"
        )
    found = list(_log(context).read_range(ts, ts))
    if not found:
        raise HeadwaterError(f"There is no commit at ts {ts}.", code="CommitNotFound")
    entry = found[0]
    writes = []
    for write in entry.writes[:COMMIT_WRITES_MAX]:
        previous = None
        if write.prev_ts is not None:
            previous = tx.snapshot.version(decode_id(write.id).storage_key(), write.prev_ts)
        writes.append({**_write_summary(write), "value": write.value, "previous": previous})
    return {
        "ts": str(entry.ts),
        "wallTime": wall_time_ms(entry.ts),
        "function": _origin(context, entry),
        "writes": writes,
        "writeCount": float(len(entry.writes)),
    }


def history(context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    doc_id = string_arg(args, "id")
    try:
        parsed = decode_id(doc_id)
    except InvalidIdError as exc:
        raise bad_args(f"`id` is not a document id: {exc.message}") from exc
    if tx.table_name(parsed.table_number) is None:
        raise HeadwaterError(f"No document has the id {doc_id}.", code="DocumentNotFound")
    tx.get(doc_id)  # the read set: a new version re-runs the history
    versions = list(tx.snapshot.versions(parsed.storage_key()))
    if not versions:
        raise HeadwaterError(f"No document has the id {doc_id}.", code="DocumentNotFound")
    listed = []
    for i, (ts, value) in enumerate(versions):
        before = versions[i + 1][1] if i + 1 < len(versions) else None
        listed.append(
            {
                "ts": str(ts),
                "wallTime": wall_time_ms(ts),
                "value": value,
                "diff": field_diff(before, value),
            }
        )
    return listed


def field_diff(before: dict | None, after: dict | None) -> list[dict[str, Any]]:
    """The fields that differ, by dotted path (nested objects compared field by field)."""
    changes: list[dict[str, Any]] = []
    _diff(before or {}, after or {}, "", changes)
    return changes


def _diff(before: dict, after: dict, prefix: str, changes: list[dict[str, Any]]) -> None:
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        old, new = before.get(key, UNSET), after.get(key, UNSET)
        if old is not UNSET and new is not UNSET and values_equal(old, new):
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            _diff(old, new, f"{path}.", changes)
            continue
        change: dict[str, Any] = {"path": path}
        if old is not UNSET:
            change["before"] = old
        if new is not UNSET:
            change["after"] = new
        changes.append(change)
