"""What a transaction hands the committer: its snapshot, read set and final writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.read_set import ReadSet
from log.entry import Write


@dataclass(frozen=True)
class PendingCommit:
    snapshot_ts: int
    read_set: ReadSet
    writes: tuple[Write, ...]
    # Where each written document holds a commit ts placeholder, by id (engine.commit_ts).
    commit_ts_paths: Any = field(default_factory=dict)
    # A forwarded commit's unique id (engine.cluster): the leader stores it with the
    # entry, so a forward whose answer was lost is settled by looking it up, and sent
    # again it is not committed twice. None for a commit made where it was run.
    receipt: bytes | None = None
