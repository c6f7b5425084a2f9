"""The database syscalls of queries and mutations, answered from an engine Transaction.

Each op of spec/function-runtime.md §3.2 maps onto the transaction, so every
read builds the read set and every write goes through OCC at commit. Arguments
and results are Convex JSON text. A user's mistake (bad id, missing document,
a limit) becomes a ``SyscallError``: the function sees a rejected promise and
may catch it. A ``ConflictError`` is not the user's: it escapes, the call is
abandoned and the runner retries it from scratch.

Journals. A query function may paginate once per run. The end of its page
(``continueCursor``) is the run's journal (``next_journal``); the next run of
the same subscription is given it back (``journal``) and uses it as the page's
end bound when the function passes no ``endCursor`` itself, so a live page keeps
its end while documents come and go (spec/function-runtime.md §4.5). The
journal text is that cursor: opaque to clients, checked like any cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.commit_ts import (
    COMMIT_TS_KEY,
    from_uncommitted_json,
    index_range_stand_ins,
    to_uncommitted_json,
)
from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import ConflictError, HeadwaterError, InvalidIdError
from engine.pagination import DIFFERENT_QUERY_CURSOR, paginate
from engine.query_executor import QueryStream
from engine.query_spec import parse_query
from engine.transaction import Transaction
from udf.component_namespace import APP_NAMESPACE, ComponentNamespace
from udf.errors import SyscallError
from udf.scheduling_syscalls import scheduled_so_far

Handler = Callable[[dict[str, Any]], Any]
# An insert the runtime answered itself, with an id granted earlier (udf/js/syscalls.js):
# its promise has resolved, so its failure fails the whole run (BufferedWriteFailed).
BUFFERED_INSERT = "headwater/insertBuffered"


class BufferedWriteFailed(Exception):
    """A write the runtime buffered was refused. Not the user's error to catch: the
    mutation runs again from scratch with every write a round trip, where the same
    write fails at its call, with the same error, as it would have the first time."""


# Convex's PaginationUnsupportedInComponents (crates/isolate/src/environment/udf/async_syscall.rs).
PAGINATION_IN_COMPONENTS = (
    "paginate() is only supported in the app. Learn more at "
    "https://docs.convex.dev/components/authoring#pagination"
)
# Documents sent ahead per round trip when a query has no smaller limit.
QUERY_BATCH_DOCUMENTS_MAX = 128
_WRITE_OPS = frozenset(
    {"1.0/insert", BUFFERED_INSERT, "1.0/shallowMerge", "1.0/replace", "1.0/remove"}
)
# Ids handed to the runtime with an insert's answer: the first grant for a table,
# doubling with every grant up to the last size.
ID_GRANT_FIRST = 16
ID_GRANT_MAX = 4096
# The error data of a cursor of another query: the npm client restarts the pagination.
_INVALID_CURSOR_DATA = '{"isConvexSystemError":true,"paginationError":"InvalidCursor"}'


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class DatabaseSyscalls:
    """Answers ``1.0/*`` database ops for one function call inside ``tx``."""

    def __init__(
        self,
        tx: Transaction,
        *,
        read_only: bool = False,
        journal: str | None = None,
        namespace: ComponentNamespace = APP_NAMESPACE,
    ) -> None:
        self.tx = tx
        self.namespace = namespace  # the calling component's tables
        # A query run from a mutation (runQuery) shares its transaction but may not write.
        self.read_only = read_only or not tx.writable
        self._streams: dict[int, QueryStream] = {}
        self.journal = journal  # of the previous run: its page's end
        self.next_journal: str | None = None  # of this run, once it paginated
        self._ids_granted: dict[str, int] = {}  # by table, for the next grant's size
        self._placeholders = False  # whether this op's args hold a commit ts placeholder
        self.ops: dict[str, Handler] = {
            "1.0/get": self._get,
            "1.0/insert": self._insert,
            BUFFERED_INSERT: self._insert_buffered,
            "1.0/shallowMerge": self._shallow_merge,
            "1.0/replace": self._replace,
            "1.0/remove": self._remove,
            "1.0/queryStreamNext": self._query_stream_next,
            "1.0/queryCleanup": self._query_cleanup,
            "1.0/queryPage": self._query_page,
            "1.0/count": self._count,
            "1.0/getTransactionMetrics": self._metrics,
        }

    def handles(self, op: str) -> bool:
        return op in self.ops

    def handle(self, op: str, args_json: str) -> str:
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise SyscallError(f"Syscall {op} received invalid JSON arguments.") from exc
        if not isinstance(args, dict):
            raise SyscallError(f"Syscall {op} expects an object of arguments.")
        if self.read_only and op in _WRITE_OPS:
            raise SyscallError(
                "Cannot write to the database in a query: use a mutation for writes."
            )
        # Only a write's value may hold the commit ts placeholder (engine.commit_ts).
        self._placeholders = COMMIT_TS_KEY in args_json
        try:
            return _dump(self.ops[op](args))
        except ConflictError:
            raise
        except SyscallError as exc:
            if op == BUFFERED_INSERT:
                raise BufferedWriteFailed(exc.message) from exc
            raise
        except HeadwaterError as exc:
            if op == BUFFERED_INSERT:
                raise BufferedWriteFailed(exc.message) from exc
            if exc.message == DIFFERENT_QUERY_CURSOR:
                raise SyscallError(exc.message, _INVALID_CURSOR_DATA) from exc
            raise SyscallError(exc.message) from exc

    # -- documents ---------------------------------------------------------------

    def _get(self, args: dict[str, Any]) -> Any:
        doc_id = args.get("id")
        if self.namespace.foreign_id(doc_id, self.tx.table_name):
            return None  # another component's table is no table here
        try:
            doc = self.tx.get(doc_id, table=self._table_arg(args))  # type: ignore[arg-type]
        except InvalidIdError as exc:
            if exc.code == "InvalidTable":
                raise
            raise SyscallError(f"Invalid argument `id` for `db.get`: {exc.message}") from exc
        if doc is None or not self.namespace.sees_system_document(doc_id, doc, self.tx):
            return None
        return self._doc_json(doc)

    def _insert(self, args: dict[str, Any]) -> Any:
        table = args.get("table")
        if not isinstance(table, str):
            raise SyscallError("Invalid argument `table` for `db.insert`: expected a string.")
        table = self.namespace.table(table)
        value = self._value(args.get("value"), "value")
        if not isinstance(value, dict):
            raise SyscallError("Invalid argument `value` for `db.insert`: expected an object.")
        doc_id = self.tx.insert(table, value)
        granted = self._ids_granted.get(table, 0)
        ids = self.tx.reserve_ids(table, min(max(ID_GRANT_FIRST, granted), ID_GRANT_MAX))
        if not ids:
            return {"_id": doc_id}
        self._ids_granted[table] = granted + len(ids)
        return {"_id": doc_id, "ids": ids}

    def _insert_buffered(self, args: dict[str, Any]) -> Any:
        table, reserved_id = args.get("table"), args.get("id")
        if not isinstance(table, str) or not isinstance(reserved_id, str):
            raise SyscallError("Invalid arguments for a buffered insert.")
        table = self.namespace.table(table)
        value = self._value(args.get("value"), "value")
        if not isinstance(value, dict):
            raise SyscallError("Invalid argument `value` for `db.insert`: expected an object.")
        self.tx.insert(table, value, reserved_id=reserved_id)
        return None

    def _shallow_merge(self, args: dict[str, Any]) -> Any:
        raw = args.get("value")
        if not isinstance(raw, dict):
            raise SyscallError("Invalid argument `value` for `db.patch`: expected an object.")
        fields = {key: self._value(val, key, allow_undefined=True) for key, val in raw.items()}
        doc_id = self._own_id(args, "db.patch", "Update")
        doc = self.tx.patch(doc_id, fields, table=self._table_arg(args))
        return self._doc_json(doc)

    def _replace(self, args: dict[str, Any]) -> Any:
        value = self._value(args.get("value"), "value")
        if not isinstance(value, dict):
            raise SyscallError("Invalid argument `value` for `db.replace`: expected an object.")
        doc_id = self._own_id(args, "db.replace", "Update")
        doc = self.tx.replace(doc_id, value, table=self._table_arg(args))
        return self._doc_json(doc)

    def _remove(self, args: dict[str, Any]) -> Any:
        doc_id = self._own_id(args, "db.delete", "Delete")
        doc = self.tx.delete(doc_id, table=self._table_arg(args))
        return self._doc_json(doc)

    def _value(self, raw: Any, path: str, *, allow_undefined: bool = False) -> Any:
        if self._placeholders:
            return from_uncommitted_json(raw, path=path, allow_undefined=allow_undefined)
        return from_convex_json(raw, path=path, allow_undefined=allow_undefined)

    def _doc_json(self, doc: dict) -> Any:
        """A document as the function reads it: this mutation's own writes show their
        commit ts placeholders, not the stand-in value."""
        paths = self.tx.commit_ts.paths_of(doc["_id"])
        return to_uncommitted_json(doc, paths) if paths else to_convex_json(doc)

    def _table_arg(self, args: dict[str, Any]) -> Any:
        table = args.get("table")
        return None if table is None else self.namespace.table(table)

    def _own_id(self, args: dict[str, Any], verb: str, action: str) -> str:
        """The id of a write, refused as a nonexistent document when it is an id of
        another component's table (Convex resolves ids in the caller's namespace)."""
        doc_id = _id(args, verb)
        if self.namespace.foreign_id(doc_id, self.tx.table_name):
            raise SyscallError(f"{action} on nonexistent document ID {doc_id}")
        return doc_id

    def _parse_query(self, raw: Any) -> Any:
        if self._placeholders:
            raw = index_range_stand_ins(raw)
        raw = self.namespace.scope_system_query(raw)
        spec = parse_query(raw)
        if self.namespace.is_app:
            return spec
        source = replace(spec.source, table=self.namespace.table(spec.source.table))
        return replace(spec, source=source)

    # -- queries -------------------------------------------------------------------

    def _query_stream_next(self, args: dict[str, Any]) -> Any:
        query_id = args.get("queryId")
        stream = self._streams.get(query_id)  # type: ignore[arg-type]
        if stream is None:
            if "query" not in args:
                raise SyscallError(f"Query with id {query_id} not found.")
            stream = QueryStream(self.tx, self._parse_query(args["query"]))
            self._streams[query_id] = stream  # type: ignore[index]
        if not args.get("batch"):
            doc = stream.next()
            if doc is None:
                self._streams.pop(query_id, None)  # type: ignore[arg-type]
                return {"value": None, "done": True}
            return {"value": self._doc_json(doc), "done": False}
        # The runtime asks for documents ahead: up to the query's own limit (so take,
        # first and unique read exactly what they return) or a batch.
        docs = []
        while len(docs) < QUERY_BATCH_DOCUMENTS_MAX:
            doc = stream.next()
            if doc is None:
                break
            docs.append(self._doc_json(doc))
        exhausted = len(docs) < QUERY_BATCH_DOCUMENTS_MAX
        if exhausted:
            self._streams.pop(query_id, None)  # type: ignore[arg-type]
        if not docs:
            return {"value": None, "done": True}
        return {"value": docs[0], "done": False, "batch": docs[1:], "batchDone": exhausted}

    def _query_cleanup(self, args: dict[str, Any]) -> Any:
        return self._streams.pop(args.get("queryId"), None) is not None  # type: ignore[arg-type]

    def _query_page(self, args: dict[str, Any]) -> Any:
        if not self.namespace.is_app:
            raise SyscallError(PAGINATION_IN_COMPONENTS)
        end_cursor = args.get("endCursor")
        result = paginate(
            self.tx,
            self._parse_query(args.get("query")),
            args.get("cursor"),
            _whole(args.get("pageSize")),  # type: ignore[arg-type]
            end_cursor=self.journal if end_cursor is None else end_cursor,
            maximum_rows_read=_whole(args.get("maximumRowsRead")),  # type: ignore[arg-type]
            maximum_bytes_read=_whole(args.get("maximumBytesRead")),  # type: ignore[arg-type]
        )
        # Checked after the page, as the reference does: the first page stands.
        if self.next_journal is not None:
            raise SyscallError(
                "This query or mutation function ran multiple paginated queries. Convex only "
                "supports a single paginated query in each function."
            )
        self.next_journal = result.continue_cursor
        return {
            "page": [self._doc_json(doc) for doc in result.page],
            "isDone": result.is_done,
            "continueCursor": result.continue_cursor,
            "splitCursor": result.split_cursor,
            "pageStatus": result.page_status,
        }

    def _count(self, args: dict[str, Any]) -> Any:
        table = args.get("table")
        if not isinstance(table, str):
            raise SyscallError("Invalid argument `table` for count: expected a string.")
        table = self.namespace.table(table)
        index_id = f"{table}.by_id"
        self.tx.count_index_range()
        self.tx.reads.add(index_id, b"", None)
        stored = sum(1 for _ in self.tx.snapshot.scan(index_id, b"", None, False))
        for write in self.tx.pending_writes_of(table):
            exists_before = write.prev_ts is not None
            exists_after = write.value is not None
            stored += int(exists_after) - int(exists_before)
        return float(stored)

    def _metrics(self, args: dict[str, Any]) -> Any:
        tx, lim = self.tx, self.tx.limits
        scheduled_count, scheduled_bytes = scheduled_so_far(tx)

        def pair(used: int, limit: int) -> dict[str, float]:
            return {"used": float(used), "remaining": float(max(limit - used, 0))}

        return {
            "bytesRead": pair(tx.bytes_read, lim.read_bytes_max),
            "bytesWritten": pair(tx.bytes_written, lim.written_bytes_max),
            "databaseQueries": pair(tx.index_ranges, lim.index_ranges_max),
            "documentsRead": pair(tx.documents_read, lim.documents_read_max),
            "documentsWritten": pair(tx.documents_written, lim.documents_written_max),
            "functionsScheduled": pair(scheduled_count, lim.functions_scheduled_max),
            "scheduledFunctionArgsBytes": pair(scheduled_bytes, lim.scheduled_args_bytes_max),
        }


def _whole(number: Any) -> Any:
    """A JS number that is a whole number as an int (the npm package sends floats)."""
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _id(args: dict[str, Any], verb: str) -> str:
    doc_id = args.get("id")
    if not isinstance(doc_id, str):
        raise SyscallError(f"Invalid argument `id` for `{verb}`: expected an id string.")
    return doc_id
