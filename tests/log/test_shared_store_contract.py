"""The ``SharedLogStore`` contract, run on every store: memory, PostgreSQL, MySQL, SQLite.

The plain ``LogStore`` promises (order, snapshots, refused batches) are in
``test_store_contract.py``, which runs on these stores too; what only the SQL
stores can show is in ``test_sql_store.py``. Here: the fence, the lease,
waiting, node reports, meta, blobs. "Another node" is a second store object on
the same database (``stores()`` twice); for memory it is the same object, as
nodes in one process share it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_databases import STORE_KINDS, fresh_store_url

from engine.errors import IntegrityError
from log import LogEntry, Write, encode_entry
from log.entry import TS_MAX
from log.shared_store import FencedError, SharedLogStore
from log.store_url import open_shared_store

LONG_TTL_MS = 60_000


def entry(ts: int) -> LogEntry:
    return LogEntry(ts, (Write(f"doc{ts}", "messages", None, {"ts": ts}),))


def tss(entries: Iterator[LogEntry] | list[LogEntry]) -> list[int]:
    return [e.ts for e in entries]


@dataclass
class Stores:
    """Opens stores on one fresh database: each call is another node on it."""

    kind: str
    url: str
    opened: list[SharedLogStore] = field(default_factory=list)

    def __call__(self) -> SharedLogStore:
        if self.kind == "memory" and self.opened:
            return self.opened[0]
        store = open_shared_store(self.url)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=STORE_KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    opened = Stores(request.param, fresh_store_url(request, request.param, tmp_path))
    yield opened
    opened.close()


@pytest.fixture
def store(stores: Stores) -> SharedLogStore:
    return stores()


def leader(store: SharedLogStore, node_id: str = "a", ttl_ms: int = LONG_TTL_MS) -> int:
    lease = store.try_acquire_lease(node_id, f"http://{node_id}", ttl_ms)
    assert lease is not None
    return lease.token


def wait_until_expired(store: SharedLogStore, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (lease := store.current_lease()) is not None and lease.expires_in_ms > 0:
        assert time.monotonic() < deadline, f"the lease never expired: {lease}"
        time.sleep(0.01)


def run_threads(*targets: Callable[[], None], timeout_s: float = 30.0) -> None:
    """Run ``targets`` at once; re-raise the first failure in any of them."""
    failures: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as error:
                failures.append(error)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
        assert not thread.is_alive(), "a thread did not finish"
    if failures:
        raise failures[0]


# -- the contract ------------------------------------------------------------------


def test_implements_the_shared_protocol(store: SharedLogStore) -> None:
    assert isinstance(store, SharedLogStore)
    assert store.statistics() == {"entries": 0, "latest_ts": None}  # type: ignore[attr-defined]


def test_fenced_batches_read_back_in_order(stores: Stores) -> None:
    a, b = stores(), stores()
    token = leader(a)
    a.append_fenced([entry(1), entry(2)], token)
    a.append_fenced([entry(10)], token)
    assert list(b.read_from(0)) == [entry(1), entry(2), entry(10)]
    assert tss(b.read_range(2, 9)) == [2] and tss(b.read_backward(10, 5)) == [2, 1]
    assert (b.first_ts(), b.latest_ts(), b.count()) == (1, 10, 3)


def test_no_node_leads_before_the_first_lease(store: SharedLogStore) -> None:
    assert store.current_lease() is None
    with pytest.raises(FencedError, match=r"token 1 is not the current one \(none\)") as info:
        store.append_fenced([entry(1)], 1)
    assert info.value.code == "NotLeader"
    store.append([entry(1)])  # a plain append (an import) needs no lease
    assert tss(store.read_from(0)) == [1]


def test_a_lease_read_as_expired_is_taken_over_at_once(stores: Stores) -> None:
    """What ``current_lease`` calls expired, ``try_acquire_lease`` takes: polled without
    pause, the first expired reading comes within the lease's last millisecond."""
    a, b = stores(), stores()
    leader(a, "a", ttl_ms=80)
    deadline = time.monotonic() + 5.0
    while (lease := b.current_lease()) is not None and lease.expires_in_ms > 0:
        assert time.monotonic() < deadline, f"the lease never expired: {lease}"
    taken = b.try_acquire_lease("b", "http://b", LONG_TTL_MS)
    assert taken is not None and (taken.node_id, taken.token) == ("b", 2)


def test_a_deposed_leader_is_fenced(stores: Stores) -> None:
    a, b = stores(), stores()
    token_a = leader(a, "a", ttl_ms=300)
    assert token_a == 1
    a.append_fenced([entry(1)], token_a)
    assert b.try_acquire_lease("b", "http://b", LONG_TTL_MS) is None  # A's lease still runs
    wait_until_expired(b)
    lease_b = b.try_acquire_lease("b", "http://b", LONG_TTL_MS)
    assert lease_b is not None and lease_b.token == 2 and lease_b.node_id == "b"
    with pytest.raises(FencedError, match="token 1 is not the current one \\(2\\)"):
        a.append_fenced([entry(2)], token_a)
    assert not a.renew_lease("a", token_a, LONG_TTL_MS)
    b.append_fenced([entry(2)], lease_b.token)
    assert tss(a.read_from(0)) == [1, 2]  # A's refused batch left nothing
    current = a.current_lease()
    assert current is not None and (current.node_id, current.address) == ("b", "http://b")
    assert current.token == 2 and 0 < current.expires_in_ms <= LONG_TTL_MS


def test_the_same_holder_keeps_its_token(stores: Stores) -> None:
    a, b = stores(), stores()
    first = a.try_acquire_lease("a", "http://a", 1_000)
    again = a.try_acquire_lease("a", "http://a2", LONG_TTL_MS)
    assert first is not None and again is not None and first.token == again.token == 1
    # Renewals in the same millisecond change nothing, and still succeed.
    assert all([a.renew_lease("a", 1, LONG_TTL_MS) for _ in range(20)])
    current = b.current_lease()
    assert current is not None and current.address == "http://a2"
    assert current.expires_in_ms > 30_000  # renewed to the new ttl
    assert b.try_acquire_lease("b", "http://b", LONG_TTL_MS) is None
    assert not b.renew_lease("b", 1, LONG_TTL_MS)  # the token alone is not the lease


def test_release_lets_another_node_take_the_lease_at_once(stores: Stores) -> None:
    a, b = stores(), stores()
    token = leader(a)
    a.release_lease("a", token)
    released = b.current_lease()
    assert released is not None and released.expires_in_ms <= 0 and released.token == token
    lease_b = b.try_acquire_lease("b", "http://b", LONG_TTL_MS)
    assert lease_b is not None and lease_b.token == token + 1
    a.release_lease("a", token)  # a stale release leaves the new holder alone
    current = a.current_lease()
    assert current is not None and current.node_id == "b" and current.expires_in_ms > 0


def test_a_released_lease_taken_back_by_its_holder_keeps_the_token(store: SharedLogStore) -> None:
    token = leader(store)
    store.release_lease("a", token)
    assert leader(store) == token


def test_a_receipt_is_found_by_any_node_and_never_stored_twice(stores: Stores) -> None:
    a, b = stores(), stores()
    token = leader(a)
    first, second = b"\x01" * 16, b"\x02" * 16
    a.append_fenced([entry(1), entry(2), entry(3)], token, [first, None, second])
    assert (b.find_receipt(first), b.find_receipt(second)) == (1, 3)
    assert b.find_receipt(b"\x03" * 16) is None
    with pytest.raises(IntegrityError):  # a forward committed again: the whole batch refused
        a.append_fenced([entry(4), entry(5)], token, [None, second])
    with pytest.raises(IntegrityError):
        a.append_fenced([entry(6), entry(7)], token, [b"\x04" * 16, b"\x04" * 16])
    assert tss(b.read_from(0)) == [1, 2, 3] and b.find_receipt(b"\x04" * 16) is None
    a.append_fenced([entry(8)], token)  # no receipts at all
    assert b.latest_ts() == 8


@pytest.mark.parametrize("batch", [[5], [4], [6, 6], [7, 6], [8, 9, 3]])
def test_a_fenced_batch_that_does_not_increase_appends_nothing(
    store: SharedLogStore, batch: list[int]
) -> None:
    token = leader(store)
    store.append_fenced([entry(5)], token)
    with pytest.raises(IntegrityError, match="strictly increase"):
        store.append_fenced([entry(ts) for ts in batch], token)
    assert tss(store.read_from(0)) == [5] and store.latest_ts() == 5


def test_a_fenced_batch_with_a_bad_value_appends_nothing(store: SharedLogStore) -> None:
    token = leader(store)
    bad = LogEntry(3, (Write("a", "t", None, {"x": 1 << 64}),))
    with pytest.raises(IntegrityError, match="outside int64"):
        store.append_fenced([entry(1), entry(2), bad], token)
    assert store.count() == 0


def test_odd_values_come_back_as_the_same_bytes(store: SharedLogStore) -> None:
    nan = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
    doc = {
        "nan": nan,
        "neg_zero": -0.0,
        "bytes": bytes(range(256)),
        "int_min": -(1 << 63),
        "int_max": (1 << 63) - 1,
        "tiny": 5e-324,
        "text": "\x00é\u2028\U0001f600",
        "nested": [{"": None, "t": True, "f": False}, []],
    }
    written = [LogEntry(7, (Write("d", "t", None, doc), Write("e", "t", 3, None)))]
    written.append(LogEntry(TS_MAX, ()))
    store.append_fenced(written, leader(store))
    read = list(store.read_from(0))
    assert [encode_entry(e) for e in read] == [encode_entry(e) for e in written]
    value = read[0].writes[0].value
    assert value is not None and math.copysign(1.0, value["neg_zero"]) == -1.0
    assert struct.pack(">d", value["nan"]) == struct.pack(">d", nan)


def test_two_nodes_appending_from_threads_leave_no_gap_or_duplicate(stores: Stores) -> None:
    nodes = [stores(), stores()]
    seed = random.randrange(1 << 32)
    appended: list[list[int]] = [[], []]

    def run(index: int) -> Callable[[], None]:
        def appender() -> None:
            store, rng, node_id = nodes[index], random.Random(seed + index), f"node{index}"
            deadline = time.monotonic() + 20
            for round_ in itertools.count():
                if round_ >= 30 and len(appended[index]) >= 10:
                    return
                assert time.monotonic() < deadline, f"seed {seed}: node {index} starved"
                lease = store.try_acquire_lease(node_id, "", rng.choice([0, 0, 5, 50]))
                if lease is None:
                    time.sleep(0.001)
                    continue
                for _ in range(rng.randint(1, 3)):
                    start = (store.latest_ts() or 0) + 1
                    batch = [entry(start + i) for i in range(rng.randint(1, 3))]
                    try:
                        store.append_fenced(batch, lease.token)
                    except FencedError:
                        break
                    appended[index].extend(tss(batch))
                if rng.random() < 0.3:
                    store.release_lease(node_id, lease.token)

        return appender

    run_threads(run(0), run(1))
    log = tss(nodes[0].read_from(0))
    assert log == list(range(1, len(log) + 1)), f"seed {seed}"
    assert sorted(appended[0] + appended[1]) == log, f"seed {seed}"


def test_wait_for_entries_wakes_on_another_nodes_append(stores: Stores) -> None:
    a, b = stores(), stores()
    token = leader(a)
    a.append_fenced([entry(1)], token)
    woke_at: list[float] = []

    def wait() -> None:
        assert b.wait_for_entries(1, 10.0)
        woke_at.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    appended_at = time.monotonic()
    a.append_fenced([entry(2)], token)
    waiter.join(10.0)
    assert woke_at and woke_at[0] - appended_at < 1.0


def test_wait_for_entries_times_out_or_returns_at_once(stores: Stores) -> None:
    a, b = stores(), stores()
    a.append([entry(4)])
    started = time.monotonic()
    assert not b.wait_for_entries(4, 0.3)
    assert 0.3 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    assert b.wait_for_entries(3, 5.0) and b.wait_for_entries(-1, 5.0)
    assert time.monotonic() - started < 1.0


def test_waiting_never_misses_an_append(stores: Stores) -> None:
    a, b = stores(), stores()
    rng = random.Random(7)

    def append() -> None:
        for ts in range(1, 31):
            time.sleep(rng.random() * 0.01)
            a.append([entry(ts)])

    def follow() -> None:
        seen = 0
        while seen < 30:
            assert b.wait_for_entries(seen, 3.0), f"no wake-up after ts {seen}"
            seen = b.latest_ts() or 0

    run_threads(append, follow)


def test_node_reports(stores: Stores) -> None:
    a, b = stores(), stores()
    assert a.nodes() == []
    a.report_node("a", "http://a", 5, "leader", "hash1")
    time.sleep(0.01)
    b.report_node("b", "http://b", 3, "starting", "")
    reports = a.nodes()
    assert [(r.node_id, r.address, r.applied_ts, r.role, r.code_hash) for r in reports] == [
        ("b", "http://b", 3, "starting", ""),
        ("a", "http://a", 5, "leader", "hash1"),
    ]
    assert all(0 <= r.seen_ms_ago < 5_000 for r in reports)
    time.sleep(0.01)
    b.report_node("a", "http://a2", 9, "follower", "hash2")  # an upsert, from any object
    assert [(r.node_id, r.address, r.applied_ts, r.role) for r in b.nodes()] == [
        ("a", "http://a2", 9, "follower"),
        ("b", "http://b", 3, "starting"),
    ]
    a.forget_node("a")
    a.forget_node("never-reported")
    assert [r.node_id for r in b.nodes()] == ["b"]


def test_meta_keys_are_exact_and_set_once(store: SharedLogStore) -> None:
    assert store.get_meta("admin_key") is None
    assert store.set_meta_if_absent("admin_key", "first") == "first"
    assert store.set_meta_if_absent("admin_key", "second") == "first"
    # No collation folds case or trailing spaces: each is its own key.
    assert store.set_meta_if_absent("Admin_key", "upper") == "upper"
    assert store.set_meta_if_absent("admin_key ", "spaced") == "spaced"
    assert store.set_meta_if_absent("ключ", "é" * 300) == "é" * 300
    assert store.get_meta("admin_key") == "first"


def test_concurrent_set_meta_if_absent_agrees_on_one_value(stores: Stores) -> None:
    nodes = [stores(), stores()]
    for round_ in range(8):
        key, barrier, got = f"key{round_}", threading.Barrier(2), ["", ""]

        def setter(index: int, key: str, barrier: threading.Barrier, got: list[str]) -> None:
            barrier.wait()
            got[index] = nodes[index].set_meta_if_absent(key, f"value{index}")

        run_threads(*[functools.partial(setter, i, key, barrier, got) for i in (0, 1)])
        assert got[0] == got[1] in ("value0", "value1")
        assert nodes[0].get_meta(key) == nodes[1].get_meta(key) == got[0]


def test_blobs(stores: Stores) -> None:
    a, b = stores(), stores()
    one, empty = hashlib.sha256(b"one").digest(), hashlib.sha256(b"").digest()
    big_data = random.Random(1).randbytes(1 << 20)
    big = hashlib.sha256(big_data).digest()
    assert a.get_blob(one) is None and a.blob_digests() == []
    a.put_blob(one, b"one")
    a.put_blob(bytearray(one), b"one")  # idempotent, any bytes-like digest
    b.put_blob(empty, b"")
    b.put_blob(big, big_data)
    assert b.get_blob(one) == b"one" and a.get_blob(empty) == b"" and a.get_blob(big) == big_data
    assert b.blob_digests() == sorted([one, empty, big])
    a.delete_blob(one)
    a.delete_blob(one)  # absent: no error
    assert b.get_blob(one) is None and b.blob_digests() == sorted([empty, big])


def test_deployment_id_is_made_once_and_shared(stores: Stores) -> None:
    a, b = stores(), stores()
    deployment = a.deployment_id()
    assert isinstance(deployment, str) and deployment
    assert b.deployment_id() == deployment
    if stores.kind != "memory":  # a memory store does not outlive its object
        a.close()
        b.close()
        assert stores().deployment_id() == deployment


def test_nodes_opening_a_new_database_at_once_agree(stores: Stores) -> None:
    opened: list[SharedLogStore] = []
    lock = threading.Lock()

    def open_one() -> None:
        store = stores()
        with lock:
            opened.append(store)

    run_threads(*[open_one] * 4)
    assert len({store.deployment_id() for store in opened}) == 1
    assert opened[0].try_acquire_lease("a", "", LONG_TTL_MS) is not None


def test_reading_5000_entries_streams_them_in_order(store: SharedLogStore) -> None:
    store.append([entry(ts) for ts in range(1, 5001)])
    reading = store.read_from(0)
    assert next(reading) == entry(1)
    store.append([entry(5001)])
    rest = list(reading)
    assert tss(rest) == list(range(2, 5001))  # the chunks join up; the later append is not in it
    assert rest[-1] == entry(5000)
    assert tss(store.read_range(999, 2001)) == list(range(999, 2002))
    assert tss(store.read_backward(3001, 1001)) == list(range(3000, 1999, -1))
    assert store.count() == 5001


def test_a_closed_store_refuses_the_log(stores: Stores) -> None:
    store = stores()
    store.close()
    with pytest.raises(IntegrityError, match="closed"):
        store.append_fenced([entry(1)], 1)
    assert not store.wait_for_entries(0, 0.1)
    store.close()


# -- fenced appends by two nodes, as a property ----------------------------------------

_NODES = st.sampled_from(["a", "b"])
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), _NODES, st.sampled_from([0, LONG_TTL_MS])),
        st.tuples(st.just("renew"), _NODES, st.sampled_from([0, LONG_TTL_MS])),
        st.tuples(st.just("release"), _NODES, st.just(0)),
        st.tuples(st.just("append"), _NODES, st.integers(1, 3)),
    ),
    max_size=20,
)


@dataclass
class LeaseModel:
    """What the lease should be: its holder, token, and whether it has expired."""

    holder: str
    token: int
    expired: bool
    tokens: dict[str, int] = field(default_factory=dict)  # each node's last token

    def acquire(self, node: str, ttl_ms: int) -> int | None:
        if self.token == 0:
            self.token = 1
        elif node != self.holder:
            if not self.expired:
                return None
            self.token += 1
        self.holder, self.expired, self.tokens[node] = node, ttl_ms == 0, self.token
        return self.token

    def owns(self, node: str) -> bool:
        return self.token != 0 and self.holder == node and self.tokens.get(node) == self.token


def test_fenced_appends_keep_exactly_the_batches_that_returned(stores: Stores) -> None:
    # One database for every example: each starts where the last one ended.
    nodes = {"a": stores(), "b": stores()}

    @settings(max_examples=40 if stores.kind == "memory" else 12, deadline=None)
    @given(steps=_STEPS)
    def check(steps: list[tuple[str, str, int]]) -> None:
        lease = nodes["a"].current_lease()
        model = LeaseModel(lease.node_id if lease else "", lease.token if lease else 0, True)
        next_ts = (nodes["b"].latest_ts() or 0) + 1
        start, kept = next_ts, []
        for action, node, number in steps:
            store = nodes[node]
            token = model.tokens.get(node, 0)
            if action == "acquire":
                got = store.try_acquire_lease(node, node, number)
                assert (got and got.token) == model.acquire(node, number)
            elif action == "renew":
                expected = model.owns(node)
                assert store.renew_lease(node, token, number) == expected
                model.expired = model.expired if not expected else number == 0
            elif action == "release":
                store.release_lease(node, token)
                model.expired = model.expired or model.owns(node)
            else:
                batch = [entry(next_ts + i) for i in range(number)]
                next_ts += number
                try:
                    store.append_fenced(batch, token)
                    kept.extend(batch)
                    assert model.owns(node)
                except FencedError:
                    assert not model.owns(node)
        assert list(nodes["a"].read_from(start)) == kept
        if model.token:  # leave the lease free for the next example
            nodes[model.holder].release_lease(model.holder, model.token)

    check()
