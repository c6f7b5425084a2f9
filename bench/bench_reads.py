"""Benchmark: indexed point reads and 10-row range reads.

Ours: ``db.query`` (a fresh snapshot each call, as a function call would) and,
inside one open transaction, ``tx.get`` and an index query. Baselines in the
same run over the same rows: raw LMDB (a get / a 10-row cursor walk, decoding
the stored JSON) and SQLite with an index. Run: ``python -m bench.bench_reads``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import tempfile
from pathlib import Path

import lmdb

from bench.common import per_call_us, print_table
from engine import Database
from engine.limits import LIMITS

ROWS = 20_000
CALLS = 3000
SCHEMA = {
    "tables": [
        {
            "tableName": "items",
            "indexes": [{"indexDescriptor": "by_k", "fields": ["k"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": None,
        }
    ],
    "schemaValidation": True,
}


def _rows(rng: random.Random) -> list[dict]:
    return [
        {"k": f"key{i:06d}", "group": i // 10, "body": "x" * 40, "n": float(i)}
        for i in rng.sample(range(ROWS), ROWS)
    ]


def main() -> None:
    rng = random.Random(1)
    rows = _rows(rng)
    probe = [f"key{rng.randrange(ROWS):06d}" for _ in range(CALLS)]
    with tempfile.TemporaryDirectory() as tmp:
        results = _ours(Path(tmp) / "hw", rows, probe) | _lmdb(Path(tmp) / "raw", rows, probe)
        results |= _sqlite(Path(tmp) / "sq.db", rows, probe)
    point, rng10 = "point read (µs)", "10-row range (µs)"
    table = [
        ("headwater db.query, tx.get by id (snapshot per call)", results["q_get"], ""),
        ("headwater db.query, index (snapshot per call)", results["q_point"], results["q_range"]),
        ("headwater in one tx: tx.get / index query", results["tx_point"], results["tx_range"]),
        ("headwater in one tx: index .first()", results["tx_first"], ""),
        ("raw LMDB, txn per read", results["lmdb_point_txn"], results["lmdb_range_txn"]),
        ("raw LMDB, one txn", results["lmdb_point"], results["lmdb_range"]),
        ("SQLite with an index", results["sqlite_point"], results["sqlite_range"]),
    ]
    print_table("Reads over 20k documents", ("what", point, rng10), table)
    print(
        f"\nratio db.query get by id / raw LMDB txn-per-read: "
        f"{results['q_get'] / results['lmdb_point_txn']:.2f}x; "
        f"db.query index point read / raw LMDB txn-per-read: "
        f"{results['q_point'] / results['lmdb_point_txn']:.2f}x; "
        f"tx.get / raw LMDB get in one txn: {results['tx_point'] / results['lmdb_point']:.2f}x; "
        f"db.query point / SQLite: {results['q_point'] / results['sqlite_point']:.2f}x"
    )
    print(
        f"ratio in one tx, index .first() / raw LMDB get in one txn: "
        f"{results['tx_first'] / results['lmdb_point']:.2f}x; "
        f"10-row range in one tx / SQLite indexed range: "
        f"{results['tx_range'] / results['sqlite_range']:.2f}x"
    )


def _ours(path: Path, rows: list[dict], probe: list[str]) -> dict[str, float]:
    # One long transaction reads far more than a function may: lift the per-call limits.
    unbounded = dataclasses.replace(
        LIMITS, index_ranges_max=10**9, documents_read_max=10**9, read_bytes_max=1 << 60
    )
    with Database.open(path, limits=unbounded) as db:
        db.set_schema(SCHEMA)
        ids: dict[str, str] = {}
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            got = db.mutate(lambda tx, c=chunk: [tx.insert("items", r) for r in c]).value
            ids.update({r["k"]: i for r, i in zip(chunk, got, strict=True)})
        it = iter(probe * 10)
        id_probe = iter([ids[k] for k in probe] * 10)

        def q_point():
            k = next(it)
            return db.query(
                lambda tx: tx.query("items").with_index("by_k", lambda q: q.eq("k", k)).first()
            ).value

        def q_range():
            k = next(it)
            return db.query(
                lambda tx: tx.query("items").with_index("by_k", lambda q: q.gte("k", k)).take(10)
            ).value

        def q_get():
            doc_id = next(id_probe)
            return db.query(lambda tx: tx.get(doc_id)).value

        out = {
            "q_get": per_call_us(q_get, calls=len(probe) // 3),
            "q_point": per_call_us(q_point, calls=len(probe) // 3),
            "q_range": per_call_us(q_range, calls=len(probe) // 3),
        }
        tx = db.begin(writable=False)
        try:
            out["tx_point"] = per_call_us(lambda: tx.get(next(id_probe)), calls=len(probe))
            out["tx_first"] = per_call_us(
                lambda: tx.query("items").with_index("by_k", lambda q: q.eq("k", next(it))).first(),
                calls=len(probe) // 3,
            )
            out["tx_range"] = per_call_us(
                lambda: (
                    tx.query("items").with_index("by_k", lambda q: q.gte("k", next(it))).take(10)
                ),
                calls=len(probe) // 3,
            )
        finally:
            tx.close()
    return out


def _lmdb(path: Path, rows: list[dict], probe: list[str]) -> dict[str, float]:
    env = lmdb.open(str(path), map_size=1 << 32)
    with env.begin(write=True) as txn:
        for r in rows:
            txn.put(r["k"].encode(), json.dumps(r).encode())
    it = iter(probe * 20)

    def point_txn():
        with env.begin() as txn:
            return json.loads(txn.get(next(it).encode()))

    def range_txn():
        with env.begin() as txn:
            return _ten(txn.cursor(), next(it))

    out = {
        "lmdb_point_txn": per_call_us(point_txn, calls=len(probe)),
        "lmdb_range_txn": per_call_us(range_txn, calls=len(probe)),
    }
    with env.begin() as txn:
        out["lmdb_point"] = per_call_us(
            lambda: json.loads(txn.get(next(it).encode())), calls=len(probe)
        )
        cursor = txn.cursor()
        out["lmdb_range"] = per_call_us(lambda: _ten(cursor, next(it)), calls=len(probe))
    env.close()
    return out


def _ten(cursor, key: str) -> list[dict]:
    found = []
    if cursor.set_range(key.encode()):
        for _, value in cursor:
            found.append(json.loads(value))
            if len(found) == 10:
                break
    return found


def _sqlite(path: Path, rows: list[dict], probe: list[str]) -> dict[str, float]:
    conn = sqlite3.connect(path)
    conn.execute("create table items (k text, doc text)")
    conn.execute("create index by_k on items (k)")
    conn.executemany("insert into items values (?, ?)", [(r["k"], json.dumps(r)) for r in rows])
    conn.commit()
    it = iter(probe * 20)

    def point():
        row = conn.execute("select doc from items where k = ?", (next(it),)).fetchone()
        return json.loads(row[0])

    def range10():
        cur = conn.execute("select doc from items where k >= ? order by k limit 10", (next(it),))
        return [json.loads(r[0]) for r in cur]

    out = {
        "sqlite_point": per_call_us(point, calls=len(probe)),
        "sqlite_range": per_call_us(range10, calls=len(probe)),
    }
    conn.close()
    return out


if __name__ == "__main__":
    main()
