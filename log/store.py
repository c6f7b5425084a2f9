"""The log store interface, and ``MemoryLog``, its in-memory reference.

Every store (LMDB now, PostgreSQL later) implements ``LogStore`` and passes the
one shared contract suite, so the engine and the projections can be written
against the interface and tested against the simplest implementation.
``MemoryLog`` is that implementation: a list, the same checks, no durability.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from engine.errors import IntegrityError
from log.codec import encode_entry
from log.entry import LogEntry


@runtime_checkable
class LogStore(Protocol):
    """An ordered, append-only sequence of ``LogEntry`` keyed by strictly increasing ts.

    Reads see a consistent snapshot taken when the read is started: entries
    appended while an iterator is open are not yielded by it.
    """

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append a batch atomically; durable when this returns.

        Every ts must be greater than ``latest_ts()`` and the batch strictly
        increasing, else ``IntegrityError`` and nothing is appended.
        """
        ...

    def read_from(self, ts: int) -> Iterator[LogEntry]:
        """The entries with ``entry.ts >= ts``, in ts order."""
        ...

    def read_range(self, start_ts: int, end_ts: int) -> Iterator[LogEntry]:
        """The entries with ``start_ts <= entry.ts <= end_ts``, in ts order."""
        ...

    def read_backward(self, before_ts: int, limit: int) -> list[LogEntry]:
        """At most ``limit`` entries with ``entry.ts < before_ts``, newest first."""
        ...

    def latest_ts(self) -> int | None:
        """The ts of the newest entry, ``None`` when the log is empty."""
        ...

    def first_ts(self) -> int | None:
        """The ts of the oldest retained entry, ``None`` when the log is empty."""
        ...

    def count(self) -> int:
        """How many entries the log holds."""
        ...

    def close(self) -> None:
        """Release the store; using it afterwards raises ``IntegrityError``."""
        ...


def check_batch(entries: Sequence[LogEntry], latest_ts: int | None) -> None:
    """Raise ``IntegrityError`` unless ``entries`` may follow ``latest_ts``.

    Shared by every store so they refuse exactly the same batches. Timestamps
    come from the committer's oracle; a violation is a Headwater bug, and
    appending anyway would corrupt every projection.
    """
    previous = latest_ts
    for index, entry in enumerate(entries):
        if type(entry) is not LogEntry:
            raise IntegrityError(
                f"Log append: item {index} of the batch is a {type(entry).__name__}, not a LogEntry"
            )
        ts = entry.ts
        if type(ts) is not int:
            raise IntegrityError(f"Log append: item {index} has a non-int ts {ts!r}")
        if previous is not None and ts <= previous:
            raise IntegrityError(
                f"Log append: ts {ts} (item {index} of the batch) is not greater than "
                f"the previous ts {previous}; log timestamps strictly increase"
            )
        previous = ts


def check_read_ts(*timestamps: int) -> None:
    """Raise ``IntegrityError`` unless every read bound is an int (any int is a valid bound)."""
    for ts in timestamps:
        if type(ts) is not int:
            raise IntegrityError(f"Log read: a ts bound must be an int, got {ts!r}")


class MemoryLog:
    """``LogStore`` in a list: the reference implementation, for tests and tools."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._timestamps: list[int] = []
        self._lock = threading.Lock()
        self._closed = False

    def append(self, entries: Sequence[LogEntry]) -> None:
        self._require_open()
        entries = list(entries)
        with self._lock:
            check_batch(entries, self._latest())
            for entry in entries:
                encode_entry(entry)  # the same value checks as a real store
            self._entries.extend(entries)
            self._timestamps.extend(e.ts for e in entries)

    def read_from(self, ts: int) -> Iterator[LogEntry]:
        self._require_open()
        check_read_ts(ts)
        with self._lock:
            start = bisect.bisect_left(self._timestamps, ts)
            stop = len(self._entries)
        return _slice_iterator(self._entries, start, stop)

    def read_range(self, start_ts: int, end_ts: int) -> Iterator[LogEntry]:
        self._require_open()
        check_read_ts(start_ts, end_ts)
        with self._lock:
            start = bisect.bisect_left(self._timestamps, start_ts)
            stop = bisect.bisect_right(self._timestamps, end_ts)
        return _slice_iterator(self._entries, start, stop)

    def read_backward(self, before_ts: int, limit: int) -> list[LogEntry]:
        self._require_open()
        check_read_ts(before_ts, limit)
        with self._lock:
            stop = bisect.bisect_left(self._timestamps, before_ts)
            return self._entries[max(0, stop - max(limit, 0)) : stop][::-1]

    def latest_ts(self) -> int | None:
        self._require_open()
        return self._latest()

    def first_ts(self) -> int | None:
        self._require_open()
        timestamps = self._timestamps
        return timestamps[0] if timestamps else None

    def count(self) -> int:
        self._require_open()
        return len(self._entries)

    def close(self) -> None:
        self._closed = True

    def statistics(self) -> dict[str, int | None]:
        return {"entries": len(self._entries), "latest_ts": self._latest()}

    def _latest(self) -> int | None:
        timestamps = self._timestamps
        return timestamps[-1] if timestamps else None

    def _require_open(self) -> None:
        if self._closed:
            raise IntegrityError("The log is closed")


def _slice_iterator(entries: list[LogEntry], start: int, stop: int) -> Iterator[LogEntry]:
    # The list only grows and entries are immutable, so the bounds taken at the
    # call are a snapshot: later appends land past ``stop``.
    for index in range(start, stop):
        yield entries[index]
