"""Kafka export against a real broker (tansu on loopback): every write once, in order per key."""

from __future__ import annotations

import gc
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import KafkaAdminClient, KafkaProducer, NewTopic, TansuBroker, read_topic

from engine import Database, InvalidValueError
from engine.convex_json import loads
from engine.database import storage_handles
from log.entry import LogEntry, Write
from projections import kafka_export
from projections.kafka_export import (
    KafkaExportConfig,
    KafkaExporter,
    messages_of,
    partition_of,
)

# kafka-python 3.0 drops the socket of a failed connection attempt (to a stopped
# broker) without closing it; the garbage collector then warns. Not our leak.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")

ROOT = Path(__file__).resolve().parents[2]
# The exporter in its own process, through the `headwater kafka-export` command.
EXPORTER_SCRIPT = """
import argparse, sys
from gateway.cli_export import add_export_commands
parser = argparse.ArgumentParser()
add_export_commands(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""


@pytest.fixture(scope="module")
def broker():
    with TansuBroker() as running:
        yield running
    gc.collect()  # while this module's warning filter holds


def _exporter(db: Database, bootstrap: str, topic: str, **options) -> KafkaExporter:
    env, log = storage_handles(db)
    config = KafkaExportConfig(bootstrap, topic=topic, request_timeout_ms=1000, **options)
    return KafkaExporter(env, log, config)


def _expected(db: Database) -> list[tuple[int, int, int, str, str, dict | None]]:
    """(ts, index, count, table, id, value) of every user write in the log, in order."""
    _, log = storage_handles(db)
    out = []
    for entry in log.read_from(0):
        writes = [w for w in entry.writes if not w.table.startswith("_")]
        for i, w in enumerate(writes):
            out.append((entry.ts, i, len(writes), w.table, w.id, w.value))
    return out


def _received(records) -> list[tuple[int, int, int, str, str, dict | None]]:
    out = []
    for r in records:
        h = dict(r.headers)
        value = None if r.value is None else loads(r.value)
        out.append(
            (
                int(h["ts"]),
                int(h["index"]),
                int(h["count"]),
                h["table"].decode(),
                r.key.decode(),
                value,
            )
        )
    return out


def _assert_exactly_once(db: Database, records, partitions: int) -> None:
    expected = _expected(db)
    got = _received(records)
    counts = Counter(m[:2] for m in got)
    doubled = {k for k, n in counts.items() if n > 1}
    lost = {m[:2] for m in expected} - set(counts)
    assert not doubled and not lost, f"doubled {sorted(doubled)[:5]}, lost {sorted(lost)[:5]}"
    assert sorted(got, key=lambda m: m[:2]) == expected
    by_partition = defaultdict(list)
    for record, message in zip(records, got, strict=True):
        assert record.partition == partition_of(record.key, partitions)
        by_partition[record.partition].append(message[:2])
    for ordered in by_partition.values():
        assert ordered == sorted(ordered), "a partition is out of commit order"


def _random_writes(db: Database, rng: random.Random, live: list[str], n: int) -> int:
    ts = 0
    for _ in range(n):
        op = rng.random()
        if op < 0.5 or not live:
            k = rng.randint(1, 4)
            ids = db.mutate(
                lambda tx, k=k: [tx.insert("items", {"n": j, "tag": "x" * j}) for j in range(k)]
            )
            live.extend(ids.value)
            ts = ids.ts
        elif op < 0.85:
            doc_id = rng.choice(live)
            ts = db.mutate(lambda tx, d=doc_id: tx.patch(d, {"n": rng.random()})).ts
        else:
            doc_id = live.pop(rng.randrange(len(live)))
            ts = db.mutate(lambda tx, d=doc_id: tx.delete(d)).ts
    return ts


# -- messages --------------------------------------------------------------------------


def test_messages_carry_the_transaction_and_skip_system_tables():
    config = KafkaExportConfig("127.0.0.1:1", topic="t")
    entry = LogEntry(
        7,
        (
            Write("j5700000000000000000000000000000", "_tables", None, {"name": "a"}),
            Write("id1", "a", None, {"_id": "id1", "n": 1}),
            Write("id2", "b", 3, None),
        ),
    )
    first, second = messages_of(entry, config)
    assert (first.key, first.ts, first.index, first.count) == (b"id1", 7, 0, 2)
    assert loads(first.value) == {"_id": "id1", "n": 1}
    assert (second.key, second.value, second.index, second.table) == (b"id2", None, 1, "b")
    headers = dict(second.headers(confirmed_ts=5, offset=9))
    assert headers == {
        "ts": b"7",
        "table": b"b",
        "component": b"",
        "index": b"1",
        "count": b"2",
        "confirmed_ts": b"5",
        "offset": b"9",
    }


def test_component_tables_name_their_component_and_get_their_own_topics():
    entry = LogEntry(
        7,
        (
            Write("id1", "limiter/rateLimits", None, {"_id": "id1"}),
            Write("id2", "workpool/batch/work", None, {"_id": "id2"}),
            Write("id3", "limiter/_storage", None, {"_id": "id3"}),  # a component's system table
            Write("id4", "rateLimits", None, {"_id": "id4"}),
        ),
    )
    per_table = KafkaExportConfig("127.0.0.1:1", topic="t", topic_per_table=True)
    limit, work, app = messages_of(entry, per_table)
    assert (limit.topic, limit.component, limit.table) == (
        "t.limiter.rateLimits",
        "limiter",
        "rateLimits",
    )
    assert (work.topic, work.component, work.table) == (
        "t.workpool.batch.work",
        "workpool/batch",
        "work",
    )
    assert (app.topic, app.component, app.table) == ("t.rateLimits", "", "rateLimits")
    headers = dict(limit.headers(confirmed_ts=5, offset=0))
    assert (headers["component"], headers["table"]) == (b"limiter", b"rateLimits")
    single = messages_of(entry, KafkaExportConfig("127.0.0.1:1", topic="t"))
    assert {m.topic for m in single} == {"t"}
    assert [m.component for m in single] == ["limiter", "workpool/batch", ""]


def test_partition_is_stable_and_spreads_keys():
    keys = [f"key{i}".encode() for i in range(300)]
    assert {partition_of(k, 4) for k in keys} == {0, 1, 2, 3}
    assert [partition_of(k, 4) for k in keys] == [partition_of(k, 4) for k in keys]
    assert all(partition_of(k, 1) == 0 for k in keys)


@pytest.mark.parametrize(
    "options",
    [{"topic": "bad topic!"}, {"envelope": "avro"}, {"partitions": 0}, {"bootstrap_servers": ""}],
)
def test_bad_configuration_is_refused_clearly(options):
    settings = {"bootstrap_servers": "127.0.0.1:9092", **options}
    with pytest.raises(InvalidValueError):
        KafkaExportConfig(**settings)


# -- against the broker ----------------------------------------------------------------


def test_every_write_once_in_order_per_key_and_transactions_regroup(broker, db):
    rng = random.Random(1)
    live: list[str] = []
    with _exporter(db, broker.bootstrap, "ordered", partitions=3) as exporter:
        ts = _random_writes(db, rng, live, 60)
        assert exporter.wait_exported(ts, 20), exporter.statistics()
        stats = exporter.statistics()
    assert stats["entries_behind"] == 0 and stats["lag_ms"] == 0.0
    records = read_topic(broker.bootstrap, "ordered")
    _assert_exactly_once(db, records, 3)
    # Regroup transactions from the headers alone: same ts, `count` messages, indexes 0..count-1.
    groups = defaultdict(list)
    for r in records:
        h = dict(r.headers)
        groups[int(h["ts"])].append((int(h["index"]), int(h["count"])))
    for members in groups.values():
        count = members[0][1]
        assert sorted(i for i, _ in members) == list(range(count))
    assert any(len(m) > 1 for m in groups.values())


def test_restarted_exporter_resumes_without_doubling(broker, db):
    rng = random.Random(2)
    live: list[str] = []
    for _ in range(3):
        with _exporter(db, broker.bootstrap, "resumed", partitions=2) as exporter:
            ts = _random_writes(db, rng, live, 15)
            assert exporter.wait_exported(ts, 20), exporter.statistics()
    _assert_exactly_once(db, read_topic(broker.bootstrap, "resumed"), 2)


def test_chunks_that_land_in_part_are_completed_not_doubled(broker, db, monkeypatch):
    """Fail sends after only some partitions took the chunk; small chunks cut transactions."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    real_send = kafka_export._Session.send

    def flaky_send(session, messages, confirmed_ts, ends):
        if rng.random() < 0.5:
            return real_send(session, messages, confirmed_ts, ends)
        partitions = {p for _, p in messages}
        landed = {p for p in partitions if rng.random() < 0.5}
        real_send(session, [(m, p) for m, p in messages if p in landed], confirmed_ts, ends)
        raise kafka_export.KafkaExportError("injected: the other partitions did not take it")

    monkeypatch.setattr(kafka_export._Session, "send", flaky_send)
    with _exporter(
        db, broker.bootstrap, "partial", partitions=3, chunk_bytes_max=1500, backoff_initial_ms=5
    ) as ex:
        ts = 0
        for k in range(12):
            ts = db.mutate(
                lambda tx, k=k: [tx.insert("items", {"k": k, "j": j}) for j in range(k * 3)]
            ).ts
        assert ex.wait_exported(ts, 60), ex.statistics()
        assert ex.statistics()["sessions"] > 1
    _assert_exactly_once(db, read_topic(broker.bootstrap, "partial"), 3)


def test_existing_topic_is_used_whatever_its_partition_count(broker, db):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("existing", 5, 1)])
    admin.close()
    with _exporter(db, broker.bootstrap, "existing", partitions=1) as exporter:
        ts = _random_writes(db, random.Random(3), [], 20)
        assert exporter.wait_exported(ts, 20)
    _assert_exactly_once(db, read_topic(broker.bootstrap, "existing"), 5)


def test_topic_per_table_with_debezium_envelope(broker, db):
    with _exporter(db, broker.bootstrap, "cdc", topic_per_table=True, envelope="debezium") as ex:
        a = db.mutate(lambda tx: tx.insert("alpha", {"v": 1.0})).value
        db.mutate(lambda tx: tx.insert("beta", {"v": b"\x00"}))
        db.mutate(lambda tx: tx.patch(a, {"v": 2.0}))
        ts = db.mutate(lambda tx: tx.delete(a)).ts
        assert ex.wait_exported(ts, 20), ex.statistics()
    alpha = [json.loads(r.value) for r in read_topic(broker.bootstrap, "cdc.alpha")]
    beta = [json.loads(r.value) for r in read_topic(broker.bootstrap, "cdc.beta")]
    assert [m["op"] for m in alpha] == ["c", "u", "d"]
    assert alpha[1]["before"]["v"] == 1.0 and alpha[1]["after"]["v"] == 2.0
    assert alpha[2]["before"]["v"] == 2.0 and alpha[2]["after"] is None
    assert beta[0]["after"]["v"] == {"$bytes": "AA=="}
    assert alpha[0]["source"]["table"] == "alpha" and alpha[0]["ts_ms"] > 0


def test_component_tables_export_to_their_topics_with_a_component_header(broker, db):
    with _exporter(db, broker.bootstrap, "comp", topic_per_table=True) as exporter:
        ids = db.mutate(
            lambda tx: [
                tx.insert("limiter/rateLimits", {"v": 1.0}),
                tx.insert("rateLimits", {"v": 2.0}),
            ]
        ).value
        ts = db.mutate(lambda tx: tx.delete(ids[0])).ts
        assert exporter.wait_exported(ts, 20), exporter.statistics()
    limiter = read_topic(broker.bootstrap, "comp.limiter.rateLimits")
    app = read_topic(broker.bootstrap, "comp.rateLimits")
    assert [(r.key.decode(), dict(r.headers)["component"]) for r in limiter] == [
        (ids[0], b"limiter"),
        (ids[0], b"limiter"),
    ]
    assert limiter[1].value is None
    assert [(r.key.decode(), dict(r.headers)["component"]) for r in app] == [(ids[1], b"")]
    assert {dict(r.headers)["table"] for r in limiter + app} == {b"rateLimits"}
    # Restarted, it finds the component topics among its own and sends nothing twice.
    more = db.mutate(lambda tx: tx.insert("limiter/rateLimits", {"v": 3.0})).ts
    with _exporter(db, broker.bootstrap, "comp", topic_per_table=True) as exporter:
        assert exporter.wait_exported(more, 20), exporter.statistics()
    assert len(read_topic(broker.bootstrap, "comp.limiter.rateLimits")) == 3
    assert len(read_topic(broker.bootstrap, "comp.rateLimits")) == 1


def test_a_topic_written_by_someone_else_is_refused(broker, db):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("foreign", 1, 1)])
    admin.close()
    producer.send("foreign", b"not ours", partition=0).get(10)
    producer.close()
    with _exporter(db, broker.bootstrap, "foreign") as exporter:
        db.mutate(lambda tx: tx.insert("items", {"n": 1}))
        deadline = time.monotonic() + 10
        while exporter.statistics()["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = exporter.statistics()
    assert "not written by Headwater" in stats["last_error"]
    assert stats["messages_sent"] == 0 and stats["state"] == "retrying"
    assert len(read_topic(broker.bootstrap, "foreign")) == 1


@pytest.mark.slow
def test_broker_down_lags_reports_and_catches_up(db):
    with TansuBroker() as own:
        with _exporter(db, own.bootstrap, "outage", partitions=2) as exporter:
            live: list[str] = []
            ts = _random_writes(db, random.Random(4), live, 10)
            assert exporter.wait_exported(ts, 20)
            own.stop()
            # Commits go on while the broker is down; the exporter falls behind and says so.
            ts = _random_writes(db, random.Random(5), live, 10)
            deadline = time.monotonic() + 10
            while exporter.statistics()["state"] != "retrying" and time.monotonic() < deadline:
                time.sleep(0.05)
            stats = exporter.statistics()
            assert stats["state"] == "retrying"
            assert stats["entries_behind"] >= 10 and stats["lag_ms"] > 0
            assert stats["exported_ts"] < ts
            own.start()  # memory storage: the broker comes back empty
            assert exporter.wait_exported(ts, 30), exporter.statistics()
            assert exporter.statistics()["entries_behind"] == 0
        _assert_exactly_once(db, read_topic(own.bootstrap, "outage"), 2)
    gc.collect()  # the sockets kafka-python leaked while the broker was down


@pytest.mark.slow
def test_exactly_once_when_the_exporter_process_is_killed_at_random(broker, db):
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    live: list[str] = []
    stop = threading.Event()

    def write_forever() -> None:
        writer_rng = random.Random(seed + 1)
        while not stop.is_set():
            _random_writes(db, writer_rng, live, 1)
            time.sleep(writer_rng.uniform(0, 0.004))

    writer = threading.Thread(target=write_forever)
    writer.start()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable,
        "-c",
        EXPORTER_SCRIPT,
        "kafka-export",
        "--data",
        db.path,
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        "killed",
        "--partitions",
        "3",
    ]
    try:
        for _ in range(4):
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            # Kill at a random moment after the exporter started: connecting, reading the
            # topic back, or in the middle of the backlog that piled up meanwhile.
            assert proc.stdout is not None and proc.stdout.readline().startswith("Exporting")
            time.sleep(rng.uniform(0.02, 1.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
    finally:
        stop.set()
        writer.join()
    # Under load the killed processes may not have created the topic yet: same partitions.
    before = len(read_topic(broker.bootstrap, "killed"))
    with _exporter(db, broker.bootstrap, "killed", partitions=3) as exporter:
        assert exporter.wait_exported(db.latest_ts(), 30), exporter.statistics()
    records = read_topic(broker.bootstrap, "killed")
    print(f"{before} of {len(records)} messages were produced by the killed processes")
    assert len(records) > 20
    _assert_exactly_once(db, records, 3)


# -- `headwater kafka-export` as a user runs it --------------------------------------

_STATUS_LINE = re.compile(r"^\d\d:\d\d:\d\d (broker \S+ (connected|unreachable)|connecting)")
_SIGTERM_EXIT_S_MAX = 2.0


class _KafkaExportProcess:
    """The installed `headwater kafka-export`, its stdout lines collected as they come."""

    def __init__(self, data: str, bootstrap: str, *extra: str) -> None:
        entry_point = Path(sys.executable).parent / "headwater"
        command = [str(entry_point)]
        if not entry_point.exists():
            command = [sys.executable, "-m", "gateway.cli"]
        self.proc = subprocess.Popen(
            [*command, "kafka-export", "--data", data, "--bootstrap", bootstrap, *extra],
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"no line with {text!r} in {self.lines}")

    def sigterm(self) -> tuple[float, str]:
        """Send SIGTERM; the seconds until the process exited, and its stderr."""
        started = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        seconds = time.monotonic() - started
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()
        assert self.proc.returncode == 0, self.proc.returncode
        return seconds, "\n".join(self.stderr)


def _three_commits(path: Path) -> str:
    with Database.open(str(path)) as db:
        for i in range(3):
            db.mutate(lambda tx, i=i: tx.insert("notes", {"i": i}))
    return str(path)


@pytest.mark.slow
def test_the_command_is_quiet_says_where_it_stands_and_stops_on_sigterm(broker, tmp_path):
    data = _three_commits(tmp_path / "data")
    process = _KafkaExportProcess(data, broker.bootstrap, "--topic", "quiet")
    line = process.wait_for_line("up to date")
    assert f"broker {broker.bootstrap} connected" in line and "3 records sent" in line
    time.sleep(1)  # the client's chatter of a first connection would be out by now
    seconds, stderr = process.sigterm()
    assert seconds <= _SIGTERM_EXIT_S_MAX
    assert stderr == ""  # no Kafka client log lines
    assert process.lines[0].startswith("Exporting")
    assert all(_STATUS_LINE.match(line) for line in process.lines[1:]), process.lines
    assert len(process.lines) <= 5 and "None" not in "".join(process.lines)
    assert len(read_topic(broker.bootstrap, "quiet")) == 3


@pytest.mark.slow
def test_with_the_broker_down_it_says_so_and_still_stops_within_two_seconds(tmp_path):
    data = _three_commits(tmp_path / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"  # closed again: no broker there
    process = _KafkaExportProcess(data, nowhere)
    line = process.wait_for_line("unreachable")
    assert "not known until the broker answers" in line and "None" not in line
    seconds, stderr = process.sigterm()
    assert seconds <= _SIGTERM_EXIT_S_MAX
    assert stderr == ""
    # --verbose brings the Kafka client's own log back.
    verbose = _KafkaExportProcess(data, nowhere, "--verbose")
    verbose.wait_for_line("unreachable")
    seconds, stderr = verbose.sigterm()
    assert seconds <= _SIGTERM_EXIT_S_MAX and "kafka" in stderr
