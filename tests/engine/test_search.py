"""Text and vector search through the Database: exact at every snapshot, live, recoverable."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Database
from engine.errors import ConflictError, InvalidQueryError, LimitExceededError
from engine.recovery import rebuild_projections
from projections.text_search import bm25, idf, split_words, tokenize

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("search_crash_writer.py")
WORDS = ["apple", "apricot", "april", "banana", "band", "bandana", "cherry", "chess", "date"]
CHANNELS = ["a", "b"]


def schema(search: bool = True, vector: bool = True) -> dict:
    table = {
        "tableName": "messages",
        "indexes": [],
        "searchIndexes": [
            {"indexDescriptor": "search_body", "searchField": "body", "filterFields": ["channel"]}
        ]
        if search
        else [],
        "vectorIndexes": [
            {
                "indexDescriptor": "by_embedding",
                "vectorField": "embedding",
                "dimensions": 4,
                "filterFields": ["channel"],
            }
        ]
        if vector
        else [],
        "documentType": None,
    }
    return {"tables": [table], "schemaValidation": False}


def search(tx, text: str, channel: str | None = None, n: int | None = None) -> list[dict]:
    def build(q):
        q = q.search("body", text)
        return q if channel is None else q.eq("channel", channel)

    query = tx.query("messages").with_search_index("search_body", build)
    return query.collect() if n is None else query.take(n)


def brute_force(docs: list[dict], text: str, channel: str | None, k: int) -> list[str]:
    """The reference: BM25 over exactly the given documents (engine.search's definition)."""
    words = split_words(text)
    if not words:
        return []
    terms, prefix = list(dict.fromkeys(words[:-1])), words[-1]
    indexed = [(d, tokenize(d["body"])) for d in docs if isinstance(d.get("body"), str)]
    if not indexed:
        return []
    df: Counter[str] = Counter()
    for _, tokens in indexed:
        df.update(set(tokens))
    avg = sum(len(t) for _, t in indexed) / len(indexed)
    prefixed = sorted(t for t in df if t.startswith(prefix))
    weights = [(t, idf(len(indexed), df[t])) for t in [*terms, *prefixed] if df[t] > 0]
    scored = []
    for doc, tokens in indexed:
        counts = Counter(tokens)
        if channel is not None and doc.get("channel") != channel:
            continue
        if any(t in counts for t, _ in weights):
            scored.append((bm25(weights, counts, len(tokens), avg), doc))
    scored.sort(key=lambda s: (-s[0], -s[1]["_creationTime"], s[1]["_id"]))
    return [d["_id"] for _, d in scored[:k]]


def random_body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(1, 6)))


@pytest.fixture
def sdb(tmp_path):
    database = Database.open(tmp_path / "data")
    database.set_schema(schema())
    assert database.wait_for_search_indexes()
    yield database
    database.close()


# --- exactness against brute force ------------------------------------------------------------

operations = st.lists(
    st.tuples(st.sampled_from(["insert", "update", "delete"]), st.integers(0, 10**6)),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=operations,
    text=st.sampled_from(["apple", "ap", "ban", "band cherry", "chess ap", "date b", "zzz", "!"]),
    channel=st.sampled_from([None, "a"]),
    wait_between=st.booleans(),
)
def test_search_equals_brute_force_at_every_snapshot(
    tmp_path_factory, ops, text, channel, wait_between
):
    rng = random.Random(len(ops))
    path = tmp_path_factory.mktemp("exact")
    with Database.open(path) as db:
        db.set_schema(schema(vector=False))
        assert db.wait_for_search_indexes()
        snapshots = []
        ids: list[str] = []
        for op, seed in ops:
            r = random.Random(seed)
            doc = {"body": random_body(r), "channel": r.choice(CHANNELS)}
            if op == "insert" or not ids:
                ids.append(db.mutate(lambda tx, d=doc: tx.insert("messages", d)).value)
            elif op == "update":
                target = r.choice(ids)
                db.mutate(lambda tx, i=target, d=doc: tx.replace(i, d))
            else:
                victim = ids.pop(r.randrange(len(ids)))
                db.mutate(lambda tx, i=victim: tx.delete(i))
            snapshots.append(db.latest_ts())
            if wait_between and rng.random() < 0.3:
                db.wait_for_search_indexes()
        # Older snapshots sit before the index's checkpoint, newer ones after it.
        for ts in [*snapshots[:: max(1, len(snapshots) // 4)], snapshots[-1]]:
            found, first_three, everything = db.query(
                lambda tx: (
                    [d["_id"] for d in search(tx, text, channel)],
                    [d["_id"] for d in search(tx, text, channel, n=3)],
                    tx.query("messages").collect(),
                ),
                ts=ts,
            ).value
            assert found == brute_force(everything, text, channel, 1024)
            assert first_three == found[:3]  # take(n) ranks only n, with the same answer


def test_take_ranks_only_what_it_takes(sdb, monkeypatch):
    import engine.query_executor as executor

    asked: list[int] = []

    def recording(tx, compiled, k):
        asked.append(k)
        return text_search(tx, compiled, k)

    text_search = executor.text_search
    monkeypatch.setattr(executor, "text_search", recording)
    sdb.mutate(lambda tx: [tx.insert("messages", {"body": f"apple {i}"}) for i in range(5)])

    def run(build):
        return sdb.query(
            lambda tx: build(tx.query("messages").with_search_index("search_body", _apple))
        ).value

    assert len(run(lambda q: q.take(3))) == 3 and asked == [3]
    asked.clear()
    assert run(lambda q: q.first())["body"].startswith("apple") and asked == [1]
    asked.clear()
    # a filter before the limit may drop results: the first batch stays the default
    assert len(run(lambda q: q.filter(lambda f: f.neq(f.field("body"), "x")).take(2))) == 2
    assert asked == [64]
    asked.clear()
    first = run(lambda q: q.paginate(None, 2))
    assert len(first.page) == 2 and asked == [2]  # a page ranks what it shows
    asked.clear()
    second = run(lambda q: q.paginate(first.continue_cursor, 2))
    assert len(second.page) == 2 and asked == [4]  # ranks from the start, shows 3rd and 4th


def _apple(q):
    return q.search("body", "apple")


def test_read_your_own_writes_inside_a_mutation(sdb):
    first = sdb.mutate(
        lambda tx: tx.insert("messages", {"body": "apple pie", "channel": "a"})
    ).value
    sdb.wait_for_search_indexes()

    def body(tx):
        new = tx.insert("messages", {"body": "apple apple", "channel": "a"})
        tx.delete(first)
        found = [d["_id"] for d in search(tx, "apple")]
        return new, found, brute_force(tx.query("messages").collect(), "apple", None, 1024)

    new, found, expected = sdb.mutate(body).value
    assert found == expected == [new]


def test_consistent_while_another_thread_commits(sdb):
    stop = threading.Event()

    def writer():
        rng = random.Random(7)
        ids: list[str] = []
        while not stop.is_set():
            doc = {"body": random_body(rng), "channel": rng.choice(CHANNELS)}
            if len(ids) > 300 or (ids and rng.random() < 0.3):
                victim = ids.pop(rng.randrange(len(ids)))
                sdb.mutate(lambda tx, i=victim: tx.delete(i))
            else:
                ids.append(sdb.mutate(lambda tx, d=doc: tx.insert("messages", d)).value)

    seed = int(os.environ.get("HEADWATER_TEST_SEED", random.randrange(2**32)))
    texts = random.Random(seed)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        checked = 0
        started = time.monotonic()
        # At least 8 checks and 2 s of concurrent commits (a loaded machine just takes longer).
        while checked < 8 or time.monotonic() - started < 2.0:
            text = texts.choice(["ap", "band", "cherry date", "ch"])
            found, everything = sdb.query(
                lambda tx, t=text: (
                    [d["_id"] for d in search(tx, t, n=20)],
                    tx.query("messages").collect(),
                )
            ).value
            assert found == brute_force(everything, text, None, 20), (
                f"check {checked} of {text!r}; replay with HEADWATER_TEST_SEED={seed}"
            )
            checked += 1
    finally:
        stop.set()
        thread.join()


def test_search_sees_a_table_created_by_a_commit_the_catalog_has_not_heard_of(sdb):
    """A reader whose snapshot holds a just-created table's first document finds it by
    text search too, while the committer has not yet told the in-memory catalog."""
    durable, release = threading.Event(), threading.Event()

    def hold_once() -> None:
        sdb._committer.pause_points.clear()
        durable.set()
        release.wait(10)

    sdb._committer.pause_points["after_durable"] = hold_once
    inserted: list[str] = []
    thread = threading.Thread(
        target=lambda: inserted.append(
            sdb.mutate(lambda tx: tx.insert("messages", {"body": "Cherry", "channel": "a"})).value
        )
    )
    thread.start()
    try:
        assert durable.wait(10)
        found, everything = sdb.query(
            lambda tx: ([d["_id"] for d in search(tx, "ch")], tx.query("messages").collect())
        ).value
    finally:
        release.set()
        thread.join()
    assert [d["_id"] for d in everything] == inserted
    assert found == inserted


# --- query semantics -----------------------------------------------------------------------


def test_last_term_is_a_prefix_and_earlier_terms_are_exact(sdb):
    sdb.mutate(
        lambda tx: [
            tx.insert("messages", {"body": b, "channel": "a"})
            for b in ["Banana split", "bandana", "ban", "apple", "Band of apples"]
        ]
    )
    bodies = lambda text: {d["body"] for d in sdb.query(lambda tx: search(tx, text)).value}  # noqa: E731
    assert bodies("ban") == {"Banana split", "bandana", "ban", "Band of apples"}
    assert bodies("ban apple") == {"ban", "apple", "Band of apples"}  # exact "ban", "apple*"
    assert bodies("BANDANA!") == {"bandana"}
    assert bodies("...") == set()


def test_more_occurrences_rank_first_and_filters_select(sdb):
    ids = sdb.mutate(
        lambda tx: [
            tx.insert("messages", {"body": b, "channel": c})
            for b, c in [("a", "x"), ("a a", "x"), ("a a a", "y"), ("a b", "x")]
        ]
    ).value
    order = sdb.query(lambda tx: [d["_id"] for d in search(tx, "a")]).value
    assert order[:3] == [ids[2], ids[1], ids[0]]
    assert sdb.query(lambda tx: [d["_id"] for d in search(tx, "a", "y")]).value == [ids[2]]


def test_errors_are_clear(sdb):
    def run(build, index="search_body"):
        return sdb.query(lambda tx: tx.query("messages").with_search_index(index, build).collect())

    with pytest.raises(LimitExceededError) as e:
        run(lambda q: q.search("body", " ".join(["w"] * 17)))
    assert e.value.code == "TooManySearchTerms"
    with pytest.raises(LimitExceededError) as e:
        run(lambda q: q.search("body", "x" * 33))
    assert e.value.code == "SearchTermTooLong"
    run(lambda q: q.search("body", "x" * 32))  # at the limit
    with pytest.raises(InvalidQueryError) as e:
        run(lambda q: q.search("title", "x"))
    assert e.value.code == "InvalidSearchField"
    with pytest.raises(InvalidQueryError) as e:
        run(lambda q: q.search("body", "x").eq("author", "me"))
    assert e.value.code == "InvalidSearchFilter"
    with pytest.raises(InvalidQueryError) as e:
        run(lambda q: q.search("body", "x"), index="nope")
    assert e.value.code == "IndexNotFound"
    with pytest.raises(InvalidQueryError):
        sdb.query(
            lambda tx: (
                tx.query("messages")
                .with_search_index("search_body", lambda q: q.search("body", "x"))
                .order("desc")
                .collect()
            )
        )


def test_backfilling_index_refuses_searches_with_a_code(sdb):
    # White-box: hold both indexes in the state a backfill leaves them in.
    slots = [sdb._search.slot(f"messages.{n}") for n in ("search_body", "by_embedding")]
    for slot in slots:
        slot.ready = False
    try:
        with pytest.raises(InvalidQueryError) as e:
            sdb.query(lambda tx: search(tx, "x"))
        assert e.value.code == "IndexBackfilling"
        with pytest.raises(InvalidQueryError) as e:
            sdb.vector_search("messages", "by_embedding", [1, 0, 0, 0])
        assert e.value.code == "IndexBackfilling"
    finally:
        for slot in slots:
            slot.ready = True


def test_adding_an_index_backfills_and_removing_it_deletes_its_folder(tmp_path):
    with Database.open(tmp_path / "d") as db:
        db.mutate(lambda tx: [tx.insert("messages", {"body": f"w{i} common"}) for i in range(300)])
        db.set_schema(schema())
        assert db.wait_for_search_indexes()
        assert len(db.query(lambda tx: search(tx, "common")).value) == 300
        folder = tmp_path / "d" / "search" / "messages.search_body"
        assert folder.is_dir()
        db.set_schema(schema(search=False))
        assert db.wait_for_search_indexes()
        assert not folder.exists()
        with pytest.raises(InvalidQueryError):
            db.query(lambda tx: search(tx, "common"))


def test_paginate_walks_the_relevance_order(sdb):
    sdb.mutate(lambda tx: [tx.insert("messages", {"body": "a " * i}) for i in range(1, 8)])
    everything = sdb.query(lambda tx: [d["_id"] for d in search(tx, "a")]).value
    seen, cursor = [], None
    while True:
        page = sdb.query(
            lambda tx, c=cursor: (
                tx.query("messages")
                .with_search_index("search_body", lambda q: q.search("body", "a"))
                .paginate(c, 3)
            )
        ).value
        seen += [d["_id"] for d in page.page]
        cursor = page.continue_cursor
        if page.is_done:
            break
    assert seen == everything


def test_a_search_page_rerun_with_its_end_cursor_keeps_exactly_its_documents(sdb):
    # A live paginated search re-runs each page up to the end cursor it first returned.
    sdb.mutate(lambda tx: [tx.insert("messages", {"body": "a " * i}) for i in range(1, 9)])

    def page(cursor, size, end=None):
        return sdb.query(
            lambda tx: (
                tx.query("messages")
                .with_search_index("search_body", lambda q: q.search("body", "a"))
                .paginate(cursor, size, end_cursor=end)
            )
        ).value

    first = page(None, 3)
    second = page(first.continue_cursor, 3)
    again = page(None, 1, end=first.continue_cursor)  # the page size gives way to the end
    assert [d["_id"] for d in again.page] == [d["_id"] for d in first.page]
    assert again.continue_cursor == first.continue_cursor and not again.is_done
    middle = page(first.continue_cursor, 100, end=second.continue_cursor)
    assert [d["_id"] for d in middle.page] == [d["_id"] for d in second.page]


# --- live queries and OCC ----------------------------------------------------------------------


def test_subscription_reruns_only_for_matching_writes(sdb):
    changes = []
    sub = sdb.subscribe(
        lambda tx: [d["body"] for d in search(tx, "hello", "a")], on_change=changes.append
    )
    assert sub.result.value == []
    other = sdb.mutate(lambda tx: tx.insert("messages", {"body": "goodbye", "channel": "a"})).value
    sdb.mutate(lambda tx: tx.insert("messages", {"body": "hello", "channel": "b"}))
    sdb.wait_for_subscriptions()
    assert changes == []  # other terms, or the other channel
    hit = sdb.mutate(
        lambda tx: tx.insert("messages", {"body": "Hello there", "channel": "a"})
    ).value
    sdb.wait_for_subscriptions()
    assert [c.value for c in changes] == [["Hello there"]]
    sdb.mutate(lambda tx: tx.patch(other, {"body": "helloworld"}))  # prefix match
    sdb.wait_for_subscriptions()
    assert len(changes) == 2 and changes[-1].value == ["helloworld", "Hello there"]
    sdb.mutate(lambda tx: tx.delete(hit))
    sdb.wait_for_subscriptions()
    assert changes[-1].value == ["helloworld"]
    sub.close()


def test_occ_conflicts_only_with_matching_commits(sdb):
    def read_then_write(body: str) -> None:
        tx = sdb.begin(writable=True)
        search(tx, "apple")
        tx.insert("log", {"n": 1})
        sdb.mutate(lambda t: t.insert("messages", {"body": body}))
        sdb.commit(tx)

    sdb.mutate(lambda tx: (tx.insert("messages", {"body": "x"}), tx.insert("log", {"n": 0})))
    read_then_write("banana")  # no conflict
    with pytest.raises(ConflictError):
        read_then_write("green apples")


# --- vector search -----------------------------------------------------------------------------


def test_vector_search_is_exact_at_the_newest_ts(sdb):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 4)).tolist()
    ids = sdb.mutate(
        lambda tx: [
            tx.insert("messages", {"embedding": v, "channel": CHANNELS[i % 2]})
            for i, v in enumerate(vectors)
        ]
    ).value
    query = [0.5, -1.0, 2.0, 0.0]
    unit = np.asarray(query) / np.linalg.norm(query)

    def expected(rows, channel=None):
        scored = []
        for i, v in rows:
            if channel is None or CHANNELS[i % 2] == channel:
                scored.append((float(np.dot(v, unit) / np.linalg.norm(v)), ids[i]))
        scored.sort(key=lambda s: -s[0])
        return [i for _, i in scored[:5]]

    rows = list(enumerate(vectors))
    got = sdb.vector_search("messages", "by_embedding", query, limit=5)
    assert [i for i, _ in got] == expected(rows)
    assert all(got[j][1] >= got[j + 1][1] for j in range(4))
    got = sdb.vector_search("messages", "by_embedding", query, 5, lambda q: q.eq("channel", "b"))
    assert [i for i, _ in got] == expected(rows, "b")
    # An update is seen at once (the index's version is masked), a delete too.
    best = got[0][0]
    sdb.mutate(lambda tx: tx.patch(best, {"embedding": [-x for x in query]}))
    sdb.mutate(lambda tx: tx.delete(ids[0]))
    got = sdb.vector_search("messages", "by_embedding", query, 60)
    assert best == got[-1][0] and ids[0] not in [i for i, _ in got]
    json_filter = {"$or": [{"$eq": [{"$field": "channel"}, {"$literal": "a"}]}]}
    got = sdb.vector_search("messages", "by_embedding", query, 60, json_filter)
    assert {i for i, _ in got} == {ids[i] for i in range(2, 60, 2)}


def test_vector_search_errors(sdb):
    with pytest.raises(InvalidQueryError) as e:
        sdb.vector_search("messages", "by_embedding", [1.0, 2.0])
    assert e.value.code == "VectorDimensionMismatch"
    for limit in (0, 257, 2.5):
        with pytest.raises(InvalidQueryError):
            sdb.vector_search("messages", "by_embedding", [1, 0, 0, 0], limit)
    sdb.vector_search("messages", "by_embedding", [1, 0, 0, 0], 256)
    with pytest.raises(InvalidQueryError) as e:
        sdb.vector_search("messages", "by_embedding", [1, 0, 0, 0], 5, lambda q: q.eq("body", "x"))
    assert e.value.code == "InvalidVectorFilter"
    with pytest.raises(InvalidQueryError) as e:
        sdb.vector_search("messages", "search_body", [1, 0, 0, 0])
    assert e.value.code == "IndexNotFound"
    with pytest.raises(InvalidQueryError):
        sdb.vector_search("messages", "by_embedding", [0, 0, 0, 0])
    for not_numbers in ([1.0, True, 0.0, 0.0], [1.0, "2", 0.0, 0.0], "1234", [1.0, None, 0, 0]):
        with pytest.raises(InvalidQueryError) as e:
            sdb.vector_search("messages", "by_embedding", not_numbers)
        assert e.value.code == "InvalidVector"


# --- recovery ---------------------------------------------------------------------------------


def test_deleted_folder_is_rebuilt_on_open_and_replay_rebuilds(tmp_path):
    path = tmp_path / "d"
    with Database.open(path) as db:
        db.set_schema(schema())
        assert db.wait_for_search_indexes()
        db.mutate(
            lambda tx: [
                tx.insert("messages", {"body": f"cherry {i}", "embedding": [1, i, 0, 0]})
                for i in range(50)
            ]
        )
        before = db.query(lambda tx: [d["_id"] for d in search(tx, "cherry")]).value
    shutil.rmtree(path / "search" / "messages.search_body")
    with Database.open(path) as db:
        assert db.wait_for_search_indexes()
        assert db.query(lambda tx: [d["_id"] for d in search(tx, "cherry")]).value == before
    rebuild_projections(path)
    with Database.open(path) as db:
        assert db.query(lambda tx: [d["_id"] for d in search(tx, "cherry")]).value == before
        assert len(db.vector_search("messages", "by_embedding", [1, 0, 0, 0], 100)) == 50


@pytest.mark.slow
def test_sigkill_while_indexing_then_resume_from_checkpoints(tmp_path):
    path = tmp_path / "crash"
    with Database.open(path) as db:
        db.set_schema(schema())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for delay_s in (0.3, 0.7):
        with subprocess.Popen(
            [sys.executable, str(WRITER), str(path)], env=env, stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stdout.readline()  # it has committed
            time.sleep(delay_s)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with Database.open(path) as db:
            for text in ("apple", "ban", "cherry date"):
                found, everything = db.query(
                    lambda tx, t=text: (
                        [d["_id"] for d in search(tx, t)],
                        tx.query("messages").collect(),
                    )
                ).value
                assert found == brute_force(everything, text, None, 1024)
            assert everything
            got = db.vector_search("messages", "by_embedding", [1, 0, 0, 0], 256)
            with_vectors = [d for d in everything if "embedding" in d]
            assert len(got) == min(256, len(with_vectors))
