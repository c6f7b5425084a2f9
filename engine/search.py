"""Reading the search projections exactly at a snapshot: text search and vector search.

A text or vector index is a projection behind a checkpoint C (its last
commit); a read happens at snapshot S. The read takes the documents written
between C and S (either way round; the indexer remembers recent entries,
older ones come from the log) plus the transaction's own pending writes: for
each of them the index's version (at C) is masked out of the index's answer
and taken out of its statistics, and the version the reader sees (at S, or
its own write) is evaluated directly and added in. So every search returns
exactly what a brute-force scan of the documents visible to the reader would.

Text ranking (``projections.text_search``): BM25 with the statistics of the
documents visible to the reader, computed in Python for every candidate, so
index hits and changed documents are scored by one formula. tantivy supplies
candidates in its own BM25 order, whose statistics differ (checkpoint,
deleted documents); per query a factor U bounds our score over tantivy's for
any unchanged document (largest ratio of the two idfs, times the ratio of the
average lengths with tantivy's taken at its lowest possible value), and
candidates are fetched until the k-th best exact score beats U times the
last tantivy score, so no unfetched document can belong in the top k.

Limits (reference values; they belong in ``engine.limits``): at most
``SEARCH_RESULTS_MAX`` results, ``SEARCH_TERMS_MAX`` terms of at most
``SEARCH_TERM_BYTES_MAX`` bytes, ``SEARCH_FILTERS_MAX`` Eq filters; vector
searches return 1..``VECTOR_RESULTS_MAX`` results (default 10) and take at most
``VECTOR_FILTER_CLAUSES_MAX`` Eq clauses. An index still backfilling raises
``InvalidQueryError`` with code ``IndexBackfilling``, as the reference does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import IntegrityError, InvalidQueryError, LimitExceededError
from engine.filter_expression import Compare, Field, Literal, Or, parse_expression
from engine.key_encoding import encode_value
from engine.query_spec import SearchSource
from engine.read_set import SearchRead
from engine.schema import SearchIndexDef, VectorIndexDef
from engine.values import UNSET, check_value, copy_value
from projections.documents import id_of_storage_key
from projections.search_indexes import SearchIndexes, Slot
from projections.text_search import (
    TOKEN_BYTES_MAX,
    Bm25Scorer,
    TextIndex,
    document_tokens,
    filter_token,
    filter_values,
    idf,
    split_words,
)
from projections.vector_search import VectorIndex, unit_vector

SEARCH_RESULTS_MAX = 1024
SEARCH_TERMS_MAX = 16
SEARCH_TERM_BYTES_MAX = TOKEN_BYTES_MAX
SEARCH_FILTERS_MAX = 8
VECTOR_RESULTS_DEFAULT = 10
VECTOR_RESULTS_MAX = 256
VECTOR_FILTER_CLAUSES_MAX = 64
_F32_SLACK = 1.001  # tantivy scores are float32
_NUMBER_TYPES = {float, int}  # exactly: a bool is not a vector component


# --- compiling a search -----------------------------------------------------------


@dataclass(frozen=True)
class CompiledSearch:
    table: str
    definition: SearchIndexDef
    terms: tuple[str, ...]  # exact terms, distinct, in query order
    prefix: str | None  # the last term
    filters: tuple[tuple[int, str, bytes], ...]  # (filter field position, path, key encoding)

    @property
    def index_id(self) -> str:
        return f"{self.definition.table}.{self.definition.name}"

    def read(self) -> SearchRead | None:
        """What a read set records (nothing for an empty query: it matches nothing, ever)."""
        if not self.terms and self.prefix is None:
            return None
        filters = tuple(sorted({(path, enc) for _, path, enc in self.filters}))
        return SearchRead(self.index_id, tuple(sorted(self.terms)), self.prefix, filters)


def _index_not_found(index_id: str, why: str = "") -> InvalidQueryError:
    return InvalidQueryError(f'Index "{index_id}" not found{why}.', code="IndexNotFound")


def compile_search(schema: Any, source: SearchSource) -> CompiledSearch:
    """Check a search against its index definition and the limits; clear errors."""
    index_id = f"{source.table}.{source.index}"
    table = schema.tables.get(source.table)
    definition = None
    if table is not None:
        definition = next((d for d in table.search_indexes if d.name == source.index), None)
    if definition is None:
        raise _index_not_found(index_id, " (or it is not a search index)")
    search = next(f for f in source.filters if f.kind == "Search")
    if search.field_path != definition.search_field:
        raise InvalidQueryError(
            f'Search query against "{index_id}" searches the field "{search.field_path}", but '
            f'the index\'s searchField is "{definition.search_field}".',
            code="InvalidSearchField",
        )
    words = split_words(search.value)
    if len(words) > SEARCH_TERMS_MAX:
        raise LimitExceededError(
            f"Search query has {len(words)} terms; at most {SEARCH_TERMS_MAX} are allowed.",
            code="TooManySearchTerms",
        )
    for word in words:
        if len(word.encode()) > SEARCH_TERM_BYTES_MAX:
            raise LimitExceededError(
                f'Search term "{word[:40]}..." is {len(word.encode())} bytes long; terms may be '
                f"at most {SEARCH_TERM_BYTES_MAX} bytes.",
                code="SearchTermTooLong",
            )
    filters = _compile_filters(index_id, definition, source)
    terms = tuple(dict.fromkeys(words[:-1]))
    return CompiledSearch(source.table, definition, terms, words[-1] if words else None, filters)


def _compile_filters(
    index_id: str, definition: SearchIndexDef, source: SearchSource
) -> tuple[tuple[int, str, bytes], ...]:
    eqs = [f for f in source.filters if f.kind == "Eq"]
    if len(eqs) > SEARCH_FILTERS_MAX:
        raise LimitExceededError(
            f"Search query has {len(eqs)} filters; at most {SEARCH_FILTERS_MAX} are allowed.",
            code="TooManySearchFilters",
        )
    out = []
    seen: set[str] = set()
    for f in eqs:
        if f.field_path not in definition.filter_fields:
            raise InvalidQueryError(
                f'Search query against "{index_id}" filters on "{f.field_path}", which is not '
                f"one of the index's filterFields {list(definition.filter_fields)}.",
                code="InvalidSearchFilter",
            )
        if f.field_path in seen:
            raise InvalidQueryError(
                f'Search query against "{index_id}" filters on "{f.field_path}" twice.',
                code="InvalidSearchFilter",
            )
        seen.add(f.field_path)
        position = definition.filter_fields.index(f.field_path)
        out.append((position, f.field_path, encode_value(f.value)))
    return tuple(out)


# --- the tail: documents whose index version differs from the reader's ----------------


def _ready_slot(indexes: SearchIndexes, index_id: str, definition: Any) -> Slot:
    slot = indexes.slot(index_id)
    if slot is None or slot.definition != definition or not slot.ready:
        raise InvalidQueryError(
            f'Index "{index_id}" is currently backfilling and not available to query yet.',
            code="IndexBackfilling",
        )
    return slot


@dataclass
class _Changed:
    """Per changed document: the index's version (at C) and the reader's version."""

    index_version: dict[bytes, dict | None]
    reader_version: dict[bytes, dict | None]


def _changed(
    runner: Any,
    indexes: SearchIndexes,
    table_number: int | None,
    checkpoint: int,
    snapshot_ts: int,
    read_version: Callable[[bytes], dict | None],
    own: dict[bytes, dict | None],
) -> _Changed:
    keys: set[bytes] = set(own)
    index_version: dict[bytes, dict | None] = {}
    with runner.begin_read() as txn:
        if table_number is not None:
            lo, hi = min(checkpoint, snapshot_ts), max(checkpoint, snapshot_ts)
            keys |= indexes.changed_keys(table_number, lo, hi, txn)
        for key in keys:
            found = runner.documents.get_at(txn, key, checkpoint)
            index_version[key] = None if found is None else found[1]
    reader = {key: own[key] if key in own else read_version(key) for key in keys}
    return _Changed(index_version, reader)


def _reader_version(tx: Any) -> Callable[[bytes], dict | None]:
    snapshot = tx.snapshot

    def read(key: bytes) -> dict | None:
        found = snapshot.get(key)
        return None if found is None else found[1]

    return read


# --- text search ---------------------------------------------------------------------------


def _rank_key(item: tuple[float, dict]) -> tuple[float, float, str]:
    score, doc = item
    return (-score, -doc["_creationTime"], doc["_id"])


def text_search(tx: Any, compiled: CompiledSearch, k: int) -> list[tuple[float, dict]]:
    """The ``k`` best (score, document) for the transaction's view, best first."""
    if compiled.prefix is None or k <= 0:
        return []
    runner = tx.snapshot._runner
    indexes: SearchIndexes = runner.search_indexes
    slot = _ready_slot(indexes, compiled.index_id, compiled.definition)
    assert isinstance(slot.index, TextIndex)
    view = slot.index.view()
    if view is None:
        raise IntegrityError(f"Search index {compiled.index_id} is ready but has no view")
    own = {
        w.storage_key: None if w.value is None else copy_value(w.value)
        for w in tx.pending_writes_of(compiled.table)
    }
    changed = _changed(
        runner,
        indexes,
        tx.table_number(compiled.table),
        view.checkpoint_ts,
        tx.snapshot_ts,
        _reader_version(tx),
        own,
    )
    field = compiled.definition.search_field
    documents, tokens = view.documents, view.tokens
    delta: Counter[str] = Counter()
    for key, old in changed.index_version.items():
        old_tokens = document_tokens(old, field)
        if old_tokens is not None:
            documents, tokens = documents - 1, tokens - len(old_tokens)
            delta.subtract(set(old_tokens))
        new_tokens = document_tokens(changed.reader_version[key], field)
        if new_tokens is not None:
            documents, tokens = documents + 1, tokens + len(new_tokens)
            delta.update(set(new_tokens))
    if documents <= 0:
        return []
    avg_length = tokens / documents
    live: dict[str, int] = {}
    raw: dict[str, int] = {}
    for term in compiled.terms:
        live[term], raw[term] = view.doc_freqs(term)
    expansions = view.expansions(compiled.prefix)
    for term, (n_live, n_raw) in expansions.items():
        live[term], raw[term] = n_live, n_raw
    prefix_terms = set(expansions) | {t for t in delta if t.startswith(compiled.prefix)}
    weights = []
    for term in [*compiled.terms, *sorted(prefix_terms)]:
        df = live.get(term, 0) + delta.get(term, 0)
        if df > 0:
            weights.append((term, idf(documents, df)))
    if not weights:
        return []
    filters = [(path, enc) for _, path, enc in compiled.filters]
    scorer = Bm25Scorer(weights, avg_length)

    def score_of(doc: dict | None) -> float | None:
        doc_tokens = document_tokens(doc, field)
        if doc is None or doc_tokens is None:
            return None
        if filters:
            values = dict(filter_values(doc, compiled.definition.filter_fields))
            if any(values[path] != enc for path, enc in filters):
                return None
        return scorer.score(doc_tokens)

    pool: dict[bytes, tuple[float, dict]] = {}
    for key, doc in changed.reader_version.items():
        score = score_of(doc)
        if score is not None and doc is not None:
            pool[key] = (score, doc)
    bound = _score_bound(view, weights, raw, avg_length)
    native = [t for t, _ in weights if live.get(t, 0) > 0]
    tokens_of_filters = [(i, filter_token(enc)) for i, _, enc in compiled.filters]
    masked = set(changed.index_version)
    fetch = k + len(masked) + 8
    seen: set[bytes] = set()
    while native:
        hits = view.top(native, tokens_of_filters, fetch)
        for _, key in hits:
            if key in masked or key in seen:
                continue
            seen.add(key)
            found = tx.snapshot.get(key)
            if found is None:
                raise IntegrityError(
                    f"Search index {compiled.index_id} holds a document the snapshot lacks"
                )
            score = score_of(found[1])
            if score is not None:
                pool[key] = (score, found[1])
        if len(hits) < fetch:
            break
        best = sorted(pool.values(), key=_rank_key)[:k]
        if len(best) >= k and best[-1][0] > bound * hits[-1][0]:
            break
        fetch *= 4
    return sorted(pool.values(), key=_rank_key)[:k]


def _score_bound(
    view: Any, weights: list[tuple[str, float]], raw: dict[str, int], avg_length: float
) -> float:
    """U: our score of an unchanged document is at most U times tantivy's."""
    with_deleted = view.documents_with_deleted()
    if with_deleted <= 0 or view.tokens <= 0:
        return float("inf")
    ratio = 0.0
    for term, weight in weights:
        n = raw.get(term, 0)
        if n > 0:
            ratio = max(ratio, weight / idf(with_deleted, n))
    lowest_avg = view.tokens / with_deleted  # deleted documents only add tokens
    return ratio * max(1.0, avg_length / lowest_avg) * _F32_SLACK


# --- vector search ---------------------------------------------------------------------------


def parse_vector_filter(definition: VectorIndexDef, expr: Any) -> list[tuple[int, bytes]]:
    """Eq clauses (field position, key encoding) from a filter: ``$eq`` of a filter field
    and a literal, or ``$or`` of those; JSON or a parsed expression; None for no filter."""
    if expr is None:
        return []
    if isinstance(expr, dict):
        expr = parse_expression(expr, path="filter")
    members = list(expr.items) if isinstance(expr, Or) else [expr]
    clauses = []
    for member in members:
        if not (
            isinstance(member, Compare)
            and member.op == "eq"
            and isinstance(member.left, Field)
            and isinstance(member.right, Literal)
        ):
            raise InvalidQueryError(
                "A vector search filter is q.eq(filterField, value) or q.or(...) of those.",
                code="InvalidVectorFilter",
            )
        path = member.left.path
        if path not in definition.filter_fields:
            raise InvalidQueryError(
                f'Vector search filters on "{path}", which is not one of the index\'s '
                f"filterFields {list(definition.filter_fields)}.",
                code="InvalidVectorFilter",
            )
        clauses.append((definition.filter_fields.index(path), encode_value(member.right.value)))
    if len(clauses) > VECTOR_FILTER_CLAUSES_MAX:
        raise LimitExceededError(
            f"Vector search filter has {len(clauses)} clauses; at most "
            f"{VECTOR_FILTER_CLAUSES_MAX} are allowed.",
            code="TooManyVectorFilterClauses",
        )
    return clauses


def _query_vector(definition: VectorIndexDef, vector: Any) -> np.ndarray:
    index_id = f"{definition.table}.{definition.name}"
    if not isinstance(vector, (list, tuple)) or not set(map(type, vector)) <= _NUMBER_TYPES:
        raise InvalidQueryError(
            f'Vector search on "{index_id}" needs a vector: a list of numbers.',
            code="InvalidVector",
        )
    if len(vector) != definition.dimensions:
        raise InvalidQueryError(
            f'Vector search on "{index_id}" got a vector of {len(vector)} dimensions; the index '
            f"has {definition.dimensions}.",
            code="VectorDimensionMismatch",
        )
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        raise InvalidQueryError(
            "A vector search vector must be finite and not all zeros.", code="InvalidVector"
        )
    return (array / norm).astype(np.float32)


def vector_search(
    snapshot: Any,
    table_number: int | None,
    table: str,
    index: str,
    vector: Any,
    limit: int | None,
    filter: Any,
) -> list[tuple[str, float]]:
    """``[(id, cosine similarity)]``, most similar first, exactly at ``snapshot``."""
    index_id = f"{table}.{index}"
    schema_table = snapshot.schema().tables.get(table)
    definition = None
    if schema_table is not None:
        definition = next((d for d in schema_table.vector_indexes if d.name == index), None)
    if definition is None:
        raise _index_not_found(index_id, " (or it is not a vector index)")
    if limit is None:
        limit = VECTOR_RESULTS_DEFAULT
    if type(limit) is not int or not 1 <= limit <= VECTOR_RESULTS_MAX:
        raise InvalidQueryError(
            f"Vector search limit must be an integer from 1 to {VECTOR_RESULTS_MAX}, got "
            f"{limit!r}.",
            code="InvalidVectorLimit",
        )
    query = _query_vector(definition, vector)
    clauses = parse_vector_filter(definition, filter)
    runner = snapshot._runner
    indexes: SearchIndexes = runner.search_indexes
    slot = _ready_slot(indexes, index_id, definition)
    assert isinstance(slot.index, VectorIndex)
    vectors = slot.index
    with vectors._lock:  # pins the checkpoint while the tail is read
        checkpoint = vectors.checkpoint_ts or 0
        changed = _changed(
            runner,
            indexes,
            table_number,
            checkpoint,
            snapshot.ts,
            lambda key: None if (found := snapshot.get(key)) is None else found[1],
            {},
        )
        found = vectors.search(query, limit, clauses, set(changed.index_version))
    fields = definition.filter_fields
    for key, doc in changed.reader_version.items():
        unit = unit_vector(doc, definition.vector_field, definition.dimensions)
        if doc is None or unit is None:
            continue
        if clauses:
            values = [v for _, v in filter_values(doc, fields)]
            if not any(values[i] == v for i, v in clauses):
                continue
        found.append((float(unit @ query), key))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [(id_of_storage_key(key), score) for score, key in found[:limit]]


class VectorFilterBuilder:
    """``lambda q: q.or_(q.eq("genre", "drama"), q.eq("genre", "comedy"))`` for vector search."""

    def eq(self, field: str, value: Any) -> Compare:
        if value is not UNSET:
            check_value(value)
        return Compare("eq", Field(field), Literal(value))

    def or_(self, *clauses: Compare) -> Or:
        return Or(tuple(clauses))
