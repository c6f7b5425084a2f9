"""Index keys computed once per document version: the same bytes, the same projections."""

from __future__ import annotations

import random

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Database, HeadwaterError
from engine.committer import PAUSE_BEFORE_DURABLE
from engine.index_range import index_key
from engine.recovery import rebuild_projections
from engine.schema_model import IndexDef
from projections.btree import index_id_of, index_prefix
from projections.index_keys import IndexPlan, RecentVersionKeys
from tests.value_strategies import values

FIELDS = ("a", "b", "a.x", "a.x.y", "b.a")
INDEX_FIELDS = st.lists(st.sampled_from(FIELDS), min_size=0, max_size=3, unique=True).map(
    lambda fs: (*fs, "_creationTime", "_id")
)


@given(
    indexes=st.lists(INDEX_FIELDS, min_size=1, max_size=4),
    doc=st.dictionaries(st.sampled_from(["a", "b", "x"]), values, max_size=3),
)
def test_a_plan_gives_each_index_the_key_index_key_gives(indexes, doc):
    doc = {**doc, "_id": "k57ca1o3bqbk0yq3nrqjvf1h6h7jqd7x", "_creationTime": 1.5e12}
    defs = [IndexDef("t", f"i{n}", fields) for n, fields in enumerate(indexes)]
    plan = IndexPlan(defs, index_id_of, index_prefix)
    assert plan.keys_of(doc) == tuple(index_key(d.fields, doc) for d in defs)
    assert plan.prefixes == tuple(index_prefix(f"t.i{n}") for n in range(len(defs)))


def test_recent_keys_forget_a_version_once_taken_and_stay_bounded():
    recent = RecentVersionKeys(capacity=2)
    recent.remember(b"a", 1, (b"k1",))
    assert recent.take(b"a", 1) == (b"k1",)
    assert recent.take(b"a", 1) is None  # a version is superseded once
    for ts in range(2, 6):
        recent.remember(b"a", ts, (b"k",))
    assert len(recent) == 2 and recent.take(b"a", 2) is None and recent.take(b"a", 5) == (b"k",)


def _schema(*indexes: tuple[str, list[str]]) -> dict:
    return {
        "tables": [
            {
                "tableName": "items",
                "indexes": [{"indexDescriptor": n, "fields": f} for n, f in indexes],
                "searchIndexes": [],
                "vectorIndexes": [],
                "documentType": None,
            }
        ],
        "schemaValidation": True,
    }


def _index_databases(path) -> dict[str, list[tuple[bytes, bytes]]]:
    env = lmdb.open(str(path), max_dbs=64, readonly=True, lock=False)
    try:
        dumped = {}
        for name in (b"index_latest", b"index_history"):
            db = env.open_db(name, create=False)
            with env.begin(db=db) as txn:
                dumped[name.decode()] = list(txn.cursor())
        return dumped
    finally:
        env.close()


def test_indexes_built_commit_by_commit_equal_a_replay_after_failures_and_schema_changes(
    tmp_path,
):
    """Patches, deletes, a commit that fails after its keys were computed (its ts is
    then reused), an index added and one changed: the indexes kept up commit by
    commit are byte for byte the ones a replay of the log builds."""
    path = tmp_path / "data"
    rng = random.Random(7)
    with Database.open(path) as db:
        db.set_schema(_schema(("by_n", ["n"])))
        ids = [
            db.mutate(lambda tx, k=k: tx.insert("items", {"n": float(k), "g": k % 3})).value
            for k in range(20)
        ]
        failures: list[bool] = []

        def fail_once() -> None:
            if not failures:
                failures.append(True)
                raise OSError("disk went away")

        for step in range(120):
            target = rng.choice(ids)
            if step == 40:
                db.committer.pause_points[PAUSE_BEFORE_DURABLE] = fail_once
                with pytest.raises(HeadwaterError):
                    db.mutate(lambda tx, t=target: tx.patch(t, {"n": 1000.0}))
                del db.committer.pause_points[PAUSE_BEFORE_DURABLE]
            if step == 60:
                db.set_schema(_schema(("by_n", ["n"]), ("by_g", ["g", "n"])))
            if step == 90:
                db.set_schema(_schema(("by_n", ["g"])))
            if rng.random() < 0.1 and len(ids) > 5:
                ids.remove(target)
                db.mutate(lambda tx, t=target: tx.delete(t))
            else:
                db.mutate(lambda tx, t=target: tx.patch(t, {"n": float(rng.randrange(50))}))
        found = db.query(
            lambda tx: [d["n"] for d in tx.query("items").with_index("by_n").collect()]
        ).value
        assert 1000.0 not in found
    kept = _index_databases(path)
    rebuild_projections(path)
    assert _index_databases(path) == kept
