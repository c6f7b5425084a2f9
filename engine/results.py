"""What the embedded API returns: plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.read_set import ReadSet


@dataclass(frozen=True)
class MutationResult:
    value: Any
    ts: int  # the commit ts (the snapshot ts when the mutation wrote nothing)


@dataclass(frozen=True)
class QueryResult:
    value: Any
    ts: int  # the snapshot ts the query read at
    read_set: ReadSet
    error: Exception | None = None  # set only on a subscription re-run that raised
