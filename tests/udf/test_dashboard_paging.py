"""Paging a table through `data:page` with random filters, index, order and page
size yields exactly the documents that match, in index order, each once — also
when the scan budget cuts pages short and at a past ts."""

from __future__ import annotations

import random
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Database
from engine.index_range import index_key
from engine.values import UNSET, compare_values, get_field
from udf import dashboard_tables
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor

SCHEMA = {
    "tables": [
        {
            "tableName": "things",
            "indexes": [{"indexDescriptor": "by_a_b", "fields": ["a", "b"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": None,
        }
    ],
    "schemaValidation": False,
}
INDEX_FIELDS = {
    "by_creation_time": ("_creationTime", "_id"),
    "by_id": ("_id",),
    "by_a_b": ("a", "b", "_creationTime", "_id"),
}
A_VALUES = [UNSET, None, 1.0, 2.0, 3.0, "x", "y", 5]


def _doc(rng: random.Random) -> dict:
    doc = {"b": float(rng.randint(0, 4)), "n": {"m": rng.choice([1.0, 2.0, "z"])}}
    a = rng.choice(A_VALUES)
    if a is not UNSET:
        doc["a"] = a
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    db = Database.open(tmp_path_factory.mktemp("paging"))
    db.set_schema(SCHEMA)
    ex = Executor(db)
    rng = random.Random(7)
    for _ in range(3):
        db.mutate(lambda tx: [tx.insert("things", _doc(rng)) for _ in range(20)])
    middle = db.latest_ts()
    db.mutate(lambda tx: [tx.insert("things", _doc(rng)) for _ in range(15)])
    yield ex, middle
    ex.close()
    db.close()


def _all(db, ts):
    return db.query(lambda tx: tx.query("things").collect(), ts=ts).value


_OPS = {
    "eq": lambda c: c == 0,
    "neq": lambda c: c != 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
}


def _model_match(doc, filters) -> bool:
    for f in filters:
        value = get_field(doc, f["field"])
        if f["op"] == "exists":
            ok = value is not UNSET
        elif f["op"] == "notExists":
            ok = value is UNSET
        else:
            ok = _OPS[f["op"]](compare_values(value, f["value"]))
        if not ok:
            return False
    return True


filters_strategy = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "field": st.sampled_from(["a", "b", "n.m", "missing"]),
                "op": st.sampled_from(list(_OPS)),
                "value": st.sampled_from([None, 1.0, 2.0, 3.0, "x", "z", 5]),
            }
        ),
        st.fixed_dictionaries(
            {
                "field": st.sampled_from(["a", "n.m", "missing"]),
                "op": st.sampled_from(["exists", "notExists"]),
            }
        ),
    ),
    max_size=3,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    filters=filters_strategy,
    index=st.sampled_from(list(INDEX_FIELDS)),
    order=st.sampled_from(["asc", "desc"]),
    num_items=st.integers(1, 12),
    budget=st.sampled_from([3, 10, 10_000]),
    past=st.booleans(),
)
def test_paging_yields_exactly_the_matching_documents_in_order(
    world, filters, index, order, num_items, budget, past
):
    ex, middle = world
    ts = middle if past else None
    expected = [d for d in _all(ex.db, ts) if _model_match(d, filters)]
    expected.sort(key=lambda d: index_key(INDEX_FIELDS[index], d), reverse=order == "desc")
    args = {
        "table": "things",
        "index": index,
        "order": order,
        "filters": filters,
        "numItems": num_items,
    }
    if past:
        args["atTs"] = str(middle)
    seen, cursor = [], None
    with mock.patch.object(dashboard_tables, "SCAN_ROWS_MAX", budget):
        for _ in range(500):
            outcome = ex.run(
                FunctionCall(
                    "_system/dashboard/data:page", {**args, "cursor": cursor}, "query", ADMIN
                )
            )
            assert outcome.error is None, outcome.error
            page = outcome.value
            assert len(page["page"]) <= num_items
            seen += page["page"]
            if page["isDone"]:
                break
            cursor = page["continueCursor"]
    assert [d["_id"] for d in seen] == [d["_id"] for d in expected]
