"""Benchmark: Headwater on PostgreSQL (``--store``) — commits, catch-up, failover, reads.

Each figure has its baseline from the same run:
- durable commits/s with 64 writers: a node leading a PostgreSQL store, and the
  embedded LMDB engine, against the same single-row inserts as plain
  ``INSERT``s through psycopg (one autocommit transaction each: PostgreSQL's own
  group commit shares the fsyncs), 64 threads;
- a new node catching up N log entries (``HEADWATER_BENCH_CATCHUP_ENTRIES``,
  default 200,000; 1 M is the issue's figure) against merely reading and
  decoding the same entries from the store; and one seeded by
  ``cache-snapshot`` of a node, then applying a tail of N/100 entries;
- failover: two ``headwater serve`` processes, SIGKILL the leader, time until a
  mutation through the survivor succeeds (lease ttl + one check is the bound);
- read throughput over HTTP with 1, 2 and 3 nodes, clients spread over them.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); each part uses a
fresh database, dropped at the end. Run: ``python -m bench.bench_cluster``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from bench.common import print_table, rate_with_threads
from engine import Database
from engine.cluster import ClusterNode
from engine.ids import encode_id, new_internal_id
from log.entry import LogEntry, Write
from log.store_url import open_shared_store

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WRITERS = 64
DURATION_S = 3.0
CATCHUP_ENTRIES = int(os.environ.get("HEADWATER_BENCH_CATCHUP_ENTRIES", "200000"))
ROOT = Path(__file__).resolve().parents[1]
BANK_APP = ROOT / "tests" / "e2e" / "bank_app" / "convex"


class FreshDatabase:
    """A new PostgreSQL database for one part of the benchmark, dropped afterwards."""

    def __enter__(self) -> str:
        self.name = f"headwater_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        return f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def _rate(writers: int, body) -> float:
    return rate_with_threads(writers, body, DURATION_S)


def _engine_rate(db: Database) -> float:
    db.mutate(lambda tx: tx.insert("events", {"warm": True}))
    return _rate(
        WRITERS, lambda k: db.mutate(lambda tx: tx.insert("events", {"writer": k, "v": 1.0}))
    )


def commits_part(tmp: Path) -> list[tuple[object, ...]]:
    with FreshDatabase() as url:
        store = open_shared_store(url)
        with Database.open(tmp / "pg-node", cluster=ClusterNode(store)) as db:
            on_postgres = _engine_rate(db)
        store.close()
    with FreshDatabase() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, writer int, v float8)")
        local = threading.local()

        def insert(k: int) -> None:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = psycopg.connect(url, autocommit=True)
            conn.execute("INSERT INTO events (writer, v) VALUES (%s, %s)", (k, 1.0))

        plain = _rate(WRITERS, insert)
    with Database.open(tmp / "lmdb") as db:
        on_lmdb = _engine_rate(db)
    return [
        ("headwater on PostgreSQL (leader node)", on_postgres, plain, on_postgres / plain),
        ("headwater on LMDB (embedded)", on_lmdb, plain, on_lmdb / plain),
    ]


def _append_events(store, number: int, ts: int, count: int) -> int:
    """``count`` single-insert entries after ``ts``, appended in batches; the last ts."""
    batch: list[LogEntry] = []
    for i in range(count):
        ts += 1000
        doc_id = encode_id(number, new_internal_id(os.urandom, ts / 1e6))
        doc = {"_id": doc_id, "_creationTime": ts / 1e6, "n": float(i), "body": "x" * 40}
        batch.append(LogEntry(ts, (Write(doc_id, "events", None, doc),)))
        if len(batch) == 2000:
            store.append(batch)
            batch = []
    if batch:
        store.append(batch)
    return ts


def catch_up_part(tmp: Path) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """Joining from nothing, and from a cache snapshot plus a 1 % tail."""
    tail = max(CATCHUP_ENTRIES // 100, 1)
    with FreshDatabase() as url:
        store = open_shared_store(url)
        with Database.open(tmp / "writer", cluster=ClusterNode(store)) as db:
            db.mutate(lambda tx: tx.insert("events", {"seed": True}))
            number = db.table_numbers()["events"]
            ts = db.latest_ts()
        ts = _append_events(store, number, ts, CATCHUP_ENTRIES)
        started = time.perf_counter()
        decoded = sum(1 for _ in store.read_from(0))
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        with Database.open(tmp / "joiner", cluster=ClusterNode(store)) as db:
            caught_up = db.latest_ts() == store.latest_ts()
            join_s = time.perf_counter() - started
            started = time.perf_counter()
            db.snapshot_cache(str(tmp / "seeded"))
            snapshot_s = time.perf_counter() - started
        _append_events(store, number, ts, tail)
        started = time.perf_counter()
        with Database.open(tmp / "seeded", cluster=ClusterNode(store)) as db:
            caught_up = caught_up and db.latest_ts() == store.latest_ts()
            assert db.committer.statistics()["followed"] == tail
        seeded_s = time.perf_counter() - started
        store.close()
    assert caught_up
    return (
        (
            decoded,
            join_s,
            decoded / join_s,
            decoded / read_s,
            read_s / join_s,
            1e6 / (decoded / join_s),
        ),
        (tail, snapshot_s, seeded_s, snapshot_s + seeded_s, join_s / (snapshot_s + seeded_s)),
    )


def _serve(data: Path, store: str, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--store",
            store,
            "--data",
            str(data),
            "--port",
            str(port),
            "--site-port",
            "0",
            "--dashboard-port",
            "0",
            "--log-format",
            "none",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def _call(url: str, kind: str, path: str, args: dict, timeout_s: float = 10) -> httpx.Response:
    return httpx.post(f"{url}/api/{kind}", json={"path": path, "args": args}, timeout=timeout_s)


def _wait_answering(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _call(url, "query", "bank:balances", {}).json().get("status") == "success":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def _ports(n: int) -> list[int]:
    import socket

    ports = []
    for _ in range(n):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return ports


def failover_and_reads_part(tmp: Path) -> tuple[float, list[tuple[object, ...]]]:
    with FreshDatabase() as store:
        ports = _ports(3)
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        procs = [_serve(tmp / "n0", store, ports[0], "--functions", str(BANK_APP))]
        _wait_answering(urls[0])
        _call(
            urls[0],
            "mutation",
            "bank:open",
            {"names": ["a", "b"], "balance": {"$integer": "ZAAAAAAAAAA="}},
        )
        try:
            for i in (1, 2):
                procs.append(_serve(tmp / f"n{i}", store, ports[i]))
            for url in urls:
                _wait_answering(url)
            reads = [(n, _read_rate(urls[:n]), None) for n in (1, 2, 3)]
            base = reads[0][1]
            rows = [(n, rate, rate / base) for n, rate, _ in reads]
            leader = open_shared_store(store)
            leader_url = leader.current_lease().address
            leader.close()
            victim = urls.index(leader_url)
            survivor = urls[(victim + 1) % 3]
            os.kill(procs[victim].pid, signal.SIGKILL)
            killed = time.perf_counter()
            while True:
                try:
                    body = _call(
                        survivor,
                        "mutation",
                        "bank:transfer",
                        {
                            "key": "f",
                            "from": "a",
                            "to": "b",
                            "amount": {"$integer": "AQAAAAAAAAA="},
                        },
                        timeout_s=20,
                    ).json()
                    if body.get("status") == "success":
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            failover_s = time.perf_counter() - killed
        finally:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
    return failover_s, rows


def _reader(url: str, seconds: float, out: multiprocessing.Queue) -> None:
    done = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            client.post(f"{url}/api/query", json={"path": "bank:balances", "args": {}})
            done += 1
    out.put(done)


def _read_rate(urls: list[str], clients_per_node: int = 4, seconds: float = 4.0) -> float:
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_reader, args=(url, seconds, out))
        for url in urls
        for _ in range(clients_per_node)
    ]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print_table(
            f"Durable commits/s, {WRITERS} writers, one single-row insert each",
            ("store", "commits/s", "plain INSERT via psycopg/s", "ratio"),
            commits_part(tmp),
        )
        from_nothing, seeded = catch_up_part(tmp)
        print_table(
            "A new node joins: catch up the store's log into its cache",
            ("entries", "join s", "entries/s", "read+decode only/s", "ratio", "1 M entries est. s"),
            [from_nothing],
        )
        print_table(
            "A new node joins from a cache snapshot of another node, plus the log's tail",
            ("tail entries", "snapshot s", "join s", "total s", "x faster than from nothing"),
            [seeded],
        )
        failover_s, reads = failover_and_reads_part(tmp)
        print_table(
            f"Reads over HTTP (bank:balances), 4 client processes per node, {os.cpu_count()} cores",
            ("nodes", "queries/s", "vs 1 node"),
            reads,
        )
        print(
            f"\nFailover: SIGKILL of the leader to a write through a survivor: {failover_s:.2f} s"
        )


if __name__ == "__main__":
    main()
