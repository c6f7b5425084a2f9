"""A node's data folder as a cache of a shared store: kept when it fits, else emptied.

With ``--store``, the folder holds the log's mirror and the projections built
from it; the store holds the truth. A folder is kept when its marker names the
store's deployment and its newest log entry is, byte for byte, the store's
entry at that ts (the mirror is a prefix of the store's log: catching up
finishes it). Otherwise it is emptied and rebuilt from the store: a cache of
another deployment, one ahead of the store (restored from an older backup of
the database), or one that diverged.

A folder with a log but no marker is a standalone deployment's data, never a
cache: it is refused, not emptied, so pointing ``--data`` at real data by
mistake loses nothing.
"""

from __future__ import annotations

import json
import os
import shutil

import lmdb

from engine.errors import HeadwaterError
from log.codec import encode_entry
from log.folder_lock import LOCK_FILE
from log.lmdb_store import LmdbLog, open_environment
from log.shared_store import SharedLogStore

MARKER_FILE = "store.json"


class NotACacheError(HeadwaterError):
    """``--data`` holds a standalone deployment, which a store's node must not overwrite."""

    code = "DataFolderNotACache"


def prepare_cache(path: str, store: SharedLogStore) -> str:
    """Make ``path`` fit ``store``; returns what was done ("kept", "new", "rebuilt: why")."""
    marker = _read_marker(path)
    local_ts, local_bytes = _newest_local_entry(path)
    deployment = store.deployment_id()
    if marker is None:
        if local_ts is not None:
            raise NotACacheError(
                f"The data folder {path} holds a deployment of its own, not a cache of "
                f"{store.describe()}: move it into the store with `headwater export` and "
                "`headwater import --store ...`, or give --data an empty folder"
            )
        _write_marker(path, deployment)
        return "new"
    why = _unfit(marker, deployment, local_ts, local_bytes, store)
    if why is None:
        return "kept"
    _empty_folder(path)
    _write_marker(path, deployment)
    return f"rebuilt: {why}"


def snapshot_cache(source: str, target: str, *, env: lmdb.Environment | None = None) -> int | None:
    """Copy a node's cache into the new folder ``target``, consistently even while that
    node runs (one LMDB read transaction, compacted); returns the ts it reaches.

    A node started on the copy keeps it and catches up only the log after that ts, so a
    new node joins in the time the tail takes rather than the whole log. Search indexes
    are left out (they are backfilled from the documents when the node opens), as are
    cached file bytes (fetched from the store on first use). ``env``: the source's
    environment when this process has it open already (LMDB opens it once per process).
    """
    marker = _read_marker(source)
    if marker is None:
        raise NotACacheError(
            f"{source} is not the cache of a store's node (it has no {MARKER_FILE}); a "
            "standalone deployment moves into a store with `headwater export` and "
            "`headwater import --store ...`"
        )
    if os.path.exists(target) and os.listdir(target):
        raise FileExistsError(f"{target} is not empty: give the snapshot a new folder")
    os.makedirs(target, exist_ok=True)
    own = env is None
    source_env = open_environment(source) if env is None else env
    try:
        source_env.copy(target, compact=True)
    finally:
        if own:
            source_env.close()
    _write_marker(target, marker["deployment_id"])
    return _newest_local_entry(target)[0]


def reset_cache(path: str, store: SharedLogStore) -> None:
    """Empty a cache folder so the next open rebuilds it from the store (``replay --store``);
    a standalone deployment's folder is refused, as ``prepare_cache`` refuses it."""
    if _read_marker(path) is None and _newest_local_entry(path)[0] is not None:
        raise NotACacheError(
            f"The data folder {path} holds a deployment of its own, not a cache of "
            f"{store.describe()}: it is left as it is"
        )
    if os.path.isdir(path):
        _empty_folder(path)
    _write_marker(path, store.deployment_id())


def _unfit(
    marker: dict,
    deployment: str,
    local_ts: int | None,
    local_bytes: bytes | None,
    store: SharedLogStore,
) -> str | None:
    if marker.get("deployment_id") != deployment:
        return (
            f"it cached deployment {marker.get('deployment_id')!r}, the store holds {deployment!r}"
        )
    if local_ts is None:
        return None
    stored = list(store.read_range(local_ts, local_ts))
    if not stored:
        return f"its log reaches ts {local_ts}, which the store does not hold"
    if encode_entry(stored[0]) != local_bytes:
        return f"its entry at ts {local_ts} differs from the store's"
    return None


def _newest_local_entry(path: str) -> tuple[int | None, bytes | None]:
    if not os.path.exists(os.path.join(path, "data.mdb")):
        return None, None
    log = LmdbLog.open(path)
    try:
        latest = log.latest_ts()
        if latest is None:
            return None, None
        entries = list(log.read_range(latest, latest))
        return latest, encode_entry(entries[0])
    finally:
        log.close()


def _read_marker(path: str) -> dict | None:
    try:
        with open(os.path.join(path, MARKER_FILE), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(path: str, deployment: str) -> None:
    os.makedirs(path, exist_ok=True)
    target = os.path.join(path, MARKER_FILE)
    with open(target + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"deployment_id": deployment}, f)
    os.replace(target + ".tmp", target)


def _empty_folder(path: str) -> None:
    for name in os.listdir(path):
        if name == LOCK_FILE:  # ours: we hold it
            continue
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.remove(full)
