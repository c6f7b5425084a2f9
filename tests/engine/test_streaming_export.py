"""Streaming export: list_snapshot pages and document_deltas, while commits go on."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from engine import InvalidQueryError, SnapshotOutOfRangeError
from engine.streaming_export import document_deltas, list_snapshot

NO_SUCH_TABLE = '{"table":"nope","id":"x"}'


def _fill(db, rng: random.Random, live: list[str], n: int) -> None:
    for _ in range(n):
        op = rng.random()
        table = rng.choice(["alpha", "beta", "gamma"])
        if op < 0.5 or not live:
            k = rng.randint(1, 5)
            live.extend(
                db.mutate(lambda tx, t=table, k=k: [tx.insert(t, {"k": j}) for j in range(k)]).value
            )
        elif op < 0.8:
            doc = rng.choice(live)
            db.mutate(lambda tx, d=doc: tx.patch(d, {"k": rng.random()}))
        else:
            doc = live.pop(rng.randrange(len(live)))
            db.mutate(lambda tx, d=doc: tx.delete(d))


def _state_at(db, ts: int) -> dict[str, dict]:
    def read(tx):
        return {
            doc["_id"]: (table, doc)
            for table in ("alpha", "beta", "gamma")
            if tx.table_number(table) is not None
            for doc in tx.query(table).collect()
        }

    return db.query(read, ts=ts).value


def _page_snapshot(db, page_size: int, **options):
    pages = []
    page = list_snapshot(db, page_size=page_size, **options)
    pages.append(page)
    while page.has_more:
        time.sleep(0.002)  # let concurrent commits land between pages
        page = list_snapshot(db, page.snapshot, page.cursor, page_size=page_size, **options)
        pages.append(page)
    return pages


@pytest.mark.slow
def test_snapshot_then_deltas_replay_every_change_once_under_concurrent_commits(db):
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    live: list[str] = []
    _fill(db, rng, live, 40)
    stop = threading.Event()

    def writer() -> None:
        writer_rng = random.Random(seed + 1)
        while not stop.is_set():
            _fill(db, writer_rng, live, 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        pages = _page_snapshot(db, 7)
        snapshot = pages[0].snapshot
        assert all(p.snapshot == snapshot for p in pages)
        assert db.latest_ts() > snapshot, "no commit landed while paging"
        rows = [row for p in pages for row in p.values]
        # Table by table, then by _id; no repeats; exactly the state at the snapshot.
        keys = [(r["_table"], r["_id"]) for r in rows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        state = {r["_id"]: r for r in rows}
        expected = _state_at(db, snapshot)
        assert set(state) == set(expected)
        for doc_id, (table, doc) in expected.items():
            row = state[doc_id]
            assert row["_table"] == table and row["_component"] == ""
            assert {k: v for k, v in row.items() if not k.startswith("_") or k in doc} == doc
        # Follow the deltas while commits continue, then to the end.
        cursor, seen, page_last = snapshot, set(), []
        for _ in range(10):
            page = document_deltas(db, cursor, rows_max=5)
            cursor = _apply(page, state, seen, page_last)
    finally:
        stop.set()
        thread.join()
    page = document_deltas(db, cursor, rows_max=5)
    while True:
        cursor = _apply(page, state, seen, page_last)
        if not page.has_more:
            break
        page = document_deltas(db, cursor, rows_max=5)
    assert cursor == db.latest_ts()
    final = _state_at(db, db.latest_ts())
    assert {k: row["_table"] for k, row in state.items()} == {k: t for k, (t, _) in final.items()}
    # Pages never split a transaction: each page's commits all come after the previous page's.
    for (_, last), (first, _) in zip(page_last, page_last[1:], strict=False):
        assert last < first


def _apply(page, state, seen, page_last) -> int:
    order = [(r["_ts"], r["_id"]) for r in page.values]
    assert order == sorted(order)
    for row in page.values:
        assert (row["_ts"], row["_id"]) not in seen
        seen.add((row["_ts"], row["_id"]))
        if row["_deleted"]:
            assert set(row) == {"_component", "_table", "_ts", "_deleted", "_id"}
            state.pop(row["_id"], None)
        else:
            state[row["_id"]] = row
    if page.values:
        page_last.append((page.values[0]["_ts"], page.values[-1]["_ts"]))
        if page.has_more:
            assert page.cursor == page.values[-1]["_ts"]
    return page.cursor


def test_a_page_holds_whole_transactions_and_the_cursor_moves_to_the_end(db):
    start = db.latest_ts()
    big = db.mutate(lambda tx: [tx.insert("items", {"i": i}) for i in range(10)])
    small = db.mutate(lambda tx: tx.insert("items", {"i": 99}))
    page = document_deltas(db, start, rows_max=3)
    assert len(page.values) == 10 and page.has_more and page.cursor == big.ts
    assert [r["_id"] for r in page.values] == sorted(big.value)
    page = document_deltas(db, page.cursor, rows_max=3)
    assert [r["_id"] for r in page.values] == [small.value]
    assert not page.has_more and page.cursor == db.latest_ts()
    page = document_deltas(db, page.cursor)
    assert page.values == [] and not page.has_more and page.cursor == db.latest_ts()


def test_formats_keep_ts_an_integer_and_deleted_rows_hold_only_the_id(db):
    start = db.latest_ts()
    doc_id = db.mutate(lambda tx: tx.insert("items", {"n": 7, "b": b"\x01"})).value
    db.mutate(lambda tx: tx.delete(doc_id))
    clean = document_deltas(db, start, format="json").values
    assert clean[0]["n"] == "7" and clean[0]["b"] == "AQ==" and type(clean[0]["_ts"]) is int
    assert clean[1] == {
        "_component": "",
        "_table": "items",
        "_ts": clean[1]["_ts"],
        "_deleted": True,
        "_id": doc_id,
    }
    encoded = document_deltas(db, start, format="convex_encoded_json").values
    assert encoded[0]["n"] == {"$integer": "BwAAAAAAAAA="}
    assert json.loads(json.dumps(encoded)) == encoded
    raw = document_deltas(db, start).values
    assert raw[0]["n"] == 7 and raw[0]["b"] == b"\x01"


def test_table_filter_and_system_tables_stay_out(chat_db):
    chat_db.mutate(lambda tx: tx.insert("other", {"x": 1.0}))
    chat_db.mutate(lambda tx: tx.insert("keep", {"x": 2.0}))
    tables = {r["_table"] for r in list_snapshot(chat_db).values}
    assert tables == {"other", "keep"}
    assert {r["_table"] for r in list_snapshot(chat_db, table="keep").values} == {"keep"}
    deltas = document_deltas(chat_db, chat_db.first_ts() - 1, rows_max=1000).values
    assert {r["_table"] for r in deltas} == {"other", "keep"}
    assert list_snapshot(chat_db, table="missing").values == []


def test_a_snapshot_is_read_at_its_own_ts(db):
    doc_id = db.mutate(lambda tx: tx.insert("items", {"v": 1.0})).value
    first = list_snapshot(db)
    db.mutate(lambda tx: tx.patch(doc_id, {"v": 2.0}))
    db.mutate(lambda tx: tx.insert("items", {"v": 3.0}))
    again = list_snapshot(db, first.snapshot)
    assert again.values == first.values and again.values[0]["v"] == 1.0


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda db: document_deltas(db, None), "DocumentDeltasCursorRequired"),
        (lambda db: document_deltas(db, 5), "InvalidWindowToReadDocuments"),
        (lambda db: document_deltas(db, db.latest_ts() + 10), "InvalidCursor"),
        (lambda db: document_deltas(db, "1"), "InvalidCursor"),
        (lambda db: document_deltas(db, db.latest_ts(), rows_max=0), "InvalidQuery"),
        (lambda db: document_deltas(db, db.latest_ts(), table="_tables"), "InvalidTableName"),
        (lambda db: list_snapshot(db, format="yaml"), "BadFormat"),
        (lambda db: list_snapshot(db, cursor='{"table":"items","id":"x"}'), "InvalidCursor"),
        (lambda db: list_snapshot(db, db.latest_ts(), cursor="nonsense"), "InvalidCursor"),
        (lambda db: list_snapshot(db, db.latest_ts(), cursor=NO_SUCH_TABLE), "InvalidCursor"),
        (lambda db: list_snapshot(db, table="not a table"), "InvalidTableName"),
        (lambda db: list_snapshot(db, page_size=10**9), "InvalidQuery"),
    ],
)
def test_bad_arguments_get_clear_errors(db, call, code):
    db.mutate(lambda tx: tx.insert("items", {"v": 1.0}))
    with pytest.raises(InvalidQueryError) as info:
        call(db)
    assert info.value.code == code


def test_a_snapshot_outside_the_retained_history_is_refused(db):
    with pytest.raises(SnapshotOutOfRangeError):
        list_snapshot(db, snapshot_ts=db.first_ts() - 1)
    with pytest.raises(SnapshotOutOfRangeError):
        list_snapshot(db, snapshot_ts=db.latest_ts() + 1)
