"""The recent commits' written index keys, kept in memory for OCC validation.

A transaction that read at snapshot S may commit only if no commit with
ts in (S, now] wrote a key inside its read set. The write log holds, for each
recent commit, the (index id, key) pairs it wrote (old and new versions), so
validation never touches storage. It is bounded: a snapshot older than the
oldest commit still held cannot be validated and counts as a conflict, and the
caller retries on a fresh snapshot.

Beside the ``(index id, key)`` pairs, a commit's written items include the
``SearchKey`` versions of documents in tables with search indexes, so a text
search in a read set conflicts with a commit that changes a matching document.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from engine.read_set import ReadSet, SearchKey

WrittenKey = tuple[str, bytes]
Written = WrittenKey | SearchKey


@dataclass(frozen=True)
class Conflict:
    ts: int
    index_id: str
    key: bytes | None  # None: the snapshot is older than the write log holds


class WriteLog:
    def __init__(self, floor_ts: int, entries_max: int) -> None:
        # Every commit with ts > floor_ts is held.
        self.floor_ts = floor_ts
        self._entries_max = entries_max
        self._entries: deque[tuple[int, Sequence[Written]]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def latest_ts(self) -> int:
        return self._entries[-1][0] if self._entries else self.floor_ts

    def append(self, ts: int, written: Sequence[Written]) -> None:
        self._entries.append((ts, written))
        while len(self._entries) > self._entries_max:
            self.floor_ts = self._entries.popleft()[0]

    def truncate_after(self, ts: int) -> None:
        """Forget tentatively appended commits (their durable write failed)."""
        while self._entries and self._entries[-1][0] > ts:
            self._entries.pop()

    def find_conflict(self, read_set: ReadSet, snapshot_ts: int) -> Conflict | None:
        if snapshot_ts < self.floor_ts:
            return Conflict(self.floor_ts, "", None)
        for ts, written in reversed(self._entries):
            if ts <= snapshot_ts:
                return None
            hit = read_set.first_conflict(written)
            if hit is not None:
                return Conflict(ts, hit[0], hit[1])
        return None
