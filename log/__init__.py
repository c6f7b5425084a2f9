"""The log: the ordered, durable sequence of committed transactions.

Everything else in Headwater is a projection of it. This package knows the
entry format and how to store it, and nothing about documents or indexes.
"""

from __future__ import annotations

from log.codec import FORMAT_VERSION, decode_entry, encode_entry
from log.entry import LogEntry, Write
from log.lmdb_store import LmdbLog, open_environment
from log.store import LogStore, MemoryLog

__all__ = [
    "FORMAT_VERSION",
    "LmdbLog",
    "LogEntry",
    "LogStore",
    "MemoryLog",
    "Write",
    "decode_entry",
    "encode_entry",
    "open_environment",
]
