"""OCC and live queries over every read shape, ascending and descending.

T1 reads with one shape — ``get``, an index range, a full scan, ``first``,
``take(n)``, ``unique``, one or two pages, with or without a filter, a text
search — at its snapshot; T2 commits one write; T1 then writes elsewhere and
commits. The rule is checked in both directions against a model of what the
read observed:

- T1 is refused exactly when T2 wrote (an old or a new version of) a key inside
  the interval the read scanned: from the start of its range up to and
  including the last key it consumed, or the whole range when it ran to the
  end. Like Convex, a write inside that interval conflicts even when the
  filter dropped the document (a "false" conflict, on purpose); a write just
  past the last key a ``first()``/``take(n)``/page consumed does not.
- A text search observed its terms, its prefix and its filter values: a version
  of a document that matches them conflicts, any other does not.
- Whenever T2 changed what the read returns, T1 is refused (the model cannot
  be looser than serializability).

The same read, subscribed as a live query before T2 commits, is re-run
exactly when T1 is refused. T1 reads either before T2 commits or after it (at
its older snapshot): both must give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from engine import ConflictError, Database
from engine.errors import InvalidQueryError
from projections.text_search import split_words, tokenize

TABLE = "items"
OTHER = "side"  # where T1 writes: nothing T2 writes is there
SCHEMA = {
    "tables": [
        {
            "tableName": TABLE,
            "indexes": [{"indexDescriptor": "by_n", "fields": ["n"]}],
            "searchIndexes": [
                {"indexDescriptor": "search_body", "searchField": "body", "filterFields": ["tag"]}
            ],
            "vectorIndexes": [],
            "documentType": None,
        }
    ],
    "schemaValidation": False,
}
NS = [0.0, 1.0, 2.0, 3.0]
TAGS = ["x", "y"]
BODIES = ["apple pie", "banana split", "apricot", "cherry"]
SEARCHES = ["apple", "ap", "pie apple", "banana", "cher"]
INFINITE = 1 << 30


@dataclass(frozen=True)
class Shape:
    kind: str  # get, collect, first, take, unique, page, two_pages, search
    index: str = "by_n"  # by_n, by_creation_time (a full table scan) or by_id (get)
    order: str = "asc"
    bounds: tuple[tuple[str, float], ...] = ()  # range comparisons on n
    tag: str | None = None  # filter: tag == this
    count: int = 1  # take(count), page size
    target: int = 0  # get: which document
    text: str = "apple"  # search text


@dataclass(frozen=True)
class Change:
    kind: str  # insert, move (new n), retag, rebody, touch (an unindexed field), delete
    target: str = "last"  # last: the last key the read consumed; past: the next one; any
    pick: int = 0  # for "any"
    n: float = 0.0
    tag: str = "x"
    body: str = "apple pie"


# --- strategies ------------------------------------------------------------------

ns = st.sampled_from(NS)
lower = st.tuples(st.sampled_from(["gte", "gt"]), ns)
upper = st.tuples(st.sampled_from(["lte", "lt"]), ns)
bounds = st.one_of(
    st.just(()),
    lower.map(lambda b: (b,)),
    upper.map(lambda b: (b,)),
    st.tuples(lower, upper),
    st.tuples(st.just("eq"), ns).map(lambda b: (b,)),
)


def _normalized(shape: Shape) -> Shape:
    """Drop what a shape does not use, so shrinking and the model see one spelling."""
    if shape.kind == "get":
        return Shape("get", index="by_id", target=shape.target)
    if shape.kind == "search":
        return Shape("search", index="search_body", tag=shape.tag, text=shape.text)
    if shape.index == "by_creation_time":
        return replace(shape, bounds=())
    return shape


shapes = st.builds(
    Shape,
    kind=st.sampled_from(
        ["first", "take", "page", "two_pages", "unique", "collect", "search", "search", "get"]
    ),
    index=st.sampled_from(["by_n", "by_n", "by_creation_time"]),
    order=st.sampled_from(["asc", "desc"]),
    bounds=bounds,
    tag=st.sampled_from([None, *TAGS]),
    count=st.integers(0, 3),
    target=st.integers(0, 5),
    text=st.sampled_from(SEARCHES),
).map(_normalized)
changes = st.builds(
    Change,
    kind=st.sampled_from(["insert", "move", "retag", "rebody", "touch", "delete"]),
    target=st.sampled_from(["last", "past", "any"]),
    pick=st.integers(0, 5),
    n=st.sampled_from([*NS, 0.5, 1.5, 2.5, 3.5]),
    tag=st.sampled_from(TAGS),
    body=st.sampled_from(BODIES),
)
documents = st.lists(
    st.tuples(ns, st.sampled_from(TAGS), st.sampled_from(BODIES)), min_size=0, max_size=6
)


# --- running a read --------------------------------------------------------------


def _range(r: Any, shape: Shape) -> Any:
    for op, value in shape.bounds:
        r = getattr(r, op)("n", value)
    return r


def read(tx: Any, shape: Shape, ids: list[str]) -> Any:
    """What the read returns (a unique() that finds two documents returns its error code)."""
    if shape.kind == "get":
        return tx.get(ids[shape.target % len(ids)])
    query = tx.query(TABLE)
    if shape.kind == "search":

        def search(q: Any) -> Any:
            q = q.search("body", shape.text)
            return q if shape.tag is None else q.eq("tag", shape.tag)

        return query.with_search_index("search_body", search).collect()
    if shape.index == "by_n":
        query = query.with_index("by_n", lambda r: _range(r, shape))
    query = query.order(shape.order)
    if shape.tag is not None:
        query = query.filter(lambda q: q.eq(q.field("tag"), shape.tag))
    if shape.kind == "collect":
        return query.collect()
    if shape.kind == "first":
        return query.first()
    if shape.kind == "take":
        return query.take(shape.count)
    if shape.kind == "unique":
        try:
            return query.unique()
        except InvalidQueryError as exc:
            return exc.code
    size = max(shape.count, 1)
    first = query.paginate(None, size)
    if shape.kind == "page":
        return first.page, first.is_done
    second = query.paginate(first.continue_cursor, size)
    return first.page, second.page, second.is_done


# --- the model of what a read observed -------------------------------------------


def key_of(index: str, doc: dict) -> tuple:
    if index == "by_n":
        return (doc["n"], doc["_creationTime"], doc["_id"])
    if index == "by_creation_time":
        return (doc["_creationTime"], doc["_id"])
    return (doc["_id"],)


def _in_bounds(shape: Shape, doc: dict) -> bool:
    n = doc["n"]
    checks = {
        "eq": lambda v: n == v,
        "gte": lambda v: n >= v,
        "gt": lambda v: n > v,
        "lte": lambda v: n <= v,
        "lt": lambda v: n < v,
    }
    return all(checks[op](value) for op, value in shape.bounds)


def _limit(shape: Shape) -> int:
    size = max(shape.count, 1)
    return {"collect": INFINITE, "first": 1, "take": shape.count, "unique": 2, "page": size}.get(
        shape.kind, 2 * size
    )


def scan_order(shape: Shape, docs: list[dict]) -> list[dict]:
    """Every document in the order the read's index walks them (range or not)."""
    return sorted(docs, key=lambda d: key_of(shape.index, d), reverse=shape.order == "desc")


def stop_doc(shape: Shape, docs: list[dict]) -> dict | None:
    """The document whose key the read consumed last, or None if it ran to the end."""
    limit = _limit(shape)
    matched = 0
    for doc in scan_order(shape, docs):
        if not _in_bounds(shape, doc):
            continue
        matched += shape.tag is None or doc["tag"] == shape.tag
        if matched == limit:
            return doc
    return None


def observed(shape: Shape, docs: list[dict], ids: list[str], key: tuple, index: str) -> bool:
    """Whether an index ``key`` lies inside what the read scanned."""
    if shape.kind == "get":
        return index == "by_id" and key == (ids[shape.target % len(ids)],)
    if index != shape.index or _limit(shape) == 0:
        return False
    doc = dict(zip(("n", "_creationTime", "_id"), key, strict=False))
    if shape.index == "by_n" and not _in_bounds(shape, doc):
        return False
    stop = stop_doc(shape, docs)
    if stop is None:
        return True
    last = key_of(shape.index, stop)
    return key <= last if shape.order == "asc" else key >= last


def search_touched(shape: Shape, version: dict | None) -> bool:
    """Whether a document version holds a term (or the prefix) of the search, in its tag."""
    if version is None or (shape.tag is not None and version["tag"] != shape.tag):
        return False
    words = split_words(shape.text)
    terms, prefix = set(words[:-1]), words[-1]
    return any(t in terms or t.startswith(prefix) for t in tokenize(version["body"]))


def must_conflict(
    shape: Shape, docs: list[dict], ids: list[str], old: dict | None, new: dict | None
) -> bool:
    versions = [v for v in (old, new) if v is not None]
    if shape.kind == "search":
        return any(search_touched(shape, v) for v in versions)
    return any(
        observed(shape, docs, ids, key_of(index, v), index)
        for v in versions
        for index in ("by_id", "by_creation_time", "by_n")
    )


# --- T2's write --------------------------------------------------------------------


def target_of(shape: Shape, change: Change, docs: list[dict], ids: list[str]) -> dict | None:
    """The document T2 changes: the read's last key, the next one in index order, any."""
    if change.kind == "insert" or not docs:
        return None
    if shape.kind == "get":
        at = shape.target % len(ids)
        walk = sorted(docs, key=lambda d: d["_id"])
        last = next(d for d in docs if d["_id"] == ids[at])
    elif shape.kind == "search":
        walk, last = docs, docs[change.pick % len(docs)]
    else:
        walk = scan_order(shape, docs)
        in_range = [d for d in walk if _in_bounds(shape, d)]
        last = stop_doc(shape, docs) or (in_range[-1] if in_range else walk[-1])
    if change.target == "any":
        return docs[change.pick % len(docs)]
    if change.target == "last":
        return last
    after = walk.index(last) + 1
    return walk[after] if after < len(walk) else walk[0]


def apply_change(tx: Any, change: Change, target: dict | None) -> str:
    if target is None:
        return tx.insert(TABLE, {"n": change.n, "tag": change.tag, "body": change.body, "v": 0.0})
    doc_id = target["_id"]
    if change.kind == "delete":
        tx.delete(doc_id)
    else:
        field = {"move": "n", "retag": "tag", "rebody": "body", "touch": "v"}[change.kind]
        value = {"n": change.n, "tag": change.tag, "body": change.body, "v": target["v"] + 1.0}
        tx.patch(doc_id, {field: value[field]})
    return doc_id


# --- the property ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_db(tmp_path_factory):
    with Database.open(tmp_path_factory.mktemp("read_shapes")) as db:
        db.set_schema(SCHEMA)
        db.mutate(lambda tx: tx.insert(OTHER, {"k": 0.0}))
        assert db.wait_for_search_indexes()
        yield db


def _reset(tx: Any, rows: list[tuple[float, str, str]]) -> list[str]:
    for doc in tx.query(TABLE).collect():
        tx.delete(doc["_id"])
    return [tx.insert(TABLE, {"n": n, "tag": t, "body": b, "v": 0.0}) for n, t, b in rows]


@settings(max_examples=200, deadline=None)
@given(rows=documents, shape=shapes, change=changes, read_late=st.booleans())
# The reported hole: T1 reads first(), T2 patches that very document: T1 must be refused.
@example(
    rows=[(1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("first"),
    change=Change("touch", "last"),
    read_late=False,
)
# ... and a write to the document just past it is not a conflict.
@example(
    rows=[(1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("first"),
    change=Change("touch", "past"),
    read_late=False,
)
# take(2) descending: moving the last one it returned out of the range conflicts.
@example(
    rows=[(0.0, "x", "apricot"), (1.0, "x", "apricot"), (2.0, "y", "cherry")],
    shape=Shape("take", order="desc", count=2),
    change=Change("move", "last", n=3.5),
    read_late=True,
)
# An insert with the same n as the last key a page consumed lands just past it (asc).
@example(
    rows=[(1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("page", count=1),
    change=Change("insert", n=1.0),
    read_late=False,
)
# ... but inside it when the page walks downwards.
@example(
    rows=[(1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("page", order="desc", count=1, bounds=(("lte", 1.0),)),
    change=Change("insert", n=1.0),
    read_late=False,
)
# A filtered-out document inside the scanned interval still conflicts (as in Convex).
@example(
    rows=[(0.0, "y", "cherry"), (1.0, "x", "cherry")],
    shape=Shape("first", tag="x"),
    change=Change("touch", "any", pick=0),
    read_late=False,
)
# A second page reads on from the first page's cursor: its last key counts too.
@example(
    rows=[(0.0, "x", "cherry"), (1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("two_pages", index="by_creation_time", count=1),
    change=Change("delete", "last"),
    read_late=True,
)
# unique() reads until the second match; a write beyond it is outside.
@example(
    rows=[(1.0, "x", "cherry"), (2.0, "x", "cherry")],
    shape=Shape("unique", bounds=(("eq", 1.0),)),
    change=Change("move", "past", n=2.5),
    read_late=False,
)
# A search observed its terms and filters: the same words under another tag do not conflict.
@example(
    rows=[(1.0, "x", "apple pie")],
    shape=Shape("search", index="search_body", tag="x", text="apple"),
    change=Change("insert", tag="y", body="apple pie"),
    read_late=False,
)
@example(
    rows=[(1.0, "x", "apple pie")],
    shape=Shape("search", index="search_body", tag="x", text="ap"),
    change=Change("insert", tag="x", body="apricot"),
    read_late=True,
)
# Another tag's "apple pie" lowers the idf of "apple": the two "y" matches swap places.
@example(
    rows=[(0.0, "y", "apple pie"), (0.0, "y", "apricot"), (0.0, "x", "apricot")],
    shape=Shape("search", index="search_body", tag="y", text="ap"),
    change=Change("insert", tag="x", body="apple pie"),
    read_late=False,
)
def test_a_read_conflicts_exactly_with_writes_inside_what_it_observed(
    shapes_db, rows, shape, change, read_late
):
    db = shapes_db
    if shape.kind == "get" and not rows:
        rows = [(0.0, "x", "cherry")]
    ids = db.mutate(_reset, rows).value
    docs = db.query(lambda tx: [tx.get(i) for i in ids]).value
    target = target_of(shape, change, docs, ids)

    t1 = db.begin(writable=True)
    seen = None if read_late else read(t1, shape, ids)
    live: list[Any] = []
    sub = db.subscribe(read, shape, ids, on_change=live.append)
    subscribed = sub.result.value  # before T2: a re-run replaces sub.result
    try:
        changed_id = db.mutate(apply_change, change, target).value
        if read_late:
            seen = read(t1, shape, ids)
        assert subscribed == seen  # same snapshot, same answer
        t1.insert(OTHER, {"k": 1.0})
        try:
            db.commit(t1)
            refused = False
        except ConflictError:
            refused = True
        db.wait_for_subscriptions()
    finally:
        sub.close()

    new = db.query(lambda tx: tx.get(changed_id)).value
    expected = must_conflict(shape, docs, ids, target, new)
    label = shape.kind if shape.kind in ("get", "search") else f"{shape.kind} {shape.order}"
    event(f"{label}: {'refused' if expected else 'commits'}")
    assert refused == expected, f"T2 wrote {target} -> {new}"
    assert bool(live) == expected, "the live query's re-run disagrees with OCC"
    now = db.query(read, shape, ids).value
    if shape.kind == "search":
        # Which documents match is what a search observed; their relevance order also
        # rests on corpus statistics (document count, term frequencies), which a write
        # under another tag moves without touching the read set, as in Convex.
        seen, now = (sorted(r, key=lambda d: d["_id"]) for r in (seen, now))
    if now != seen:
        assert refused, f"the read's result changed ({seen} -> {now}) yet T1 committed"
