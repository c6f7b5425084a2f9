"""Live pagination through the runtime's queryPage and its journals: under any
sequence of inserts, deletes and updates at and between page boundaries, the
pages a client holds — each re-run with the journal of its previous run, split
when the server says so — concatenate to the query's whole result: nothing
lost, nothing twice. In both orders, over index ranges and filters, at page
sizes from 1 up; then the same journals through V8 and the executor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pagination_model import (
    A_VALUES,
    B_VALUES,
    ITEMS_SCHEMA,
    LivePages,
    full_result,
    queries,
    query_json,
)

from engine import Database
from udf.calls import FunctionCall
from udf.database_syscalls import DatabaseSyscalls
from udf.errors import SyscallError
from udf.executor import Executor

a_values = st.integers(0, A_VALUES)
b_values = st.integers(0, B_VALUES - 1)
# A step: a write anywhere, a write at the last document of a page (the boundary),
# or the client loading one more page.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), a_values, b_values),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("update"), st.integers(0, 50), a_values, b_values),
        st.tuples(st.just("insert_at_boundary"), st.integers(0, 9), b_values),
        st.tuples(st.just("delete_boundary"), st.integers(0, 9)),
        st.tuples(st.just("update_boundary"), st.integers(0, 9), a_values, b_values),
        st.just(("load_more",)),
    ),
    max_size=12,
)
initial = st.lists(st.tuples(a_values, b_values), max_size=8)


@pytest.fixture
def items_db(db):
    db.set_schema(ITEMS_SCHEMA)
    return db


def _reset(db: Database, values: list[tuple[int, int]]) -> None:
    def body(tx):
        for doc in tx.query("items").collect():
            tx.delete(doc["_id"])
        for a, b in values:
            tx.insert("items", {"a": float(a), "b": float(b)})

    db.mutate(body)


def _boundary(live: LivePages, page_number: int) -> dict | None:
    """The last document of one of the client's pages (None if that page is empty)."""
    page = live.pages[page_number % len(live.pages)].result
    assert page is not None
    return page["page"][-1] if page["page"] else None


def _apply(db: Database, live: LivePages, step: tuple) -> None:
    kind = step[0]
    everything = db.query(lambda tx: tx.query("items").collect()).value
    if kind == "load_more":
        live.load_more()
        return
    if kind == "insert":
        db.mutate(lambda tx: tx.insert("items", {"a": float(step[1]), "b": float(step[2])}))
        return
    if kind == "insert_at_boundary":
        doc = _boundary(live, step[1])
        if doc is not None:  # a tie with the boundary document, just after it by creation time
            db.mutate(lambda tx: tx.insert("items", {"a": doc["a"], "b": float(step[2])}))
        return
    if kind in ("delete", "update"):
        if not everything:
            return
        target = everything[step[1] % len(everything)]["_id"]
    else:
        doc = _boundary(live, step[1])
        if doc is None:
            return
        target = doc["_id"]
    if kind.startswith("delete"):
        db.mutate(lambda tx: tx.delete(target))
    else:
        a, b = float(step[-2]), float(step[-1])
        db.mutate(lambda tx: tx.patch(target, {"a": a, "b": b}))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=initial, query=queries(), page_size=st.integers(1, 4), script=steps)
# The case: page 1 of two, a document inserted inside page 1.
@example(
    values=[(0, 1), (1, 1), (2, 1), (3, 1)],
    query=query_json("by_a", "asc", None, None, True),
    page_size=2,
    script=[("load_more",), ("insert", 0, 1)],
)
# Descending, the boundary document of page 1 deleted: page 2 must not repeat one.
@example(
    values=[(0, 1), (1, 1), (2, 1), (3, 1)],
    query=query_json("by_a", "desc", None, None, True),
    page_size=2,
    script=[("load_more",), ("delete_boundary", 0)],
)
def test_live_pages_lose_nothing_and_repeat_nothing(items_db, values, query, page_size, script):
    _reset(items_db, values)
    live = LivePages(items_db, query, page_size)
    for step in script:
        _apply(items_db, live, step)
        live.refresh()
        held, whole = live.ids(), full_result(items_db, query)
        assert len(set(held)) == len(held), f"a document twice after {step}"
        if live.done():
            assert held == whole, f"after {step}"
        else:
            assert held == whole[: len(held)], f"a gap after {step}"
    for _ in range(60):
        if not live.load_more():
            break
    assert live.ids() == full_result(items_db, query)


def test_a_page_that_grew_past_twice_its_size_is_split_gaplessly(items_db):
    query = query_json("by_a", "asc", None, None, True)
    _reset(items_db, [(1, 0), (2, 0), (3, 0)])
    live = LivePages(items_db, query, 2)
    live.load_more()
    _reset(items_db, [(1, 0), (1, 0), (1, 0), (1, 0), (1, 0), (2, 0), (3, 0)])
    live.refresh()
    assert live.splits >= 1
    assert live.ids() == full_result(items_db, query)


def _query_page(db: Database, args: dict, journal: str | None = None):
    def run(tx):
        syscalls = DatabaseSyscalls(tx, read_only=True, journal=journal)
        answer = json.loads(syscalls.handle("1.0/queryPage", json.dumps(args)))
        return answer, syscalls.next_journal

    return db.query(run).value


def test_the_journal_is_the_page_end_and_bounds_the_next_run(items_db):
    _reset(items_db, [(0, 0), (1, 0), (2, 0), (3, 0)])
    args = {"query": query_json("by_a", "asc", None, None, True), "cursor": None, "pageSize": 2}
    page, journal = _query_page(items_db, args)
    assert journal == page["continueCursor"] and len(page["page"]) == 2
    items_db.mutate(lambda tx: tx.insert("items", {"a": 0.5, "b": 0.0}))
    again, journal_again = _query_page(items_db, args, journal)
    assert len(again["page"]) == 3 and journal_again == journal
    fresh, _ = _query_page(items_db, args)  # no journal: a new subscription pages afresh
    assert len(fresh["page"]) == 2


def test_an_explicit_end_cursor_wins_over_the_journal(items_db):
    _reset(items_db, [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)])
    args = {"query": query_json("by_a", "asc", None, None, True), "cursor": None, "pageSize": 5}
    whole, journal = _query_page(items_db, args)
    assert whole["splitCursor"] is not None
    half, half_journal = _query_page(items_db, {**args, "endCursor": whole["splitCursor"]}, journal)
    assert half["page"] == whole["page"][:3] and half_journal == whole["splitCursor"]


def test_a_journal_of_another_query_fails_with_the_clients_reset_signal(items_db):
    _reset(items_db, [(0, 0), (1, 0), (2, 0)])
    asc = {"query": query_json("by_a", "asc", None, None, True), "cursor": None, "pageSize": 1}
    desc = {**asc, "query": query_json("by_a", "desc", None, None, True)}
    _, journal = _query_page(items_db, desc)
    with pytest.raises(SyscallError, match="^InvalidCursor: ") as info:
        _query_page(items_db, asc, journal)
    assert json.loads(info.value.data_json) == {
        "isConvexSystemError": True,
        "paginationError": "InvalidCursor",
    }


def test_a_second_paginated_query_in_one_run_is_refused(items_db):
    _reset(items_db, [(0, 0)])
    args = {"query": query_json("by_a", "asc", None, None, True), "cursor": None, "pageSize": 1}

    def run(tx):
        syscalls = DatabaseSyscalls(tx, read_only=True)
        syscalls.handle("1.0/queryPage", json.dumps(args))
        syscalls.handle("1.0/queryPage", json.dumps(args))

    with pytest.raises(SyscallError, match="ran multiple paginated queries"):
        items_db.query(run)


# -- the same through V8: a deployed function, the executor, FunctionCall.journal ---------

PAGES_APP = Path(__file__).resolve().parents[1] / "e2e" / "pages_app" / "convex"


@pytest.fixture(scope="module")
def pages_executor(tmp_path_factory):
    app = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(PAGES_APP, app)
    db = Database.open(tmp_path_factory.mktemp("data"))
    executor = Executor(db)
    executor.deploy(app)
    yield executor
    executor.close()
    db.close()


def _list(executor, journal=None, order="asc", num_items=2.0):
    args = {"order": order, "paginationOpts": {"cursor": None, "numItems": num_items}}
    return executor.run(FunctionCall("items:list", args, "query", journal=journal))


def test_a_deployed_query_returns_its_journal_and_keeps_its_end_with_it(pages_executor):
    ex = pages_executor
    ex.run(FunctionCall("items:insert", {"ranks": [1.0, 2.0, 3.0]}, "mutation"))
    first = _list(ex)
    assert first.error is None and first.journal == first.value["continueCursor"]
    ex.run(FunctionCall("items:insert", {"ranks": [1.5]}, "mutation"))
    kept = _list(ex, first.journal)
    assert [d["rank"] for d in kept.value["page"]] == [1.0, 1.5, 2.0]
    assert kept.journal == first.journal and not kept.value["isDone"]
    assert [d["rank"] for d in _list(ex).value["page"]] == [1.0, 1.5]  # no journal: afresh
    bad = _list(ex, "garbage")
    assert "Failed to parse cursor" in bad.error.message and bad.journal is None
    other = _list(ex, first.journal, order="desc")
    assert "InvalidCursor: Tried to run a query starting from a cursor" in other.error.message
    two = ex.run(FunctionCall("items:twoPages", {}, "query"))
    assert "ran multiple paginated queries" in two.error.message
    assert two.journal is not None  # the first page's end stands
