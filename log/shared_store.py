"""A log store several Headwater nodes share, and ``MemorySharedStore``, its reference.

A shared store (PostgreSQL, MySQL/MariaDB, SQLite) is the deployment's source
of truth: its log, the leader's lease, the nodes' reports, small deployment
state (the admin key) and stored files. Every node keeps its projections in a
local cache folder rebuilt from this log.

Commit order is decided by one node at a time, the holder of the lease. The
lease carries a fencing token that grows by one with every new holder, and
``append_fenced`` checks the token inside the same database transaction as
the insert, so a deposed leader can never append, whatever its clock says.
Lease expiry is judged by the store's clock (the database server's), never by
the nodes', so clock skew between nodes cannot make two leaders.

``MemorySharedStore`` keeps all of it in one process (threads stand in for
nodes); it is what the engine's cluster tests run against when no database is
needed, and every SQL store passes the same contract suite.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from engine.errors import HeadwaterError, IntegrityError
from log.entry import LogEntry
from log.store import LogStore, MemoryLog, check_batch


class FencedError(HeadwaterError):
    """An append by a node whose lease token is no longer the current one."""

    code = "NotLeader"


class StoreUnavailableError(HeadwaterError):
    """The shared store cannot be reached (or did not answer in time)."""

    code = "StoreUnavailable"


@dataclass(frozen=True)
class Lease:
    """The leader's lease: who holds it, where it answers, and its fencing token."""

    node_id: str
    address: str  # the holder's HTTP API URL, where other nodes send their commits
    token: int
    expires_in_ms: int  # by the store's clock, when read; <= 0 means expired


@dataclass(frozen=True)
class NodeReport:
    """One node's last heartbeat, as ``headwater status`` shows it."""

    node_id: str
    address: str
    applied_ts: int
    role: str  # "leader" | "follower" | "starting"
    code_hash: str  # the hash of the deployed code the node runs ("" when none)
    seen_ms_ago: int  # by the store's clock


@runtime_checkable
class SharedLogStore(LogStore, Protocol):
    """``LogStore`` plus what several nodes need to share one deployment."""

    def describe(self) -> str:
        """The store's URL with any password masked, for messages and ``status``."""
        ...

    def deployment_id(self) -> str:
        """The deployment's id: made once when the store is first initialised, then fixed."""
        ...

    def append_fenced(
        self, entries: Sequence[LogEntry], token: int, receipts: Sequence[bytes | None] = ()
    ) -> None:
        """Append like ``append``, only while ``token`` is the lease's current token.

        Raises ``FencedError`` (nothing appended) when another node took the
        lease. Atomic and durable when it returns. If the connection fails
        while committing, it reconnects (bounded) and checks whether the batch
        landed (the stored bytes of its first entry), returning normally if it
        did; ``StoreUnavailableError`` when that cannot be known in time.

        ``receipts``: per entry (in order; empty: none), the forwarded commit's
        receipt or None, stored with it for ``find_receipt``. A receipt the log
        holds already refuses the whole batch with ``IntegrityError``.
        """
        ...

    def find_receipt(self, receipt: bytes) -> int | None:
        """The ts of the entry appended with ``receipt``; None when there is none."""
        ...

    def wait_for_entries(self, after_ts: int, timeout_s: float) -> bool:
        """Block until the log holds an entry newer than ``after_ts`` or the timeout.

        True when it does. Backed by notifications where the database has them
        (PostgreSQL LISTEN/NOTIFY), else by polling; never misses an append.
        """
        ...

    def try_acquire_lease(self, node_id: str, address: str, ttl_ms: int) -> Lease | None:
        """Take the lease if it is free, expired or already ours (then renewed).

        A new holder gets the previous token + 1; the same holder keeps its
        token. ``None`` when another node holds an unexpired lease.
        """
        ...

    def renew_lease(self, node_id: str, token: int, ttl_ms: int) -> bool:
        """Extend our lease; False when it is no longer ours (token moved on)."""
        ...

    def release_lease(self, node_id: str, token: int) -> None:
        """Give the lease up now (a clean shutdown), if it is still ours."""
        ...

    def current_lease(self) -> Lease | None:
        """The lease as it stands (``None`` before any node ever led)."""
        ...

    def report_node(
        self, node_id: str, address: str, applied_ts: int, role: str, code_hash: str
    ) -> None:
        """Upsert this node's heartbeat."""
        ...

    def nodes(self) -> list[NodeReport]:
        """Every node that ever reported, most recently seen first."""
        ...

    def forget_node(self, node_id: str) -> None:
        """Remove a node's report (a node that left for good)."""
        ...

    def get_meta(self, key: str) -> str | None:
        """Small deployment state (the admin key, ...), ``None`` when unset."""
        ...

    def set_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless the key is set; returns the value that is stored."""
        ...

    def put_blob(self, sha256: bytes, data: bytes) -> None:
        """Store a file's bytes under their digest (idempotent)."""
        ...

    def get_blob(self, sha256: bytes) -> bytes | None:
        """A stored file's bytes, ``None`` when absent."""
        ...

    def delete_blob(self, sha256: bytes) -> None:
        """Remove a file's bytes (no error when absent)."""
        ...

    def blob_digests(self) -> list[bytes]:
        """Every stored digest (for the sweep of unreferenced files)."""
        ...


class MemorySharedStore(MemoryLog):
    """``SharedLogStore`` in one process: the reference implementation, for tests."""

    def __init__(self, deployment_id: str = "memory-deployment") -> None:
        super().__init__()
        self._deployment_id = deployment_id
        self._state = threading.Condition()
        self._lease: tuple[str, str, int, float] | None = None  # node, address, token, expiry
        self._nodes: dict[str, tuple[str, int, str, str, float]] = {}
        self._meta: dict[str, str] = {}
        self._blobs: dict[bytes, bytes] = {}
        self._receipts: dict[bytes, int] = {}
        self.fail_appends = False  # a test cuts the store: appends raise StoreUnavailableError

    def describe(self) -> str:
        return "memory://"

    def deployment_id(self) -> str:
        return self._deployment_id

    def append(self, entries: Sequence[LogEntry]) -> None:
        with self._state:
            super().append(entries)
            self._state.notify_all()

    def append_fenced(
        self, entries: Sequence[LogEntry], token: int, receipts: Sequence[bytes | None] = ()
    ) -> None:
        self._require_open()
        with self._state:
            if self.fail_appends:
                raise StoreUnavailableError("The shared store is unreachable (cut by a test)")
            if self._lease is None or self._lease[2] != token:
                raise FencedError(
                    f"Append refused: lease token {token} is not the current one "
                    f"({self._lease[2] if self._lease else 'none'}); another node leads"
                )
            check_batch(list(entries), self._latest())
            stamped = {r: e.ts for e, r in zip(entries, receipts, strict=False) if r is not None}
            if len(stamped) < sum(r is not None for r in receipts) or (
                stamped.keys() & self._receipts.keys()
            ):
                raise IntegrityError("Append refused: a receipt the log holds already")
            self.append(entries)
            self._receipts.update(stamped)

    def find_receipt(self, receipt: bytes) -> int | None:
        with self._state:
            return self._receipts.get(receipt)

    def wait_for_entries(self, after_ts: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._state:
            while (self._latest() or 0) <= after_ts:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._state.wait(left)
            return True

    def try_acquire_lease(self, node_id: str, address: str, ttl_ms: int) -> Lease | None:
        with self._state:
            now = time.monotonic()
            if self._lease is not None:
                holder, _, token, expiry = self._lease
                if holder == node_id:
                    self._lease = (node_id, address, token, now + ttl_ms / 1000)
                    return self._as_lease()
                if expiry > now:
                    return None
                token += 1
            else:
                token = 1
            self._lease = (node_id, address, token, now + ttl_ms / 1000)
            return self._as_lease()

    def renew_lease(self, node_id: str, token: int, ttl_ms: int) -> bool:
        with self._state:
            if self._lease is None or self._lease[0] != node_id or self._lease[2] != token:
                return False
            self._lease = (node_id, self._lease[1], token, time.monotonic() + ttl_ms / 1000)
            return True

    def release_lease(self, node_id: str, token: int) -> None:
        with self._state:
            if self._lease is not None and self._lease[0] == node_id and self._lease[2] == token:
                self._lease = (node_id, self._lease[1], token, 0.0)

    def current_lease(self) -> Lease | None:
        with self._state:
            return self._as_lease()

    def _as_lease(self) -> Lease | None:
        if self._lease is None:
            return None
        node_id, address, token, expiry = self._lease
        # Rounded up: "expired" (<= 0) only once try_acquire_lease would take it over
        # (truncating, a lease with under 1 ms left read as expired but was refused).
        return Lease(node_id, address, token, math.ceil((expiry - time.monotonic()) * 1000))

    def report_node(
        self, node_id: str, address: str, applied_ts: int, role: str, code_hash: str
    ) -> None:
        with self._state:
            self._nodes[node_id] = (address, applied_ts, role, code_hash, time.monotonic())

    def nodes(self) -> list[NodeReport]:
        with self._state:
            now = time.monotonic()
            reports = [
                NodeReport(node, a, ts, role, code, int((now - seen) * 1000))
                for node, (a, ts, role, code, seen) in self._nodes.items()
            ]
        return sorted(reports, key=lambda r: r.seen_ms_ago)

    def forget_node(self, node_id: str) -> None:
        with self._state:
            self._nodes.pop(node_id, None)

    def get_meta(self, key: str) -> str | None:
        with self._state:
            return self._meta.get(key)

    def set_meta_if_absent(self, key: str, value: str) -> str:
        with self._state:
            return self._meta.setdefault(key, value)

    def put_blob(self, sha256: bytes, data: bytes) -> None:
        with self._state:
            self._blobs[bytes(sha256)] = bytes(data)

    def get_blob(self, sha256: bytes) -> bytes | None:
        with self._state:
            return self._blobs.get(bytes(sha256))

    def delete_blob(self, sha256: bytes) -> None:
        with self._state:
            self._blobs.pop(bytes(sha256), None)

    def blob_digests(self) -> list[bytes]:
        with self._state:
            return sorted(self._blobs)

    def close(self) -> None:
        with self._state:
            super().close()
            self._state.notify_all()


def require_entry_bytes_equal(stored: bytes | None, expected: bytes, ts: int) -> bool:
    """After an ambiguous commit: did our batch land? Raises if another entry holds its ts."""
    if stored is None:
        return False
    if stored != expected:
        raise IntegrityError(f"The log holds another entry at ts {ts} than the one appended")
    return True
