"""Several nodes on one shared store, in one process, on every kind of store.

Each node is a ``Database`` over its own cache folder with a ``ClusterNode``
and, for the SQL stores, its own store connection (as a separate process would
have); forwarding calls the leader's ``commit_forwarded`` through the wire
codec, as the gateway's HTTP forwarding does. Real processes on PostgreSQL:
``tests/e2e/test_cluster_postgres.py``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from shared_databases import fresh_store_url

from engine import Database
from engine.cluster import ClusterNode, LeaderUnreachableError, cluster_status
from engine.cluster_cache import NotACacheError, snapshot_cache
from engine.commit_wire import decode_pending, encode_pending
from engine.committer import wall_clock_ns
from engine.errors import ConflictError, TooManyConflictsError
from engine.limits import LIMITS
from log.shared_store import MemorySharedStore, SharedLogStore, StoreUnavailableError
from log.store_url import open_shared_store

FAST = LIMITS.__class__(
    **{**LIMITS.__dict__, "cluster_lease_ttl_ms": 600, "cluster_lease_check_ms": 100}
)


class Cluster:
    def __init__(self, root: Path, store: str = "memory://", deployment: str = "memory") -> None:
        """``store``: one in-memory store all nodes share, or a URL each node opens."""
        self.root = root
        # memory:// opens a new store each time: its nodes share the one object instead.
        self.url = store if isinstance(store, str) and store != "memory://" else None
        self.store: SharedLogStore = (
            open_shared_store(self.url) if self.url else MemorySharedStore(deployment)
        )
        self.opened: list[SharedLogStore] = [self.store]
        self.nodes: dict[str, Database] = {}
        self.dead: set[str] = set()
        self.answers_lost = 0  # forwards whose answer is lost
        self.land_unanswered = False  # whether such a forward was committed all the same

    def forward(self, address: str, pending):
        if address in self.dead or address not in self.nodes:
            raise LeaderUnreachableError(f"{address} is down", sent=False)
        if self.answers_lost:  # the request went out; its answer, if any, never came back
            self.answers_lost -= 1
            if self.land_unanswered:
                self.nodes[address].committer.commit_forwarded(pending)
            raise LeaderUnreachableError(f"{address} did not answer", sent=True)
        return self.nodes[address].committer.commit_forwarded(
            decode_pending(encode_pending(pending))
        )

    def start(self, name: str, **options) -> Database:
        store = self.store
        if self.url:
            store = open_shared_store(self.url)
            self.opened.append(store)
        node = ClusterNode(store, address=name, forward=self.forward, node_id=name, limits=FAST)
        db = Database.open(self.root / name, cluster=node, limits=FAST, **options)
        self.nodes[name] = db
        return db

    def close(self) -> None:
        for name, db in self.nodes.items():
            if name not in self.dead:
                db.close()
        for store in self.opened:
            store.close()


@pytest.fixture(params=["memory", "postgresql", "mysql", "sqlite"])
def cluster(request, tmp_path):
    c = Cluster(tmp_path, fresh_store_url(request, request.param, tmp_path))
    yield c
    c.close()


@pytest.fixture
def memory_cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def insert(tx, body):
    return tx.insert("messages", {"body": body})


def bodies(tx):
    return sorted(d["body"] for d in tx.query("messages").collect())


def test_a_write_through_either_node_is_read_on_both(cluster):
    a = cluster.start("a")
    b = cluster.start("b")
    assert a.cluster.role == "leader" and b.cluster.role == "follower"
    ts_b = b.mutate(insert, "from b").ts  # forwarded to a
    assert b.query(bodies).value == ["from b"]  # read-your-write on the node written to
    assert a.committer.wait_applied(ts_b, 5)
    ts_a = a.mutate(insert, "from a").ts
    assert b.committer.wait_applied(ts_a, 5)
    assert a.query(bodies).value == b.query(bodies).value == ["from a", "from b"]
    assert [e.ts for e in cluster.store.read_from(0)][-2:] == [ts_b, ts_a]


def test_a_live_query_on_one_node_sees_a_commit_made_through_another(cluster):
    a = cluster.start("a")
    b = cluster.start("b")
    seen = []
    sub = b.subscribe(bodies, on_change=lambda r: seen.append(r.value))
    a.mutate(insert, "hello")
    deadline = time.monotonic() + 5
    while ["hello"] not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    sub.close()
    assert ["hello"] in seen


def test_increments_from_both_nodes_are_serializable(cluster):
    """Every acknowledged increment counts exactly once (no lost update across nodes).

    One hot document under four tight loops starves some retries of the follower (its
    snapshot trails the leader's commits): those fail with TooManyConflicts and change
    nothing, which the count must show too.
    """
    a = cluster.start("a")
    b = cluster.start("b")
    created = a.mutate(lambda tx: tx.insert("counters", {"n": 0}))
    counter_id = created.value
    assert b.committer.wait_applied(created.ts, 5)
    acked = {"a": 0, "b": 0}
    lock = threading.Lock()

    def bump(tx):
        doc = tx.get(counter_id)
        tx.patch(counter_id, {"n": doc["n"] + 1})

    def worker(name, db):
        for _ in range(15):
            try:
                db.mutate(bump)
            except TooManyConflictsError:
                continue
            with lock:
                acked[name] += 1

    threads = [threading.Thread(target=worker, args=(name, cluster.nodes[name])) for name in "abab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = a.mutate(lambda tx: tx.get(counter_id)["n"])  # a read-write sees the newest
    assert final.value == acked["a"] + acked["b"]
    assert acked["b"] > 0 and acked["a"] > 0
    assert b.committer.wait_applied(a.committer.last_ts, 5)
    assert b.query(lambda tx: tx.get(counter_id)["n"]).value == final.value


def test_when_the_leader_dies_another_node_leads_and_nothing_is_lost(cluster):
    a = cluster.start("a")
    b = cluster.start("b")
    acked = [a.mutate(insert, f"a{i}").value for i in range(5)]
    # "Kill" a: its lease thread stops renewing and it answers no more forwards.
    a.cluster._stop.set()
    cluster.dead.add("a")
    started = time.monotonic()
    acked.append(b.mutate(insert, "after").value)
    took = time.monotonic() - started
    assert b.cluster.role == "leader"
    assert took < 3 * FAST.cluster_lease_ttl_ms / 1000 + 1
    ids = sorted(d["_id"] for d in b.query(lambda tx: tx.query("messages").collect()).value)
    assert ids == sorted(acked)
    # The deposed leader's committer is fenced by the store.
    a.cluster._set_lease(1, time.monotonic() + 60)  # it still believes it leads
    with pytest.raises(Exception) as caught:
        a.committer.commit_forwarded(_pending_insert(a, "zombie"))
    assert getattr(caught.value, "code", "") == "NotLeader"
    assert "zombie" not in b.query(bodies).value
    a.close()
    cluster.dead.discard("a")
    del cluster.nodes["a"]


def _pending_insert(db, body):
    tx = db.begin(writable=True)
    tx.insert("messages", {"body": body})
    pending = tx.pending_commit()
    tx.close()
    return pending


def test_a_node_rejoining_catches_up_and_keeps_its_cache(cluster):
    a = cluster.start("a")
    b = cluster.start("b")
    b.mutate(insert, "one")
    b.close()
    del cluster.nodes["b"]
    for i in range(20):
        a.mutate(insert, f"n{i}")
    b = cluster.start("b")
    assert b.cache_state == "kept"
    assert len(b.query(bodies).value) == 21
    assert b.latest_ts() == a.latest_ts()


def test_a_cache_of_another_deployment_is_rebuilt(tmp_path):
    first = Cluster(tmp_path, deployment="one")
    first.start("a").mutate(insert, "old")
    first.close()
    second = Cluster(tmp_path, deployment="two")
    try:
        db = second.start("a")
        assert db.cache_state.startswith("rebuilt")
        assert db.query(bodies).value == []
    finally:
        second.close()


def test_a_standalone_data_folder_is_refused_not_overwritten(tmp_path):
    with Database.open(tmp_path / "a") as db:
        db.mutate(insert, "precious")
    c = Cluster(tmp_path)
    with pytest.raises(NotACacheError) as caught:
        c.start("a")
    assert "export" in caught.value.message
    with Database.open(tmp_path / "a") as db:
        assert db.query(bodies).value == ["precious"]


def test_a_cut_store_fails_the_commit_and_applies_nothing(memory_cluster):
    a = memory_cluster.start("a")
    before = a.latest_ts()
    memory_cluster.store.fail_appends = True
    with pytest.raises(StoreUnavailableError):
        a.mutate(insert, "lost")
    memory_cluster.store.fail_appends = False
    assert a.latest_ts() == before
    assert a.query(bodies).value == []
    a.mutate(insert, "kept")
    assert a.query(bodies).value == ["kept"]


def test_status_shows_a_node_that_lost_the_lease_as_deposed_not_as_a_second_leader():
    store = MemorySharedStore("memory")
    store.try_acquire_lease("new", "http://new", ttl_ms=60_000)
    store.report_node("new", "http://new", applied_ts=5, role="leader", code_hash="")
    # "old" last reported while it led, then died or was cut off from the store.
    store.report_node("old", "http://old", applied_ts=3, role="leader", code_hash="")
    store.report_node("f", "http://f", applied_ts=5, role="follower", code_hash="")
    roles = {n["node"]: n["role"] for n in cluster_status(store)["nodes"]}
    assert roles == {"new": "leader", "old": "deposed", "f": "follower"}


def test_a_new_node_starts_from_a_snapshot_of_a_running_node_and_applies_only_the_tail(
    cluster, tmp_path
):
    a = cluster.start("a")
    for i in range(30):
        a.mutate(insert, f"old{i}")
    snapshot_ts = a.snapshot_cache(str(tmp_path / "c"))  # a keeps running
    assert snapshot_ts == a.latest_ts()
    for i in range(5):
        a.mutate(insert, f"new{i}")
    c = cluster.start("c")
    assert c.cache_state == "kept"
    assert c.committer.statistics()["followed"] == 5  # the tail, not the 30 before it
    assert c.query(bodies).value == a.query(bodies).value
    c.mutate(insert, "through c")
    assert "through c" in a.query(bodies).value
    with pytest.raises(FileExistsError):
        a.snapshot_cache(str(tmp_path / "c"))


def test_a_standalone_data_folder_is_no_snapshot_source(tmp_path):
    Database.open(tmp_path / "alone").close()
    with pytest.raises(NotACacheError):
        snapshot_cache(str(tmp_path / "alone"), str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()


def test_a_leader_whose_clock_is_a_minute_behind_still_commits_after_the_log(memory_cluster):
    a = memory_cluster.start("a")
    late_clock = lambda: wall_clock_ns() - 60 * 10**9  # noqa: E731
    b = memory_cluster.start("b", clock=late_clock)
    a.mutate(insert, "from a")
    before = a.latest_ts()
    a.cluster._stop.set()  # a dies; b, with its clock behind, takes over
    memory_cluster.dead.add("a")
    b.mutate(insert, "from b")
    assert b.cluster.role == "leader"
    stamps = [e.ts for e in memory_cluster.store.read_range(0, b.latest_ts())]
    assert stamps == sorted(set(stamps)) and b.latest_ts() > before
    assert b.query(bodies).value == ["from a", "from b"]
    a.close()
    memory_cluster.dead.discard("a")
    del memory_cluster.nodes["a"]


@pytest.mark.parametrize("landed", [False, True])
def test_an_unanswered_forward_is_acknowledged_only_if_it_landed_itself(memory_cluster, landed):
    """Settling an unanswered forward must not mistake another commit for it: here a
    concurrent increment of the same counter, which wrote the same new value over the
    same version (so the follower's increment, had it been acknowledged, would be lost)."""
    a = memory_cluster.start("a")
    b = memory_cluster.start("b")
    created = a.mutate(lambda tx: tx.insert("counters", {"n": 0}))
    counter = created.value
    assert b.committer.wait_applied(created.ts, 5)

    def bump(tx):
        tx.patch(counter, {"n": tx.get(counter)["n"] + 1})

    tx = b.begin(writable=True)
    bump(tx)
    pending = tx.pending_commit()
    tx.close()
    memory_cluster.answers_lost = 1
    memory_cluster.land_unanswered = landed
    if landed:
        ts = b.committer.commit(pending)  # the follower's own commit landed: acknowledged
        assert b.query(lambda tx: tx.get(counter)["n"]).value == 1
        assert a.mutate(bump).ts > ts
        assert a.query(lambda tx: tx.get(counter)["n"]).value == 2
    else:
        a.mutate(bump)  # another node's identical increment lands instead
        with pytest.raises(ConflictError):
            b.committer.commit(pending)
        assert a.query(lambda tx: tx.get(counter)["n"]).value == 1


def test_a_forward_sent_twice_is_committed_once(memory_cluster):
    a = memory_cluster.start("a")
    b = memory_cluster.start("b")
    pending = dataclasses.replace(_pending_insert(b, "once"), receipt=b"r" * 16)
    first = a.committer.commit_forwarded(decode_pending(encode_pending(pending)))
    again = a.committer.commit_forwarded(decode_pending(encode_pending(pending)))
    assert again == first
    assert a.query(bodies).value == ["once"]
    assert memory_cluster.store.find_receipt(b"r" * 16) == first
