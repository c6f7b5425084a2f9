"""What pagination tests share: a table, the query shapes to page through, and a
client that keeps its pages live the way the npm ``PaginatedQueryClient`` does.

``LivePages`` holds a paginated query as the client does: a list of pages,
each subscribed with its start cursor (and, for the halves of a split page, an
explicit ``endCursor``), re-run with the journal of its previous run, split
when the server says so (``splitCursor`` with ``pageStatus``, or a page over
twice the page size), and extended with ``load_more``. Pages run through the
function runtime's ``1.0/queryPage`` host code (``DatabaseSyscalls``) over a
real engine transaction, so the journals are the real ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from engine import Database
from engine.convex_json import from_convex_json
from engine.query_executor import QueryStream
from engine.query_spec import parse_query
from udf.database_syscalls import DatabaseSyscalls

ITEMS_SCHEMA = {
    "tables": [
        {
            "tableName": "items",
            "indexes": [{"indexDescriptor": "by_a", "fields": ["a"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": {
                "type": "object",
                "value": {
                    "a": {"fieldType": {"type": "number"}, "optional": False},
                    "b": {"fieldType": {"type": "number"}, "optional": False},
                },
            },
        }
    ],
    "schemaValidation": True,
}
A_VALUES = 4  # few values of the indexed field: many ties, broken by _id
B_VALUES = 3


def query_json(source: str, order: str, lo: int | None, hi: int | None, keep_b0: bool) -> dict:
    """A query over ``items``: the whole table or an ``a`` range of by_a, in ``order``,
    with or without a filter that drops the documents whose ``b`` is 0."""
    if source == "table":
        src: dict[str, Any] = {"type": "FullTableScan", "tableName": "items", "order": order}
    else:
        ranges = []
        if lo is not None:
            ranges.append({"type": "Gte", "fieldPath": "a", "value": float(lo)})
        if hi is not None:
            ranges.append({"type": "Lt", "fieldPath": "a", "value": float(hi)})
        src = {"type": "IndexRange", "indexName": "items.by_a", "range": ranges, "order": order}
    operators = []
    if not keep_b0:
        operators.append({"filter": {"$neq": [{"$field": "b"}, {"$literal": 0.0}]}})
    return {"source": src, "operators": operators}


def queries() -> st.SearchStrategy[dict]:
    bound = st.none() | st.integers(0, A_VALUES)
    return st.builds(
        query_json,
        st.sampled_from(["table", "by_a"]),
        st.sampled_from(["asc", "desc"]),
        bound,
        bound,
        st.booleans(),
    )


def full_result(db: Database, query: dict) -> list[str]:
    """The ids the unpaginated query returns now."""
    spec = parse_query(query)
    return db.query(lambda tx: [d["_id"] for d in QueryStream(tx, spec)]).value


@dataclass
class Page:
    cursor: str | None
    end_cursor: str | None = None  # explicit: only the halves of a split page have one
    journal: str | None = None
    result: dict | None = None


class LivePages:
    """A paginated query kept live the way the npm client keeps it (module doc)."""

    def __init__(self, db: Database, query: dict, page_size: int) -> None:
        self.db = db
        self.query = query
        self.page_size = page_size
        self.pages = [Page(None)]
        self.splits = 0
        self.refresh()

    def run_page(self, page: Page) -> None:
        """One (re-)run of a page's subscription: its journal in, the new journal out."""
        args = {
            "query": self.query,
            "cursor": page.cursor,
            "endCursor": page.end_cursor,
            "pageSize": float(self.page_size),
            "maximumRowsRead": None,
            "version": "1.48.0",
        }

        def run(tx):
            syscalls = DatabaseSyscalls(tx, read_only=True, journal=page.journal)
            answer = json.loads(syscalls.handle("1.0/queryPage", json.dumps(args)))
            return answer, syscalls.next_journal

        page.result, page.journal = self.db.query(run).value

    def refresh(self) -> None:
        """Every page re-runs (what invalidation does to the pages a change touched;
        an untouched page's re-run returns its old result), then splits complete."""
        for page in self.pages:
            self.run_page(page)
        self._split_big_pages()

    def load_more(self) -> bool:
        last = self.pages[-1].result
        assert last is not None
        if last["isDone"]:
            return False
        page = Page(last["continueCursor"])
        self.pages.append(page)
        self.run_page(page)
        self._split_big_pages()
        return True

    def ids(self) -> list[str]:
        out: list[str] = []
        for page in self.pages:
            assert page.result is not None
            out.extend(from_convex_json(doc)["_id"] for doc in page.result["page"])
        return out

    def done(self) -> bool:
        last = self.pages[-1].result
        return last is not None and bool(last["isDone"])

    def _split_big_pages(self) -> None:
        """The client's rule: split at splitCursor when the server asks, or when a page
        holds over twice the page size; the halves replace the page once both ran."""
        out: list[Page] = []
        for page in self.pages:
            result = page.result
            assert result is not None
            split = result["splitCursor"]
            wanted = result["pageStatus"] in ("SplitRecommended", "SplitRequired") or (
                len(result["page"]) > 2 * self.page_size
            )
            if split is None or not wanted:
                out.append(page)
                continue
            first = Page(page.cursor, split)
            second = Page(split, result["continueCursor"])
            self.run_page(first)
            self.run_page(second)
            out.extend([first, second])
            self.splits += 1
        self.pages = out
