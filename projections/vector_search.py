"""Vector indexes: immutable annoy segments plus an exact numpy tail.

Annoy cannot add items after ``build()``, so a vector index is a list of
built segments (annoy forest + the unit vectors + filter values + an alive
mask) and a tail of items added since the last build, searched exactly. A
delete or update marks the item's segment row dead (or drops it from the
tail) and adds the new version to the tail. When the tail reaches
``TAIL_ITEMS_MAX`` a background thread builds it into a new segment (and, once
there are ``SEGMENTS_MAX`` segments, merges every live item into one); the
swap keeps only the rows whose document did not change during the build. When
enough rows lie outside the largest segment (``merge_wanted``) and no commit
comes for ``IDLE_MERGE_S``, the same thread merges everything into one segment, so an
index that is mostly read costs one annoy search per query and scans no tail,
while a large index is not rebuilt whole for every small burst of writes.

Changes are staged and made visible together by ``commit(ts)``, so a reader
always sees the index exactly at its checkpoint. Scores are exact cosine
similarities from the stored unit vectors; annoy (angular) only proposes
candidates, over-fetched and widened until enough live, filter-matching rows
are found, and a filter matching few rows of a segment, or a segment of few rows,
is answered by numpy alone (``projections.vector_segments``).

Folder layout: ``seg-<n>.ann`` / ``seg-<n>.npz`` (ids, vectors, filter values;
written once), ``state.json`` (checkpoint ts, definition, segments and their
dead rows) and ``tail.npz``, all rewritten atomically by ``save``, at most every
``SAVE_INTERVAL_S`` and on close. Recovery loads them and replays the log
after the checkpoint; applying is idempotent.

Caveats: documents whose vector field is missing, of the wrong length, or all
zeros are not indexed (cosine is undefined for a zero vector).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from engine.errors import IntegrityError
from engine.schema import VectorIndexDef
from engine.values import get_field
from projections.text_search import filter_values, write_json_atomically
from projections.vector_segments import (
    Segment,
    best_rows,
    load_segment,
    matching_rows,
    merge_wanted,
    save_segment,
)

TAIL_ITEMS_MAX = 4096
SEGMENTS_MAX = 4
ANNOY_TREES = 16
EXACT_ROWS_MAX = 4096  # a filter matching at most this many rows of a segment: numpy only
# A segment of at most this many rows is scored whole by numpy, never walked by annoy:
# below it the exact product costs less than one annoy search of ANNOY_TREES trees.
EXACT_SEGMENT_ROWS = 12_288
SAVE_INTERVAL_S = 5.0
IDLE_MERGE_S = 1.0  # no commit for this long: several segments are merged into one
_FORMAT = 1
STATE_FILE = "state.json"


def unit_vector(doc: dict | None, field_path: str, dimensions: int) -> np.ndarray | None:
    """The document's vector as a float32 unit vector, or None if it is not indexable."""
    if doc is None:
        return None
    raw = get_field(doc, field_path)
    if not isinstance(raw, list) or len(raw) != dimensions:
        return None
    if not all(type(x) is float or type(x) is int for x in raw):
        return None
    vector = np.asarray(raw, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return (vector / norm).astype(np.float32)


@dataclass
class _TailItem:
    vector: np.ndarray
    filters: tuple[bytes, ...]
    version: int


class VectorIndex:
    """One vector index: segments + tail, staged changes, checkpoint, background builds."""

    def __init__(
        self,
        folder: str,
        definition: VectorIndexDef,
        *,
        background: bool = True,
        writable: bool = True,
        exact_segment_rows: int = EXACT_SEGMENT_ROWS,
        idle_merge_s: float = IDLE_MERGE_S,
    ) -> None:
        """``writable=False``: load what the folder's writer saved, never repair or save.
        ``exact_segment_rows``: segments up to this size are scored whole, not by annoy.
        ``idle_merge_s``: how long without a commit before segments are merged."""
        self.folder = folder
        self._writable = writable
        self.definition = definition
        self.dimensions = definition.dimensions
        self._background = background
        self._exact_segment_rows = exact_segment_rows
        self._idle_merge_s = idle_merge_s
        self._lock = threading.RLock()
        self._segments: list[Segment] = []
        self._tail: dict[bytes, _TailItem] = {}
        self._where: dict[bytes, tuple[int, int] | None] = {}  # None: in the tail
        self._staged: list[tuple[bytes, np.ndarray | None, tuple[bytes, ...]]] = []
        self._versions = 0
        self._next_segment = 0
        self._tail_matrix: tuple[list[bytes], np.ndarray, list[tuple[bytes, ...]]] | None = None
        self._builder: threading.Thread | None = None
        self._wake = threading.Event()  # the tail is full, or the builder must stop
        self._stopping = False
        self._commits = 0
        self._building: str | None = None  # a segment whose files exist but is not installed
        self._last_save = 0.0
        self.builds = 0
        self.checkpoint_ts: int | None = None
        if not writable:
            self._load_state()  # raises if there is nothing (whole) to read
            return
        os.makedirs(folder, exist_ok=True)
        self._load()

    # -- writing (the indexer thread) ------------------------------------------------

    def reset(self) -> None:
        self._wait_builder()
        with self._lock:
            self._segments, self._tail, self._where, self._staged = [], {}, {}, []
            self._tail_matrix = None
            self.checkpoint_ts = None
        self._staged.append((b"", None, ()))  # forces the next commit to save

    @property
    def staged(self) -> int:
        return len(self._staged)

    def stage(self, skey: bytes, old: dict | None, new: dict | None) -> None:
        vector = unit_vector(new, self.definition.vector_field, self.dimensions)
        filters = () if new is None else tuple(v for _, v in filter_values(new, self._fields))
        self._staged.append((skey, vector, filters))

    def commit(self, ts: int) -> None:
        """Make the staged changes visible at once and move the checkpoint to ``ts``."""
        with self._lock:
            for skey, vector, filters in self._staged:
                if skey:
                    self._replace(skey, vector, filters)
            self._staged = []
            self.checkpoint_ts = ts
            self._commits += 1
            full = len(self._tail) >= TAIL_ITEMS_MAX
            build = self._background and (full or self._merge_wanted())
        if build:
            self._start_build(full)
        if time.monotonic() - self._last_save >= SAVE_INTERVAL_S:
            self.save()

    def close(self) -> None:
        self._wait_builder()
        if self.checkpoint_ts is not None and self._writable:
            self.save()

    # -- reading -------------------------------------------------------------------------

    def search(
        self,
        query: np.ndarray,
        limit: int,
        clauses: list[tuple[int, bytes]],
        masked: set[bytes],
    ) -> list[tuple[float, bytes]]:
        """The ``limit`` best (cosine, key) at the checkpoint, skipping ``masked`` keys."""
        found: list[tuple[float, bytes]] = []
        with self._lock:
            for segment in self._segments:
                found.extend(self._search_segment(segment, query, limit, clauses, masked))
            found.extend(self._search_tail(query, limit, clauses, masked))
        found.sort(key=lambda item: (-item[0], item[1]))
        return found[:limit]

    def statistics(self) -> dict[str, int | None]:
        with self._lock:
            return {
                "segments": len(self._segments),
                "segment_rows": sum(len(s.keys) for s in self._segments),
                "tail": len(self._tail),
                "builds": self.builds,
                "checkpoint_ts": self.checkpoint_ts,
            }

    def wait_builds(self) -> None:
        """Wait for the background builds, the merge of an idle index's segments too."""
        builder = self._builder
        if builder is not None:
            builder.join()

    def build_now(self) -> None:
        """Build the tail into a segment synchronously (tests and benchmarks)."""
        self._wait_builder()
        self._build()

    # -- internals: state ----------------------------------------------------------------------

    @property
    def _fields(self) -> tuple[str, ...]:
        return self.definition.filter_fields

    def _replace(self, skey: bytes, vector: np.ndarray | None, filters: tuple[bytes, ...]) -> None:
        where = self._where.pop(skey, "absent")
        if where is None:
            del self._tail[skey]
            self._tail_matrix = None
        elif where != "absent":
            seg, row = where  # type: ignore[misc]
            self._segments[seg].alive[row] = False
        if vector is not None:
            self._versions += 1
            self._tail[skey] = _TailItem(vector, filters, self._versions)
            self._where[skey] = None
            self._tail_matrix = None

    def _search_segment(
        self,
        segment: Segment,
        query: np.ndarray,
        limit: int,
        clauses: list[tuple[int, bytes]],
        masked: set[bytes],
    ) -> list[tuple[float, bytes]]:
        size = len(segment.keys)
        if clauses:
            parts = [segment.by_filter.get(c) for c in clauses]
            rows = np.unique(np.concatenate([p for p in parts if p is not None] or [[]]))
            rows = rows.astype(np.int64)
            if len(rows) <= EXACT_ROWS_MAX or size <= self._exact_segment_rows:
                return best_rows(segment, query, limit, masked, rows)
        elif size <= self._exact_segment_rows:
            return best_rows(segment, query, limit, masked)
        wanted = limit + len(masked)
        n = max(4 * wanted, 64)
        while True:
            n = min(n, size)
            rows = np.asarray(
                segment.annoy.get_nns_by_vector(query.tolist(), n, search_k=n * ANNOY_TREES * 4),
                dtype=np.int64,
            )
            if clauses:
                rows = rows[matching_rows(segment, rows, clauses)]
            hits = best_rows(segment, query, limit, masked, rows)
            if len(hits) >= limit or n >= size:
                return hits
            n *= 4

    def _search_tail(
        self,
        query: np.ndarray,
        limit: int,
        clauses: list[tuple[int, bytes]],
        masked: set[bytes],
    ) -> list[tuple[float, bytes]]:
        if not self._tail:
            return []
        if self._tail_matrix is None:
            keys = list(self._tail)
            items = [self._tail[k] for k in keys]
            self._tail_matrix = (
                keys,
                np.stack([i.vector for i in items]),
                [i.filters for i in items],
            )
        keys, matrix, filters = self._tail_matrix
        scores = matrix @ query
        if not clauses:  # only the best limit + masked rows can make the top ``limit``
            take = min(len(keys), limit + len(masked))
            best = (
                np.argpartition(-scores, take - 1)[:take] if take < len(keys) else range(len(keys))
            )
            return [(float(scores[r]), keys[r]) for r in best if keys[r] not in masked]
        out = []
        for key, score, values in zip(keys, scores.tolist(), filters, strict=True):
            if key in masked:
                continue
            if clauses and not any(values[i] == v for i, v in clauses):
                continue
            out.append((float(score), key))
        return out

    # -- internals: builds -----------------------------------------------------------------------

    def _start_build(self, full: bool) -> None:
        if self._builder is not None and self._builder.is_alive():
            if full:
                self._wake.set()  # it may be waiting for the index to go idle
            return
        self._builder = threading.Thread(target=self._builds, name="headwater-annoy", daemon=True)
        self._builder.start()

    def _wait_builder(self) -> None:
        """Stop the builder: a build under way finishes, a wait for idleness ends."""
        builder = self._builder
        if builder is not None:
            self._stopping = True
            self._wake.set()
            builder.join()
            self._stopping = False
            self._builder = None

    def _builds(self) -> None:
        """The builder thread: build the tail while it is full; then, while a merge is
        wanted, wait for a quiet ``idle_merge_s`` and merge everything into one segment."""
        while not self._stopping:
            self._wake.clear()
            with self._lock:
                full = len(self._tail) >= TAIL_ITEMS_MAX
                wanted = self._merge_wanted()
                commits = self._commits
            if full:
                self._build()
                continue
            if not wanted:
                return
            if self._wake.wait(self._idle_merge_s):
                continue  # woken: the tail filled up, or the thread is asked to stop
            with self._lock:
                idle = self._commits == commits
            if idle and not self._stopping:
                self._build(merge_all=True)

    def _merge_wanted(self) -> bool:
        return merge_wanted([len(s.keys) for s in self._segments], len(self._tail))

    def _build(self, *, merge_all: bool = False) -> None:
        with self._lock:
            merge = merge_all or len(self._segments) + 1 >= SEGMENTS_MAX
            taken: list[tuple[bytes, np.ndarray, tuple[bytes, ...], Any]] = [
                (k, i.vector, i.filters, ("t", i.version)) for k, i in self._tail.items()
            ]
            if merge:
                for s_index, seg in enumerate(self._segments):
                    for row in np.flatnonzero(seg.alive).tolist():
                        taken.append(
                            (seg.keys[row], seg.vectors[row], seg.filters[row], (s_index, row))
                        )
            name = f"seg-{self._next_segment}"
            self._next_segment += 1
            if taken:
                self._building = name
            elif merge:
                self._segments = []  # every row is dead; nothing points into them
                self._tail_matrix = None
        if not taken:
            return
        vectors = np.stack([t[1] for t in taken])
        annoy = AnnoyIndex(self.dimensions, "angular")
        for row, vector in enumerate(vectors):
            annoy.add_item(row, vector.tolist())
        annoy.build(ANNOY_TREES, n_jobs=1)
        keys = [t[0] for t in taken]
        filters = [t[2] for t in taken]
        segment = Segment(name, keys, vectors, filters, np.zeros(len(keys), dtype=bool), annoy)
        save_segment(self.folder, segment)
        with self._lock:
            # Segments change only here and one build runs at a time, so ``replaced``
            # are still the first segments; rows of them not moved are dead.
            index = 0 if merge else len(self._segments)
            for row, (key, _, _, origin) in enumerate(taken):
                current = self._where.get(key, "absent")
                if origin[0] == "t":
                    item = self._tail.get(key)
                    still = current is None and item is not None and item.version == origin[1]
                else:
                    still = current == origin
                if still:
                    segment.alive[row] = True
                    if current is None:
                        del self._tail[key]
                    self._where[key] = (index, row)
            self._segments = [segment] if merge else [*self._segments, segment]
            self._tail_matrix = None
            self._building = None
            self.builds += 1
        self.save()

    # -- internals: files ----------------------------------------------------------------------

    def save(self) -> None:
        with self._lock:
            if self.checkpoint_ts is None:
                return
            keys = list(self._tail)
            tail_vectors = (
                np.stack([self._tail[k].vector for k in keys])
                if keys
                else np.zeros((0, self.dimensions), dtype=np.float32)
            )
            tail_filters = [[v.hex() for v in self._tail[k].filters] for k in keys]
            np.savez(
                os.path.join(self.folder, "tail.npz.tmp.npz"),
                keys=np.asarray(keys, dtype="S20"),
                vectors=tail_vectors,
            )
            os.replace(
                os.path.join(self.folder, "tail.npz.tmp.npz"),
                os.path.join(self.folder, "tail.npz"),
            )
            state = {
                "format": _FORMAT,
                "ts": self.checkpoint_ts,
                "definition": _definition_json(self.definition),
                "segments": [
                    {"name": s.name, "dead": np.flatnonzero(~s.alive).tolist()}
                    for s in self._segments
                ],
                "tailFilters": tail_filters,
                "nextSegment": self._next_segment,
            }
            write_json_atomically(os.path.join(self.folder, STATE_FILE), state)
            self._last_save = time.monotonic()
            names = {s.name for s in self._segments} | {self._building}
        for entry in os.listdir(self.folder):
            stem = entry.split(".")[0]
            if stem.startswith("seg-") and stem not in names:
                os.remove(os.path.join(self.folder, entry))

    def _load(self) -> None:
        try:
            self._load_state()
        except (OSError, ValueError, KeyError, IntegrityError):  # damaged: rebuilt by a backfill
            self._segments, self._tail, self._where = [], {}, {}
            self.checkpoint_ts = None
            shutil.rmtree(self.folder, ignore_errors=True)
            os.makedirs(self.folder, exist_ok=True)

    def _load_state(self) -> None:
        path = os.path.join(self.folder, STATE_FILE)
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            state = None
        except ValueError as exc:
            raise IntegrityError(f"Vector index state {path} is damaged: {exc}") from None
        if (
            state is None
            or state.get("format") != _FORMAT
            or state.get("definition") != _definition_json(self.definition)
        ):
            if not self._writable:
                raise FileNotFoundError(f"Vector index {self.folder} has no state to read yet.")
            shutil.rmtree(self.folder, ignore_errors=True)
            os.makedirs(self.folder, exist_ok=True)
            return
        for s_index, info in enumerate(state["segments"]):
            segment = load_segment(self.folder, info["name"], self.dimensions)
            segment.alive[info["dead"]] = False
            self._segments.append(segment)
            for row in np.flatnonzero(segment.alive).tolist():
                self._where[segment.keys[row]] = (s_index, row)
        with np.load(os.path.join(self.folder, "tail.npz")) as tail:
            for key, vector, hexes in zip(
                tail["keys"].tolist(), tail["vectors"], state["tailFilters"], strict=True
            ):
                self._versions += 1
                filters = tuple(bytes.fromhex(h) for h in hexes)
                self._tail[key] = _TailItem(vector.astype(np.float32), filters, self._versions)
                self._where[key] = None
        self._next_segment = int(state["nextSegment"])
        self.checkpoint_ts = int(state["ts"])
        self._last_save = time.monotonic()


def _definition_json(definition: VectorIndexDef) -> dict[str, Any]:
    return {
        "table": definition.table,
        "name": definition.name,
        "vectorField": definition.vector_field,
        "dimensions": definition.dimensions,
        "filterFields": list(definition.filter_fields),
    }
