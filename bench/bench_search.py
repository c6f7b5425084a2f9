"""Benchmark: text search and vector search through the engine, against the raw libraries.

Text, at 10k and 100k documents (Zipf-distributed words): p50/p99 of a top-10
search that returns documents (ours: a read-only transaction, exact at its
snapshot) against raw tantivy on the same corpus (top 10 by its own BM25, ids
from a fast field); and the delay from an acknowledged commit until the change
is inside the tantivy index (it is visible to searches at once either way: the
read path adds the log tail).

Vector, 100k x 128 (clustered): recall@10 against exact neighbours and p50, for
ours (``Database.vector_search``), raw annoy with the same trees and search_k,
and exact numpy. Ours is measured once the index is quiet: its background builder
has merged the segments and tail of the load into one segment (as it does for any
index once writes pause); the note shows the layout searched.
Run: ``python -m bench.bench_search``.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np
import tantivy
from annoy import AnnoyIndex

from bench.common import percentiles_ms, print_table
from engine import Database
from projections.vector_search import ANNOY_TREES

VOCABULARY = 5000
QUERIES = 200
BATCH = 2000
DIMS = 128
VECTORS = 100_000


def _schema(search: bool, vector: bool) -> dict:
    return {
        "tables": [
            {
                "tableName": "docs",
                "indexes": [],
                "searchIndexes": [
                    {"indexDescriptor": "by_text", "searchField": "text", "filterFields": []}
                ]
                if search
                else [],
                "vectorIndexes": [
                    {
                        "indexDescriptor": "by_vec",
                        "vectorField": "vec",
                        "dimensions": DIMS,
                        "filterFields": [],
                    }
                ]
                if vector
                else [],
                "documentType": None,
            }
        ],
        "schemaValidation": False,
    }


def _corpus(n: int, rng: random.Random) -> list[str]:
    words = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1.0 / (i + 1) for i in range(VOCABULARY)]
    return [" ".join(rng.choices(words, weights, k=rng.randint(8, 20))) for _ in range(n)]


def _queries(rng: random.Random) -> list[str]:
    out = []
    for _ in range(QUERIES):
        terms = [f"w{rng.randrange(VOCABULARY // 2)}" for _ in range(rng.randint(1, 2))]
        out.append(" ".join(terms))
    return out


def _load(db: Database, docs: list[dict], ids: list[str] | None = None) -> float:
    started = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        chunk = docs[i : i + BATCH]
        added = db.mutate(lambda tx, c=chunk: [tx.insert("docs", d) for d in c]).value
        if ids is not None:
            ids.extend(added)
    return time.perf_counter() - started


def _raw_tantivy(folder: Path, texts: list[str]) -> tuple[object, object]:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name="default", index_option="freq")
    builder.add_unsigned_field("id", fast=True)
    schema = builder.build()
    folder.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer(64_000_000, 1)
    for i, text in enumerate(texts):
        doc = tantivy.Document()
        doc.add_text("text", text)
        doc.add_unsigned("id", i)
        writer.add_document(doc)
    writer.commit()
    index.reload()
    return index.searcher(), schema


def _raw_query(searcher: object, schema: object, text: str) -> list[int]:
    *exact, last = text.split()
    clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", t)) for t in exact]
    clauses.append((tantivy.Occur.Should, tantivy.Query.regex_query(schema, "text", last + ".*")))
    hits = searcher.search(tantivy.Query.boolean_query(clauses), 10).hits  # type: ignore[attr-defined]
    return searcher.fast_field_values("id", [a for _, a in hits])  # type: ignore[attr-defined]


def _text(size: int, rows: list[tuple[object, ...]]) -> None:
    rng = random.Random(size)
    texts = _corpus(size, rng)
    queries = _queries(rng)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(Path(tmp) / "data")
        try:
            db.set_schema(_schema(True, False))
            load_s = _load(db, [{"text": t} for t in texts])
            db.wait_for_search_indexes(600)

            def ours(q: str) -> list[dict]:
                return db.query(
                    lambda tx: (
                        tx.query("docs")
                        .with_search_index("by_text", lambda b: b.search("text", q))
                        .take(10)
                    )
                ).value

            searcher, schema = _raw_tantivy(Path(tmp) / "raw", texts)
            ours_s, raw_s = [], []
            for q in queries:
                started = time.perf_counter()
                ours(q)
                ours_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                _raw_query(searcher, schema, q)
                raw_s.append(time.perf_counter() - started)
            delays = _commit_to_indexed(db)
        finally:
            db.close()
    o50, o99 = percentiles_ms(ours_s)
    r50, r99 = percentiles_ms(raw_s)
    d50, d99 = percentiles_ms(delays)
    rows.append(
        (f"text {size:,}", "ours p50 / p99 ms", o50, o99, f"load {size / load_s:,.0f} docs/s")
    )
    rows.append(
        (f"text {size:,}", "raw tantivy p50 / p99 ms", r50, r99, f"ratio p50 {o50 / r50:.1f}x")
    )
    rows.append(
        (f"text {size:,}", "commit -> in tantivy ms", d50, d99, "searchable at once (tail)")
    )


def _commit_to_indexed(db: Database) -> list[float]:
    slot = db._search.slot("docs.by_text")
    delays = []
    for i in range(20):
        started = time.perf_counter()
        ts = db.mutate(lambda tx, i=i: tx.insert("docs", {"text": f"fresh{i} word"})).ts
        while (slot.index.checkpoint_ts or 0) < ts:
            time.sleep(0.0005)
        delays.append(time.perf_counter() - started)
        time.sleep(0.02)
    return delays


def _vectors(rows: list[tuple[object, ...]]) -> None:
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(200, DIMS))
    data = centers[rng.integers(0, 200, VECTORS)] + 0.4 * rng.normal(size=(VECTORS, DIMS))
    queries = centers[rng.integers(0, 200, QUERIES)] + 0.4 * rng.normal(size=(QUERIES, DIMS))
    units = data / np.linalg.norm(data, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(Path(tmp) / "data")
        try:
            db.set_schema(_schema(False, True))
            inserted: list[str] = []
            load_s = _load(db, [{"vec": v.tolist()} for v in data], inserted)
            db.wait_for_search_indexes(600)
            index = db._search.slot("docs.by_vec").index
            index.wait_builds()  # the load's builds, and the merge once it is quiet
            built = index.statistics()
            ids = {doc_id: n for n, doc_id in enumerate(inserted)}
            raw = AnnoyIndex(DIMS, "angular")
            for i, v in enumerate(units):
                raw.add_item(i, v.tolist())
            raw.build(ANNOY_TREES, n_jobs=1)
            results: dict[str, tuple[list[float], int]] = {
                "ours": ([], 0),
                "raw": ([], 0),
                "exact": ([], 0),
            }
            for q in queries:
                unit = q / np.linalg.norm(q)
                truth = set(np.argsort(-(units @ unit))[:10].tolist())
                started = time.perf_counter()
                exact = np.argpartition(-(units @ unit), 10)[:10]
                _add(results, "exact", time.perf_counter() - started, truth, exact.tolist())
                started = time.perf_counter()
                found = raw.get_nns_by_vector(unit.tolist(), 10, search_k=64 * ANNOY_TREES * 4)
                _add(results, "raw", time.perf_counter() - started, truth, found)
                started = time.perf_counter()
                hits = db.vector_search("docs", "by_vec", q.tolist(), 10)
                _add(
                    results, "ours", time.perf_counter() - started, truth, [ids[i] for i, _ in hits]
                )
        finally:
            db.close()
    ours_p50 = percentiles_ms(results["ours"][0])[0]
    for name, label in (("ours", "ours"), ("raw", "raw annoy"), ("exact", "exact numpy")):
        samples, hits = results[name]
        p50, p99 = percentiles_ms(samples)
        note = f"recall@10 {hits / (10 * QUERIES):.3f}"
        if name == "ours":
            note += f"; load {VECTORS / load_s:,.0f}/s"
            note += f"; {built['segments']} segments, tail {built['tail']}"
        else:
            note += f"; ratio p50 {ours_p50 / p50:.2f}x"
        rows.append((f"vector {VECTORS:,}x{DIMS}", f"{label} p50 / p99 ms", p50, p99, note))


def _add(results: dict, name: str, seconds: float, truth: set[int], found: list[int]) -> None:
    samples, hits = results[name]
    samples.append(seconds)
    results[name] = (samples, hits + len(truth & set(found)))


def main() -> None:
    rows: list[tuple[object, ...]] = []
    for size in (10_000, 100_000):
        _text(size, rows)
    _vectors(rows)
    print_table("Search", ("case", "measure", "p50", "p99", "note"), rows)


if __name__ == "__main__":
    main()
