"""One built segment of a vector index: its rows, their files, exact scoring, and
when an idle index's segments are worth merging into one.

A segment is immutable once built (annoy cannot add items after ``build()``);
only its alive mask changes. ``best_rows`` scores rows exactly from the stored
unit vectors: annoy only proposes candidates, and a segment small enough is
scored whole, which costs less than one annoy search (a 10,000 x 128 product
takes about half the time of a 4,096-node annoy walk here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from annoy import AnnoyIndex

IDLE_TAIL_MIN = 1024  # rows outside the largest segment worth an idle merge, at least...
IDLE_MERGE_SHARE = 32  # ...and a 32nd of the largest: a merge rebuilds it whole


@dataclass
class Segment:
    name: str
    keys: list[bytes]
    vectors: np.ndarray  # rows of unit vectors
    filters: list[tuple[bytes, ...]]
    alive: np.ndarray  # bool per row
    annoy: Any
    by_filter: dict[tuple[int, bytes], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        groups: dict[tuple[int, bytes], list[int]] = {}
        for row, values in enumerate(self.filters):
            for i, value in enumerate(values):
                groups.setdefault((i, value), []).append(row)
        self.by_filter = {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}


def merge_wanted(segment_rows: list[int], tail: int) -> bool:
    """Whether an idle index should merge its segments and tail into one: only when
    the rows outside the largest segment are many, absolutely and as a share of it."""
    if not segment_rows:
        return False  # a tail alone is scanned exactly, cheaper than a segment
    largest = max(segment_rows)
    outside = sum(segment_rows) - largest + tail
    return outside >= max(IDLE_TAIL_MIN, largest // IDLE_MERGE_SHARE)


def best_rows(
    segment: Segment,
    query: np.ndarray,
    limit: int,
    masked: set[bytes],
    rows: np.ndarray | None = None,
) -> list[tuple[float, bytes]]:
    """(exact cosine, key) of the ``limit`` best live rows not in ``masked``, from
    ``rows`` or, when None, the whole segment; rows tied with the last one kept are
    kept too, so the caller's (score, key) order decides ties as a full scan would."""
    if rows is None:
        rows = np.flatnonzero(segment.alive)
        scores = (segment.vectors @ query)[rows] if len(rows) else np.empty(0, np.float32)
    else:
        rows = rows[segment.alive[rows]]
        scores = segment.vectors[rows] @ query
    take = limit + len(masked)  # masked rows may be among the best; never more of them
    if take < len(rows):
        kth = np.partition(scores, len(scores) - take)[len(scores) - take]
        picked = np.flatnonzero(scores >= kth)
        rows, scores = rows[picked], scores[picked]
    keys = segment.keys
    return [
        (float(s), keys[r])
        for s, r in zip(scores.tolist(), rows.tolist(), strict=True)
        if keys[r] not in masked
    ]


def matching_rows(
    segment: Segment, rows: np.ndarray, clauses: list[tuple[int, bytes]]
) -> np.ndarray:
    """A mask over ``rows``: those whose filter values meet any of the clauses."""
    filters = segment.filters
    return np.asarray(
        [any(filters[r][i] == v for i, v in clauses) for r in rows.tolist()], dtype=bool
    )


def save_segment(folder: str, segment: Segment) -> None:
    segment.annoy.save(os.path.join(folder, segment.name + ".ann"))
    np.savez(
        os.path.join(folder, segment.name + ".npz"),
        keys=np.asarray(segment.keys, dtype="S20"),
        vectors=segment.vectors,
        filters=np.asarray([[v.hex() for v in f] for f in segment.filters], dtype=str).reshape(
            len(segment.keys), -1
        ),
    )


def load_segment(folder: str, name: str, dimensions: int) -> Segment:
    annoy = AnnoyIndex(dimensions, "angular")
    annoy.load(os.path.join(folder, name + ".ann"))
    with np.load(os.path.join(folder, name + ".npz")) as data:
        keys = [bytes(k) for k in data["keys"].tolist()]
        vectors = data["vectors"].astype(np.float32)
        filters = [tuple(bytes.fromhex(h) for h in row) for row in data["filters"].tolist()]
    return Segment(name, keys, vectors, filters, np.ones(len(keys), dtype=bool), annoy)
