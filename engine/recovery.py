"""Rebuilding every projection from the log alone (``headwater replay``)."""

from __future__ import annotations

import os
import shutil

from log.folder_lock import FolderLock
from log.lmdb_store import LmdbLog, open_environment
from projections.runner import ProjectionRunner, ReplayReport
from projections.search_indexes import SearchIndexes

SEARCH_REBUILD_TIMEOUT_S = 24 * 3600.0


def rebuild_projections(path: str | os.PathLike[str]) -> ReplayReport:
    """Drop the documents, index and search projections of a data folder; rebuild them."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No data folder at {os.fspath(path)!r}.")
    lock = FolderLock.acquire(path)  # a running server would keep writing meanwhile
    try:
        return _rebuild(os.fspath(path))
    finally:
        lock.release()


def _rebuild(path: str) -> ReplayReport:
    env = open_environment(path)
    try:
        log = LmdbLog(env)
        runner = ProjectionRunner(env, log)
        report = runner.rebuild()
        folder = os.path.join(path, "search")
        shutil.rmtree(folder, ignore_errors=True)
        search = SearchIndexes(folder, env, log, runner.documents)
        search.open()  # every index is missing: each is backfilled from the documents
        try:
            search.wait_caught_up(log.latest_ts() or 0, SEARCH_REBUILD_TIMEOUT_S)
        finally:
            search.close()
        return report
    finally:
        env.close()
