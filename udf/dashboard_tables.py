"""`data:tables` and `data:page`: the table list with counts, and pages of a table.

A page is an index range scan (``by_creation_time`` unless another index of the
table is named) in either order, the filters applied to each row as it is read
(``udf.dashboard_filters``). The scan has a budget (``SCAN_ROWS_MAX`` rows) as
Convex's dashboard has: a selective filter over a large table returns what the
budget found and a cursor to go on from (``isDone`` false, maybe an empty page)
instead of reading the whole table. Cursors are the engine's pagination cursors,
so a cursor of another table, index, order or filter set is refused. Both run
in the call's transaction, so their read sets make them live.

At a past ts, a newest-first page by creation time starts at the newest creation
time a document committed by then can have (``CREATION_SLACK_MS`` after the ts):
the versioned index holds every later document too, and walking past them would
cost as much as the table grew since. Caveats: a document imported with a
``_creationTime`` later than its import's commit, or committed while the wall clock
stepped back, is left out of such pages.
"""

from __future__ import annotations

from typing import Any

from engine.components import split_table
from engine.errors import HeadwaterError
from engine.pagination import paginate
from engine.query_builders import build_range
from engine.query_spec import FilterOp, IndexRangeSource, QuerySpec
from engine.system_tables import TABLES_TABLE, is_system_table
from engine.transaction import Transaction
from udf.dashboard_args import count_arg, optional_string, table_arg
from udf.dashboard_counts import table_counts
from udf.dashboard_filters import compile_filters

PAGE_ITEMS_MAX = 200
SCAN_ROWS_MAX = 5_000
SCAN_BYTES_MAX = 8 << 20
# How far a document's _creationTime may be after its commit ts: float rounding. A
# creation time is its transaction's start on the wall clock, advanced by one float step
# per insert (far less than an insert takes), and the commit ts is read from the same
# clock later, so with a clock that never steps back it is never later than the commit.
CREATION_SLACK_MS = 0.001


def list_tables(context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    names = sorted(
        (split_table(doc["name"]), doc["name"])
        for doc in tx.query(TABLES_TABLE).collect()
        if not is_system_table(split_table(doc["name"])[1])
    )
    qualified = [name for _, name in names]
    counts = table_counts(context.db).counts(tx, qualified)
    schema = tx.snapshot_schema()
    # Tables the schema declares that have no document yet are listed, empty.
    declared = [(split_table(name), name) for name in schema.tables if name not in counts]
    listed = []
    for (component, table), name in sorted(names + declared):
        # Any write to the table changes its count: the whole id index is read.
        tx.reads.add(f"{name}.by_id", b"", None)
        listed.append(
            {
                "name": name,
                "component": component,
                "table": table,
                "count": float(counts.get(name, 0)),
                "hasSchema": name in schema.tables,
            }
        )
    return listed


def _past_creation_bound(tx: Transaction) -> tuple[Any, ...]:
    """At a past ts, newest first by creation: start at the newest creation time a
    document of that commit can have, instead of walking past every later one."""
    if tx.snapshot.is_latest:
        return ()
    bound_ms = tx.snapshot_ts / 1e6 + CREATION_SLACK_MS
    return build_range(lambda q: q.lte("_creationTime", bound_ms))


def page(_context: Any, tx: Transaction, args: dict[str, Any]) -> dict[str, Any]:
    table = table_arg(tx, args)
    index = args.get("index") or "by_creation_time"
    if not isinstance(index, str):
        raise HeadwaterError("`index` must be an index name.", code="BadArgs")
    order = args.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise HeadwaterError(f'`order` must be "asc" or "desc", got {order!r}.', code="BadArgs")
    expr = compile_filters(args.get("filters"))
    cursor = optional_string(args, "cursor")
    num_items = count_arg(args, "numItems", PAGE_ITEMS_MAX)
    operators = () if expr is None else (FilterOp(expr),)
    ranges = _past_creation_bound(tx) if (index, order) == ("by_creation_time", "desc") else ()
    spec = QuerySpec(IndexRangeSource(table, index, ranges, order), operators)
    limits = tx.limits
    result = paginate(
        tx,
        spec,
        cursor,
        num_items,
        maximum_rows_read=min(SCAN_ROWS_MAX, limits.documents_read_max // 2),
        maximum_bytes_read=min(SCAN_BYTES_MAX, limits.read_bytes_max // 2),
    )
    return {
        "page": result.page,
        "continueCursor": None if result.is_done else result.continue_cursor,
        "isDone": result.is_done,
        "ts": str(tx.snapshot_ts),
    }
