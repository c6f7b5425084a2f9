"""The one contract every ``LogStore`` passes (MemoryLog, LmdbLog, the SQL shared stores),
then LMDB's own promises."""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_databases import fresh_store_url

from engine.errors import IntegrityError
from log import LmdbLog, LogEntry, LogStore, MemoryLog, Write, encode_entry, open_environment
from log.entry import TS_MAX
from log.store_url import open_shared_store

# Timestamps that cross byte boundaries of the 8-byte key, so byte order must be ts order.
TIMESTAMPS = [1, 2, 255, 256, 65_535, 65_536, 1 << 32, 1 << 40, 1715000000000000000, TS_MAX]


def entry(ts: int, n_writes: int = 1) -> LogEntry:
    writes = tuple(
        Write(f"doc{ts}_{i}", "messages", ts - 1 if ts > 1 else None, {"ts": ts, "i": i})
        for i in range(n_writes)
    )
    return LogEntry(ts, writes)


def tss(entries: Iterator[LogEntry] | list[LogEntry]) -> list[int]:
    return [e.ts for e in entries]


StoreFactory = Callable[[], LogStore]


@pytest.fixture(params=["memory", "lmdb", "postgresql", "mysql", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[LogStore] = []

    def make() -> LogStore:
        store: LogStore
        if request.param == "memory":
            store = MemoryLog()
        elif request.param == "lmdb":
            store = LmdbLog.open(str(tmp_path / f"data{len(opened)}"), map_size=1 << 30)
        else:  # the shared SQL stores, each on a fresh database
            store = open_shared_store(fresh_store_url(request, request.param, tmp_path))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> LogStore:
    return make_store()


@pytest.fixture
def filled(store: LogStore) -> LogStore:
    store.append([entry(ts) for ts in TIMESTAMPS[:4]])
    store.append([entry(ts, n_writes=3) for ts in TIMESTAMPS[4:]])
    return store


# -- the contract -------------------------------------------------------------------


def test_implements_the_protocol(store: LogStore) -> None:
    assert isinstance(store, LogStore)


def test_empty_log(store: LogStore) -> None:
    assert store.latest_ts() is None
    assert store.first_ts() is None
    assert store.count() == 0
    assert list(store.read_from(0)) == []
    assert list(store.read_range(0, TS_MAX)) == []


def test_entries_come_back_in_ts_order_and_equal(filled: LogStore) -> None:
    entries = list(filled.read_from(0))
    assert tss(entries) == TIMESTAMPS
    assert entries == [entry(ts, 1 if i < 4 else 3) for i, ts in enumerate(TIMESTAMPS)]


def test_latest_first_and_count(filled: LogStore) -> None:
    assert filled.latest_ts() == TS_MAX
    assert filled.first_ts() == 1
    assert filled.count() == len(TIMESTAMPS)


def test_read_from_the_middle(filled: LogStore) -> None:
    assert tss(filled.read_from(256)) == TIMESTAMPS[3:]  # an exact ts is included
    assert tss(filled.read_from(257)) == TIMESTAMPS[4:]  # between two entries
    assert tss(filled.read_from(-5)) == TIMESTAMPS  # before the start
    assert tss(filled.read_from(TS_MAX)) == [TS_MAX]


def test_read_backward_is_newest_first_before_the_bound(filled: LogStore) -> None:
    assert tss(filled.read_backward(TIMESTAMPS[5], 3)) == TIMESTAMPS[2:5][::-1]
    assert tss(filled.read_backward(TIMESTAMPS[5] + 1, 2)) == TIMESTAMPS[4:6][::-1]
    assert tss(filled.read_backward(TS_MAX, 100)) == TIMESTAMPS[:-1][::-1]
    assert tss(filled.read_backward(1, 10)) == []
    assert tss(filled.read_backward(TIMESTAMPS[3], 0)) == []


def test_read_from_after_the_end_is_empty(filled: LogStore) -> None:
    assert list(filled.read_from(TS_MAX + 1)) == []
    assert list(filled.read_from(1 << 70)) == []


def test_read_range_bounds_are_inclusive(filled: LogStore) -> None:
    assert tss(filled.read_range(255, 65_536)) == [255, 256, 65_535, 65_536]
    assert tss(filled.read_range(254, 65_537)) == [255, 256, 65_535, 65_536]
    assert tss(filled.read_range(256, 256)) == [256]
    assert tss(filled.read_range(257, 258)) == []
    assert tss(filled.read_range(300, 200)) == []
    assert tss(filled.read_range(-10, 0)) == []
    assert tss(filled.read_range(0, 1 << 70)) == TIMESTAMPS


@pytest.mark.parametrize(
    "batch",
    [
        [TS_MAX - 1],  # older than the latest
        [TS_MAX],  # equal to the latest
    ],
)
def test_a_ts_not_after_the_latest_is_refused(filled: LogStore, batch: list[int]) -> None:
    before = list(filled.read_from(0))
    with pytest.raises(IntegrityError, match="strictly increase") as info:
        filled.append([entry(ts) for ts in batch])
    assert info.value.code == "IntegrityError"
    assert list(filled.read_from(0)) == before


@pytest.mark.parametrize("batch", [[10, 11, 11], [10, 12, 11], [20, 10]])
def test_a_batch_that_does_not_increase_appends_nothing(store: LogStore, batch: list[int]) -> None:
    store.append([entry(5)])
    with pytest.raises(IntegrityError, match="strictly increase"):
        store.append([entry(ts) for ts in batch])
    assert tss(store.read_from(0)) == [5]
    assert store.count() == 1 and store.latest_ts() == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not an entry", "not a LogEntry"),
        (LogEntry(12, (Write("a", "t", None, {"x": 1 << 64}),)), "outside int64"),
        (LogEntry(12, (Write("a", "t", 12, None),)), "prev_ts"),
        (LogEntry(15, [Write("a", "t", None, None)]), "must be a tuple"),  # type: ignore[arg-type]
    ],
)
def test_an_invalid_entry_fails_the_whole_batch(store: LogStore, bad: object, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        store.append([entry(10), bad, entry(20)])  # type: ignore[list-item]
    assert store.count() == 0 and store.latest_ts() is None


@pytest.mark.parametrize("ts", [0, -1, TS_MAX + 1])
def test_a_ts_outside_int64_nanoseconds_is_refused(store: LogStore, ts: int) -> None:
    with pytest.raises(IntegrityError, match="ts must be an int in"):
        store.append([LogEntry(ts, ())])
    assert store.count() == 0


def test_an_empty_batch_is_a_no_op(filled: LogStore) -> None:
    filled.append([])
    assert filled.count() == len(TIMESTAMPS)


def test_values_come_back_exactly(store: LogStore) -> None:
    nan = struct.unpack(">d", bytes.fromhex("7ff4000000000abc"))[0]
    doc = {"z": -0.0, "nan": nan, "s": "\x00é", "b": b"\x00", "i": -(1 << 63), "l": [{}, []]}
    store.append([LogEntry(3, (Write("d", "t", 1, doc), Write("e", "t", 2, None)))])
    (got,) = store.read_from(0)
    value = got.writes[0].value
    assert value is not None and list(value) == list(doc)
    assert struct.pack(">d", value["nan"]) == struct.pack(">d", nan)
    assert math.copysign(1.0, value["z"]) == -1.0
    assert {k: v for k, v in value.items() if k not in ("nan",)} == {
        k: v for k, v in doc.items() if k not in ("nan",)
    }
    assert got.writes[1] == Write("e", "t", 2, None)


def test_a_read_is_a_snapshot_while_appending(store: LogStore) -> None:
    store.append([entry(1), entry(2), entry(3)])
    reading = store.read_from(0)
    assert next(reading).ts == 1
    store.append([entry(4), entry(5)])
    assert tss(reading) == [2, 3]  # appended after the read began: not in it
    assert tss(store.read_from(0)) == [1, 2, 3, 4, 5]
    assert store.latest_ts() == 5


def test_many_interleaved_reads_and_appends(store: LogStore) -> None:
    readers = []
    for ts in range(1, 21):
        store.append([entry(ts)])
        readers.append((ts, store.read_from(ts // 2)))
    for ts, reader in readers:
        assert tss(reader) == list(range(max(ts // 2, 1), ts + 1))


def test_reads_from_another_thread_see_whole_prefixes(store: LogStore) -> None:
    def write() -> None:
        for ts in range(1, 101, 4):
            store.append([entry(ts + i) for i in range(4)])

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        seen = tss(store.read_from(0))
        assert seen == list(range(1, len(seen) + 1))  # in order, no gaps
        assert len(seen) % 4 == 0  # a batch is all there or not at all
    writer.join()
    assert tss(store.read_from(0)) == list(range(1, 101))


def test_reads_take_int_bounds(store: LogStore) -> None:
    with pytest.raises(IntegrityError, match="must be an int"):
        store.read_from(None)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError, match="must be an int"):
        store.read_range(0, "9")  # type: ignore[arg-type]


def test_a_closed_store_refuses_use(store: LogStore) -> None:
    store.close()
    with pytest.raises(IntegrityError, match="closed"):
        store.append([entry(1)])
    with pytest.raises(IntegrityError, match="closed"):
        store.latest_ts()
    store.close()  # closing twice is harmless


@pytest.fixture
def many(store: LogStore) -> LogStore:
    store.append([entry(ts) for ts in range(3, 300, 3)])
    return store


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(start=st.integers(-5, 310), end=st.integers(-5, 310))
def test_ranges_match_a_filter_of_everything(many: LogStore, start: int, end: int) -> None:
    expected = [ts for ts in range(3, 300, 3) if start <= ts <= end]
    assert tss(many.read_range(start, end)) == expected
    assert tss(many.read_from(start)) == [ts for ts in range(3, 300, 3) if ts >= start]


# -- LMDB only ----------------------------------------------------------------------


def test_lmdb_entries_survive_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    log = LmdbLog.open(path, map_size=1 << 30)
    log.append([entry(ts) for ts in TIMESTAMPS])
    log.close()
    env = open_environment(path, map_size=1 << 30)
    reopened = LmdbLog(env)
    assert list(reopened.read_from(0)) == [entry(ts) for ts in TIMESTAMPS]
    assert reopened.latest_ts() == TS_MAX and reopened.count() == len(TIMESTAMPS)
    reopened.close()
    assert env.stat() is not None  # a borrowed environment stays open for its owner
    env.close()


def test_lmdb_environment_is_durable_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data"
    env = open_environment(str(path), map_size=1 << 30, max_readers=8)
    try:
        flags = env.flags()
        assert flags["sync"] and flags["metasync"] and flags["lock"]
        assert not flags["writemap"]
        assert env.info()["max_readers"] == 8
        assert path.is_dir()
    finally:
        env.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[lmdb.Environment]:
    environment = open_environment(str(tmp_path / "data"), map_size=1 << 30, max_readers=4)
    yield environment
    environment.close()


@pytest.fixture
def lmdb_log(env: lmdb.Environment) -> Iterator[LmdbLog]:
    log = LmdbLog(env)  # the way the engine uses it: one environment shared with projections
    yield log
    log.close()


def test_append_in_shares_the_callers_transaction(env: lmdb.Environment, lmdb_log: LmdbLog) -> None:
    side = env.open_db(b"projection")
    with env.begin(write=True) as txn:
        lmdb_log.append_in(txn, [entry(1)])
        lmdb_log.append_in(txn, [entry(2)])  # sees the first, uncommitted
        txn.put(b"checkpoint", b"2", db=side)
        assert lmdb_log.latest_ts(txn) == 2
        assert lmdb_log.first_ts(txn) == 1
        assert lmdb_log.count(txn) == 2
        assert tss(lmdb_log.read_from(0, txn=txn)) == [1, 2]
        assert lmdb_log.latest_ts() is None  # other readers do not, yet
        assert lmdb_log.first_ts() is None and lmdb_log.count() == 0
    assert tss(lmdb_log.read_from(0)) == [1, 2]
    with env.begin() as txn:
        assert txn.get(b"checkpoint", db=side) == b"2"


def test_an_aborted_transaction_appends_nothing(env: lmdb.Environment, lmdb_log: LmdbLog) -> None:
    with pytest.raises(RuntimeError), env.begin(write=True) as txn:
        lmdb_log.append_in(txn, [entry(1)])
        raise RuntimeError("the projection failed")
    assert lmdb_log.count() == 0


def test_append_in_refuses_before_writing_anything(
    env: lmdb.Environment, lmdb_log: LmdbLog
) -> None:
    with env.begin(write=True) as txn:
        lmdb_log.append_in(txn, [entry(5)])
        with pytest.raises(IntegrityError):
            lmdb_log.append_in(txn, [entry(6), entry(4)])
    assert tss(lmdb_log.read_from(0)) == [5]


def test_closed_or_exhausted_iterators_release_their_reader(lmdb_log: LmdbLog) -> None:
    lmdb_log.append([entry(ts) for ts in range(1, 6)])
    for _ in range(20):  # far more than the 4 reader slots
        reading = lmdb_log.read_from(0)
        next(reading)
        reading.close()  # type: ignore[attr-defined]
        assert tss(lmdb_log.read_range(2, 3)) == [2, 3]
        with lmdb_log.read_from(4) as tail:  # type: ignore[attr-defined]
            assert next(tail).ts == 4


def test_damage_on_disk_is_reported(env: lmdb.Environment, lmdb_log: LmdbLog) -> None:
    lmdb_log.append([entry(1), entry(2), entry(3)])
    db = env.open_db(b"log")
    with env.begin(write=True) as txn:
        txn.put((2).to_bytes(8, "big"), encode_entry(entry(7)), db=db)  # under the wrong key
    reading = lmdb_log.read_from(0)
    assert next(reading).ts == 1
    with pytest.raises(IntegrityError, match="stored under ts 2 says ts 7"):
        next(reading)
    with env.begin(write=True) as txn:
        txn.put((2).to_bytes(8, "big"), b"\x01garbage", db=db)
    with pytest.raises(IntegrityError, match="damaged"):
        list(lmdb_log.read_range(2, 2))


def test_statistics(lmdb_log: LmdbLog) -> None:
    assert lmdb_log.statistics() == {"entries": 0, "bytes": 0, "latest_ts": None}
    lmdb_log.append([entry(ts, n_writes=5) for ts in range(1, 101)])
    stats = lmdb_log.statistics()
    assert stats["entries"] == 100 and stats["latest_ts"] == 100
    assert stats["bytes"] is not None and stats["bytes"] >= 100 * 100


def test_a_full_map_is_an_lmdb_error_and_appends_nothing(tmp_path: Path) -> None:
    log = LmdbLog.open(str(tmp_path / "small"), map_size=64 << 10)
    try:
        big = {"blob": b"\x00" * (256 << 10)}
        with pytest.raises(lmdb.MapFullError):
            log.append([LogEntry(1, (Write("a", "t", None, big),))])
        assert log.count() == 0
    finally:
        log.close()


def test_lmdb_count_range_counts_the_entries_between_two_timestamps(tmp_path: Path) -> None:
    log = LmdbLog.open(str(tmp_path / "data"), map_size=1 << 30)
    try:
        log.append([entry(ts) for ts in (10, 20, 30, 40, 50)])
        assert log.count_range(20, 40) == 3  # both ends included
        assert log.count_range(0, TS_MAX) == 5
        assert log.count_range(21, 29) == 0
        assert log.count_range(60, 70) == 0 and log.count_range(40, 20) == 0
        assert log.count_range(10, 50, limit=2) == 2
        assert log.count_range(-5, 15) == 1
    finally:
        log.close()
