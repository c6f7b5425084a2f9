"""Rebuilding every stored projection from the log alone (``headwater replay``)."""

from __future__ import annotations

import os

from log.lmdb_store import LmdbLog, open_environment
from projections.runner import ProjectionRunner, ReplayReport


def rebuild_projections(path: str | os.PathLike[str]) -> ReplayReport:
    """Drop the documents and index projections of a data folder and replay the log."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No data folder at {os.fspath(path)!r}.")
    env = open_environment(os.fspath(path))
    try:
        return ProjectionRunner(env, LmdbLog(env)).rebuild()
    finally:
        env.close()
