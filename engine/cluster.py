"""This node's part in a cluster: the leader's lease, the heartbeat, where a commit goes.

Several Headwater processes share one deployment through a ``SharedLogStore``
(``log.shared_store``). One of them at a time holds the lease and orders
commits: its committer validates, appends to the store with the lease's
fencing token, then applies locally. Every other node runs its transactions
locally and forwards the resulting ``PendingCommit`` to the leader (through
``forward``, which the gateway supplies: only it speaks HTTP), then waits until
it has applied the returned ts from the store itself, so the caller reads its
own write on the node it talks to.

The lease thread checks every ``cluster_lease_check_ms``: a leader renews, a
follower takes the lease when it is free or expired (the store's clock
decides), so a dead leader is replaced within ttl + one check. A leader that
cannot renew in time stops leading at once; the store's fence refuses any
append it still tries.

A forward that fails without an answer is ambiguous: the old leader may have
appended the commit before it died. The node then waits for a lease change (a
new holder fences the old one) or for the old leader to answer again, catches
up, and looks in the log for the commit's first write (its document id and
replaced version, which no other commit can share) before it tries again, so
a commit is never applied twice.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from engine.errors import ConflictError, HeadwaterError
from engine.limits import LIMITS, Limits
from engine.pending_commit import PendingCommit
from log.shared_store import FencedError, Lease, SharedLogStore, StoreUnavailableError

logger = logging.getLogger("headwater.cluster")

LEADER = "leader"
FOLLOWER = "follower"


class LeaderUnreachableError(HeadwaterError):
    """The leader did not answer a forwarded commit (``sent``: it may have received it)."""

    code = "LeaderUnreachable"

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


# forward(leader_address, pending) -> commit ts; raises ConflictError, FencedError
# (the receiver no longer leads) or LeaderUnreachableError.
Forward = Callable[[str, PendingCommit], int]


class ClusterNode:
    def __init__(
        self,
        store: SharedLogStore,
        *,
        address: str = "",
        forward: Forward | None = None,
        node_id: str | None = None,
        code_hash: str = "",
        limits: Limits = LIMITS,
        may_lead: bool = True,
    ) -> None:
        """``may_lead=False``: never take the lease (a command-line tool beside the
        servers, which no other node could send its commits to)."""
        self.store = store
        self.may_lead = may_lead
        self.node_id = node_id or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.address = address
        self.code_hash = code_hash
        self._forward = forward
        self._limits = limits
        self._state = threading.Condition()
        self._token: int | None = None
        self._valid_until = 0.0  # monotonic: past it, we no longer count on our lease
        self._leader: Lease | None = None
        self._role_listeners: list[Callable[[str], None]] = []
        self._applied_ts: Callable[[], int] = lambda: 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.elections_won = 0

    # -- wiring ---------------------------------------------------------------------

    def set_forward(self, forward: Forward, address: str) -> None:
        """Where commits go when another node leads, and where this one answers."""
        self._forward = forward
        self.address = address

    def on_role_change(self, listener: Callable[[str], None]) -> None:
        """``listener("leader" | "follower")`` on the lease thread whenever the role flips."""
        self._role_listeners.append(listener)

    def start(self, applied_ts: Callable[[], int]) -> None:
        """Start the lease thread (one round now, so a lone node leads at once)."""
        self._applied_ts = applied_ts
        self._round()
        self._thread = threading.Thread(target=self._loop, name="headwater-lease", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._state:
            token, self._token = self._token, None
        if token is not None:
            try:
                self.store.release_lease(self.node_id, token)
            except Exception:  # the lease expires by itself
                logger.warning("could not release the lease on close", exc_info=True)

    # -- what the committer asks ---------------------------------------------------

    def lease_token(self) -> int | None:
        """Our fencing token while our lease is (by our own conservative count) alive."""
        with self._state:
            if self._token is not None and time.monotonic() < self._valid_until:
                return self._token
            return None

    @property
    def role(self) -> str:
        return LEADER if self.lease_token() is not None else FOLLOWER

    def leader_address(self) -> str | None:
        with self._state:
            lease = self._leader
        return lease.address if lease is not None and lease.expires_in_ms > 0 else None

    def route_commit(
        self,
        pending: PendingCommit,
        commit_here: Callable[[PendingCommit], int],
        wait_applied: Callable[[int, float], bool],
        find_landed: Callable[[PendingCommit], int | None],
    ) -> int:
        """Commit ``pending`` through the leader, whoever it is; returns its ts.

        A forwarded commit carries a receipt (the same one each time it is sent), which
        the leader stores with its entry: an unanswered forward is settled by finding
        the receipt in the log, and one sent twice is committed once."""
        if pending.receipt is None:
            pending = dataclasses.replace(pending, receipt=os.urandom(16))
        deadline = time.monotonic() + self._limits.cluster_commit_wait_ms / 1000
        while True:
            if self.lease_token() is not None:
                try:
                    return commit_here(pending)
                except FencedError:
                    pass  # deposed between the check and the append: route again
            else:
                leader = self.leader_address()
                if leader and leader != self.address and self._forward is not None:
                    ts = self._forward_once(leader, pending, find_landed, deadline)
                    if ts is not None:
                        left = max(deadline - time.monotonic(), 1.0)
                        if not wait_applied(ts, left):
                            raise StoreUnavailableError(
                                f"Commit {ts} is durable, but this node could not read it back "
                                f"from the store within {left:.0f} s"
                            )
                        return ts
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"No leader took the commit within {self._limits.cluster_commit_wait_ms} ms "
                    f"(this node cannot reach {self.store.describe()} or a leader, or no node "
                    "holds the lease); the commit was not applied"
                )
            self._wait_for_lease_change(0.1)

    def _forward_once(
        self,
        leader: str,
        pending: PendingCommit,
        find_landed: Callable[[PendingCommit], int | None],
        deadline: float,
    ) -> int | None:
        assert self._forward is not None
        try:
            return self._forward(leader, pending)
        except ConflictError:
            raise
        except FencedError:
            self._refresh_lease()
            return None
        except LeaderUnreachableError as exc:
            if not exc.sent:
                self._refresh_lease()
                return None
            logger.warning("forwarded commit to %s got no answer: %s", leader, exc.message)
        # Ambiguous: wait until a new holder fences the old leader, or long enough for
        # a live one to have finished whatever it was doing with the commit; then look.
        token = self._leader.token if self._leader is not None else None
        settle = time.monotonic() + 2 * self._limits.cluster_lease_ttl_ms / 1000
        while time.monotonic() < min(settle, deadline):
            self._refresh_lease()
            lease = self._leader
            if lease is not None and lease.token != token:
                break
            time.sleep(0.1)
        return find_landed(pending)

    # -- the lease thread ------------------------------------------------------------

    def _loop(self) -> None:
        interval_s = self._limits.cluster_lease_check_ms / 1000
        while not self._stop.wait(interval_s):
            self._round()

    def _round(self) -> None:
        ttl_ms = self._limits.cluster_lease_ttl_ms
        started = time.monotonic()
        was_leader = self.lease_token() is not None
        try:
            with self._state:
                token = self._token
            if token is not None and self.store.renew_lease(self.node_id, token, ttl_ms):
                self._set_lease(token, started + ttl_ms / 1000 * 0.8)
            elif not self.may_lead:
                self._set_lease(None, 0.0)
            else:
                lease = self.store.try_acquire_lease(self.node_id, self.address, ttl_ms)
                if lease is not None:
                    if lease.token != token:
                        self.elections_won += 1
                        logger.info("this node leads now (lease token %d)", lease.token)
                    self._set_lease(lease.token, started + ttl_ms / 1000 * 0.8)
                else:
                    self._set_lease(None, 0.0)
            self._refresh_lease()
            role = LEADER if self.lease_token() is not None else FOLLOWER
            self.store.report_node(
                self.node_id, self.address, self._applied_ts(), role, self.code_hash
            )
        except Exception as exc:  # the store is unreachable: stop counting on the lease
            logger.warning("lease round failed: %s", exc)
            if time.monotonic() >= self._valid_until:
                self._set_lease(None, 0.0)
        is_leader = self.lease_token() is not None
        if is_leader != was_leader:
            for listener in list(self._role_listeners):
                try:
                    listener(LEADER if is_leader else FOLLOWER)
                except Exception:
                    logger.exception("a role listener failed")

    def _set_lease(self, token: int | None, valid_until: float) -> None:
        with self._state:
            self._token = token
            self._valid_until = valid_until
            self._state.notify_all()

    def _refresh_lease(self) -> None:
        try:
            lease = self.store.current_lease()
        except Exception:
            return
        with self._state:
            self._leader = lease
            self._state.notify_all()

    def _wait_for_lease_change(self, timeout_s: float) -> None:
        self._refresh_lease()
        with self._state:
            self._state.wait(timeout_s)

    def statistics(self) -> dict[str, Any]:
        lease = self._leader
        return {
            "node_id": self.node_id,
            "role": self.role,
            "leader": None if lease is None else lease.node_id,
            "lease_token": None if lease is None else lease.token,
            "elections_won": self.elections_won,
        }


def cluster_status(store: Any, *, count_entries: bool = True) -> dict[str, Any]:
    """The nodes, the leader and their lag, from the store alone (``headwater status``
    and the dashboard's health screen). A node's lag is the log it has yet to apply, in
    ms of commit time; one not seen for three lease lifetimes is shown as gone, and one
    whose last heartbeat said it led but that no longer holds the lease as deposed."""
    latest = store.latest_ts() or 0
    lease = store.current_lease()
    gone_ms = 3 * LIMITS.cluster_lease_ttl_ms
    leader = None
    if lease is not None and lease.expires_in_ms > 0:
        leader = {"node": lease.node_id, "address": lease.address, "token": lease.token}
    return {
        "store": store.describe(),
        "deployment": store.deployment_id(),
        "latest_ts": latest,
        "entries": store.count() if count_entries else None,  # a scan on SQL stores
        "leader": leader,
        "nodes": [
            {
                "node": n.node_id,
                "address": n.address,
                "role": _shown_role(n.role, n.node_id, n.seen_ms_ago, leader, gone_ms),
                "applied_ts": n.applied_ts,
                "code_hash": n.code_hash,
                "lag_ms": max(latest - n.applied_ts, 0) / 1e6,
                "seen_ms_ago": n.seen_ms_ago,
            }
            for n in store.nodes()
        ],
    }


def _shown_role(
    reported: str, node_id: str, seen_ms_ago: float, leader: dict | None, gone_ms: int
) -> str:
    if seen_ms_ago >= gone_ms:
        return "gone"
    if reported == "leader" and (leader is None or leader["node"] != node_id):
        return "deposed"  # its heartbeat predates losing the lease (dead, or cut off)
    return reported
