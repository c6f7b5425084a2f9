"""Annoy segments + exact tail: recall, masking of changed items, builds, persistence."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.key_encoding import encode_value
from engine.schema import VectorIndexDef
from projections.vector_search import (
    EXACT_SEGMENT_ROWS,
    TAIL_ITEMS_MAX,
    VectorIndex,
    unit_vector,
)
from projections.vector_segments import IDLE_MERGE_SHARE, IDLE_TAIL_MIN, merge_wanted

DIMS = 32
DEF = VectorIndexDef("t", "v", "embedding", DIMS, ("kind",))


def key(i: int) -> bytes:
    return (10001).to_bytes(4, "big") + i.to_bytes(16, "big")


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, DIMS))
    return centers[rng.integers(0, 50, n)] + 0.3 * rng.normal(size=(n, DIMS))


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return list(np.argsort(-(units @ (query / np.linalg.norm(query))))[:k])


def fill(index: VectorIndex, vectors: np.ndarray) -> None:
    for i, v in enumerate(vectors):
        index.stage(key(i), None, {"embedding": v.tolist(), "kind": i % 3})
    index.commit(1)


@pytest.mark.parametrize(("exact_rows", "recall"), [(0, 0.95), (EXACT_SEGMENT_ROWS, 1.0)])
def test_recall_at_10_of_a_built_segment(tmp_path, exact_rows, recall):
    """Through annoy (a segment larger than ``exact_rows``) recall is high; a segment
    small enough to be scored whole answers exactly."""
    vectors = clustered(6000, 1)
    index = VectorIndex(str(tmp_path / "v"), DEF, background=False, exact_segment_rows=exact_rows)
    fill(index, vectors)
    index.build_now()
    assert index.statistics()["segments"] == 1 and index.statistics()["tail"] == 0
    queries = clustered(40, 2)
    hits = 0
    for q in queries:
        unit = (q / np.linalg.norm(q)).astype(np.float32)
        got = {k for _, k in index.search(unit, 10, [], set())}
        hits += len(got & {key(int(i)) for i in exact_top(vectors, q, 10)})
    assert hits / (10 * len(queries)) >= recall
    index.close()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    limit=st.integers(1, 12),
    dead=st.sets(st.integers(0, 39), max_size=10),
    masked=st.sets(st.integers(0, 39), max_size=6),
    kind=st.sampled_from([None, 0, 1, 2]),
)
def test_searching_segments_whole_finds_the_true_best(
    tmp_path_factory, n, seed, limit, dead, masked, kind
):
    """Segments scored whole, with deleted rows, rows changed after the build (in the
    tail), rows the reader masks, a filter, and many exact ties (vectors repeat): the
    answer is the best ``limit`` live, unmasked, matching documents of a full scan."""
    rng = np.random.default_rng(seed)
    vectors = rng.integers(-2, 3, size=(n, 4)).astype(float)
    vectors[np.all(vectors == 0, axis=1)] = 1.0  # a zero vector is not indexed
    definition = VectorIndexDef("t", "v", "embedding", 4, ("kind",))
    index = VectorIndex(str(tmp_path_factory.mktemp("v")), definition, background=False)
    docs = {key(i): {"embedding": v.tolist(), "kind": float(i % 3)} for i, v in enumerate(vectors)}
    for k, doc in docs.items():
        index.stage(k, None, doc)
    index.commit(1)
    index.build_now()
    for i in sorted(dead):
        if i < n and i % 2:
            index.stage(key(i), docs[key(i)], None)  # deleted
            del docs[key(i)]
        elif i < n:
            docs[key(i)] = {"embedding": (-vectors[i]).tolist(), "kind": float(i % 3)}
            index.stage(key(i), None, docs[key(i)])  # changed: the new version in the tail
    index.commit(2)
    query = unit_vector({"embedding": rng.integers(-2, 3, size=4).tolist() or [1]}, "embedding", 4)
    if query is None:
        query = unit_vector({"embedding": [1, 0, 0, 0]}, "embedding", 4)
    hidden = {key(i) for i in masked}
    clauses = [] if kind is None else [(0, encode_value(float(kind)))]
    got = index.search(query, limit, clauses, hidden)
    candidates = {
        k: float(unit_vector(doc, "embedding", 4) @ query)
        for k, doc in docs.items()
        if k not in hidden and (kind is None or doc["kind"] == kind)
    }
    want = sorted(candidates.values(), reverse=True)[:limit]
    assert len(got) == len(want)
    assert np.allclose([score for score, _ in got], want, atol=1e-5)
    assert all(abs(candidates[k] - score) < 1e-5 for score, k in got)
    index.close()


def test_changes_mask_segment_rows_and_filters_are_exact(tmp_path):
    vectors = clustered(500, 3)
    index = VectorIndex(str(tmp_path / "v"), DEF, background=False)
    fill(index, vectors)
    index.build_now()
    query = (vectors[7] / np.linalg.norm(vectors[7])).astype(np.float32)
    assert index.search(query, 1, [], set())[0][1] == key(7)
    assert index.search(query, 1, [], {key(7)})[0][1] != key(7)  # masked by the reader
    index.stage(key(7), None, {"embedding": (-vectors[7]).tolist(), "kind": 1})
    index.commit(2)
    top = index.search(query, 500, [], set())
    assert top[-1][1] == key(7) and len(top) == 500  # the new version lives in the tail
    kinds = [(0, encode_value(2))]
    filtered = index.search(query, 500, kinds, set())
    assert {k for _, k in filtered} == {key(i) for i in range(500) if i % 3 == 2 and i != 7}
    index.close()


def test_state_survives_reopening_and_builds_keep_concurrent_changes(tmp_path):
    folder = str(tmp_path / "v")
    vectors = clustered(300, 4)
    index = VectorIndex(folder, DEF, background=False)
    fill(index, vectors)
    index.build_now()
    index.stage(key(1), None, None)  # delete a segment row
    index.stage(key(1000), None, {"embedding": vectors[0].tolist(), "kind": 0})
    index.commit(3)
    index.close()
    again = VectorIndex(folder, DEF, background=False)
    assert again.checkpoint_ts == 3
    query = (vectors[0] / np.linalg.norm(vectors[0])).astype(np.float32)
    found = {k for _, k in again.search(query, 300, [], set())}
    assert key(1) not in found and key(1000) in found and len(found) == 300
    again.close()


def _wait_until(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_idle_index_merges_its_segments_and_a_busy_one_waits(tmp_path):
    """Two background builds leave two segments; while commits keep coming they stay
    two, and once none comes for the idle time the builder merges them into one
    (the changed rows with them), after which queries still find the true best. A
    tail shorter than IDLE_TAIL_MIN stays a tail; one that long is merged in too."""
    n = TAIL_ITEMS_MAX
    vectors = clustered(2 * n + IDLE_TAIL_MIN, 6)
    index = VectorIndex(str(tmp_path / "v"), DEF, idle_merge_s=2.0)
    for part in (0, 1):
        for i in range(part * n, (part + 1) * n):
            index.stage(key(i), None, {"embedding": vectors[i].tolist(), "kind": i % 3})
        index.commit(part + 1)
        _wait_until(lambda part=part: index.statistics()["builds"] == part + 1)
    assert index.statistics()["segments"] == 2
    for t in range(12):  # busy: a commit every 0.25 s, well inside the idle time
        i = t * 97
        vectors[i] = -vectors[i]
        index.stage(key(i), None, {"embedding": vectors[i].tolist(), "kind": i % 3})
        index.commit(3 + t)
        time.sleep(0.25)
        assert index.statistics()["segments"] == 2
    index.wait_builds()  # returns once the quiet index is merged
    stats = index.statistics()
    assert (stats["segments"], stats["segment_rows"], stats["tail"]) == (1, 2 * n, 0)
    hits = 0
    for q in clustered(20, 7):
        unit = (q / np.linalg.norm(q)).astype(np.float32)
        got = {k for _, k in index.search(unit, 10, [], set())}
        hits += len(got & {key(int(i)) for i in exact_top(vectors[: 2 * n], q, 10)})
    assert hits / 200 >= 0.95
    for i in range(2 * n, 2 * n + IDLE_TAIL_MIN):
        index.stage(key(i), None, {"embedding": vectors[i].tolist(), "kind": i % 3})
        if i == 2 * n + IDLE_TAIL_MIN - 2:
            index.commit(20)
            index.wait_builds()  # nothing wanted: no builder waits
            assert index.statistics()["tail"] == IDLE_TAIL_MIN - 1
    index.commit(21)
    index.wait_builds()
    stats = index.statistics()
    assert (stats["segments"], stats["tail"]) == (1, 0)
    assert stats["segment_rows"] == 2 * n + IDLE_TAIL_MIN
    index.close()


def test_an_idle_merge_needs_many_rows_outside_the_largest_segment():
    """A merge rebuilds the whole index, so a large one waits for a share of new rows."""
    assert not merge_wanted([], 50_000)  # a tail alone stays a tail
    assert not merge_wanted([4096], IDLE_TAIL_MIN - 1)
    assert merge_wanted([4096], IDLE_TAIL_MIN)
    assert merge_wanted([4096, 4096], 0)
    big = IDLE_TAIL_MIN * IDLE_MERGE_SHARE * 10
    assert not merge_wanted([big, 4096], big // IDLE_MERGE_SHARE - 4097)
    assert merge_wanted([big, 4096], big // IDLE_MERGE_SHARE - 4096)


def test_unit_vector_refuses_what_cannot_be_indexed():
    assert unit_vector({"embedding": [1.0, 2.0]}, "embedding", 3) is None
    assert unit_vector({"embedding": [0.0, 0.0, 0.0]}, "embedding", 3) is None
    assert unit_vector({"embedding": "x"}, "embedding", 3) is None
    assert unit_vector({}, "embedding", 3) is None
    assert np.isclose(np.linalg.norm(unit_vector({"embedding": [3, 4, 0]}, "embedding", 3)), 1)
