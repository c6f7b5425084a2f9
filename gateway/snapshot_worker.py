"""One background thread for snapshot exports and imports, so their work never runs
on the event loop and never two at once (an export and an import writing the same
tables would see each other half done). Jobs run in the order they were submitted;
a job's failure is its own to record (the job functions catch and write it), this
thread only logs what escaped."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

_log = logging.getLogger("headwater.snapshots")


class SnapshotWorker:
    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                # A daemon thread: a server stopping mid-export does not wait for it.
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="headwater-snapshots"
                )
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - the job records its own failures
                _log.exception("snapshot job failed")

    def close(self) -> None:
        """Stop after the running job; queued ones are dropped with the process."""
        self._jobs.put(None)
