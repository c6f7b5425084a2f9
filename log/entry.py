"""The unit of truth: one committed transaction as one ``LogEntry``.

Everything else in Headwater is a projection of a sequence of these, so the
shape stays minimal: the commit timestamp and, per written document, what the
document became and which version it replaced. The classes are plain frozen
data with no checks of their own: the codec checks an entry before it is
written and after it is read back, so replay builds them cheaply.

Replay builds millions of these, and the ``__init__`` that ``dataclass``
generates for a frozen class pays an ``object.__setattr__`` call per field;
ours store through the slot descriptors directly, about twice as fast. They
behave the same: keyword arguments, equality, hashing, ``dataclasses.replace``
and ``FrozenInstanceError`` on assignment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TS_MIN = 1
"""The smallest valid commit timestamp (nanoseconds since the epoch; 0 means "none")."""
TS_MAX = (1 << 63) - 1
"""Timestamps are int64."""


@dataclass(frozen=True, slots=True, init=False)
class Write:
    """One document written by a transaction.

    ``value`` is the whole new document, or ``None`` for a delete (a tombstone).
    ``prev_ts`` is the commit ts of the version this write replaces, ``None``
    for an insert; projections use it to find the old index keys without a read.
    """

    id: str
    table: str
    prev_ts: int | None
    value: dict[str, Any] | None

    def __init__(
        self, id: str, table: str, prev_ts: int | None, value: dict[str, Any] | None
    ) -> None:
        _set_write_id(self, id)
        _set_write_table(self, table)
        _set_write_prev_ts(self, prev_ts)
        _set_write_value(self, value)

    @property
    def is_delete(self) -> bool:
        return self.value is None


@dataclass(frozen=True, slots=True, init=False)
class LogEntry:
    """One committed transaction: its commit ts (int64 ns, > 0) and its writes in order."""

    ts: int
    writes: tuple[Write, ...]

    def __init__(self, ts: int, writes: tuple[Write, ...]) -> None:
        _set_entry_ts(self, ts)
        _set_entry_writes(self, writes)


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    # The slot descriptors exist only once ``dataclass(slots=True)`` has rebuilt the class.
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_write_id = _slot_setter(Write, "id")
_set_write_table = _slot_setter(Write, "table")
_set_write_prev_ts = _slot_setter(Write, "prev_ts")
_set_write_value = _slot_setter(Write, "value")
_set_entry_ts = _slot_setter(LogEntry, "ts")
_set_entry_writes = _slot_setter(LogEntry, "writes")
