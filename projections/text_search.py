"""Text search indexes: one tantivy index per search index, applied in batches.

Tokens: the search field's text, lower-cased and split on every character that
is not a letter or a digit, as the reference's tokenizer does; tokens longer
than ``TOKEN_BYTES_MAX`` UTF-8 bytes are dropped. Tokens are handed to tantivy
already split (joined by spaces, whitespace tokenizer), so tantivy and Python
always agree on them.

Score (the relevance order; ``engine.search`` applies it to every document the
same way, whether it comes from tantivy or from the log tail): BM25 with
``K1``/``B`` over the search field, where the corpus statistics (number of
indexed documents, average token count, document frequency of each term) are
those of the documents visible at the snapshot being read. The query's exact
terms each count once; the last term, a prefix, counts as every indexed term
that starts with it. Ties go to the newer document, then the smaller id.

Folder layout (``<data>/search/<table>.<index>/``): the tantivy files and
``checkpoint.json``, written (atomically, after the tantivy commit) with the
ts of the last entry applied, the index definition, and the number of indexed
documents and tokens at that ts. Applying is idempotent (delete by id, then
add), so a crash between the tantivy commit and the checkpoint only replays.

tantivy fields: ``body`` (tokens, with frequencies), ``key`` (the document's
internal id, hex, for deletes), ``id_hi``/``id_lo`` (the same id as two fast
u64, to map hits back without reading stored fields), ``present`` (one
constant term: its document frequency counts deleted-but-unmerged documents,
which tantivy's own scoring includes), ``f0``.. (one per filter field: a hash
of the value's key encoding; hits are re-checked exactly).

Caveats: tantivy scores with its own statistics (deleted documents included);
``engine.search`` only uses its order to pick candidates, with a proven bound,
and rescores them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import tantivy

from engine.errors import IntegrityError
from engine.key_encoding import encode_value
from engine.read_set import SearchKey
from engine.schema import SearchIndexDef
from engine.values import get_field

TOKEN_BYTES_MAX = 32
K1 = 1.2
B = 0.75
CHECKPOINT_FILE = "checkpoint.json"
_FORMAT = 1
_WRITER_HEAP_BYTES = 32_000_000
_TOKEN = re.compile(r"[^\W_]+")
_ALL = "1"


# --- tokens, filter values, scores (pure) --------------------------------------


def split_words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits, long ones included (for query checks)."""
    return _TOKEN.findall(text.lower())


def tokenize(text: str) -> list[str]:
    """The tokens a document's text is indexed under."""
    words = split_words(text)
    if not words or max(map(len, words)) * 4 <= TOKEN_BYTES_MAX:
        return words  # no character is over 4 UTF-8 bytes: nothing to drop
    return [t for t in words if len(t.encode()) <= TOKEN_BYTES_MAX]


def document_tokens(doc: dict | None, field_path: str) -> list[str] | None:
    """The tokens of ``doc``'s search field; None when the field is not a string."""
    if doc is None:
        return None
    text = get_field(doc, field_path)
    return tokenize(text) if isinstance(text, str) else None


def filter_values(doc: dict, fields: Sequence[str]) -> tuple[tuple[str, bytes], ...]:
    """(field path, key encoding) of every filter field; a missing field is ``undefined``."""
    return tuple((path, encode_value(get_field(doc, path))) for path in fields)


def filter_token(encoded: bytes) -> str:
    """The tantivy term for a filter value: a hash, so long values stay small terms."""
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def index_id_of(definition: SearchIndexDef) -> str:
    return f"{definition.table}.{definition.name}"


def search_keys_of(
    definition: SearchIndexDef, old: dict | None, new: dict | None
) -> list[SearchKey]:
    """The versions a write shows this index (old and new), for OCC and live queries."""
    keys = []
    for doc in (old, new):
        tokens = document_tokens(doc, definition.search_field)
        if doc is not None and tokens is not None:
            keys.append(
                SearchKey(
                    index_id_of(definition),
                    frozenset(tokens),
                    filter_values(doc, definition.filter_fields),
                )
            )
    return keys


def idf(documents: int, doc_freq: int) -> float:
    return math.log(1.0 + (documents - doc_freq + 0.5) / (doc_freq + 0.5))


def bm25(
    weights: Sequence[tuple[str, float]], counts: Counter[str], length: int, avg_length: float
) -> float:
    """Σ idf·(K1+1)·tf / (tf + K1·(1 − B + B·length/avg)) over ``weights`` in order."""
    norm = K1 * (1.0 - B + B * length / avg_length) if avg_length > 0 else K1 * (1.0 - B)
    score = 0.0
    for term, weight in weights:
        tf = counts.get(term, 0)
        if tf:
            score += weight * (K1 + 1.0) * tf / (tf + norm)
    return score


class Bm25Scorer:
    """``bm25`` of one query for many documents: the same terms summed in the same
    order, found by looking the document's tokens up in the weights (a prefix may
    expand to thousands of terms; a document has a few dozen tokens)."""

    __slots__ = ("_weights", "_avg_length")

    def __init__(self, weights: Sequence[tuple[str, float]], avg_length: float) -> None:
        # term -> its (position, weight) entries: an exact term may also be a prefix's
        self._weights: dict[str, list[tuple[int, float]]] = {}
        for position, (term, weight) in enumerate(weights):
            self._weights.setdefault(term, []).append((position, weight))
        self._avg_length = avg_length

    def score(self, tokens: list[str]) -> float | None:
        """The document's score; None when it holds none of the weighted terms."""
        found = self._weights.keys() & tokens
        if not found:
            return None
        length, avg = len(tokens), self._avg_length
        norm = K1 * (1.0 - B + B * length / avg) if avg > 0 else K1 * (1.0 - B)
        terms = [(p, w, tokens.count(t)) for t in found for p, w in self._weights[t]]
        if len(terms) > 1:
            terms.sort()
        score = 0.0
        for _, weight, tf in terms:
            score += weight * (K1 + 1.0) * tf / (tf + norm)
        return score


# --- the tantivy index -------------------------------------------------------------


def _schema(filter_count: int) -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("present", tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("id_hi", fast=True)
    builder.add_unsigned_field("id_lo", fast=True)
    for i in range(filter_count):
        builder.add_text_field(f"f{i}", tokenizer_name="raw", index_option="basic")
    return builder.build()


def definition_json(definition: SearchIndexDef) -> dict[str, Any]:
    return {
        "table": definition.table,
        "name": definition.name,
        "searchField": definition.search_field,
        "filterFields": list(definition.filter_fields),
    }


def write_json_atomically(path: str, payload: dict[str, Any]) -> None:
    """Write, fsync, rename, fsync the folder: the file is either old or new after a crash."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class TextView:
    """The index as of one tantivy commit: its searcher, checkpoint ts and statistics."""

    searcher: Any
    schema: Any
    checkpoint_ts: int
    documents: int  # indexed documents (search field is a string) at the checkpoint
    tokens: int  # their tokens in total
    table_prefix: bytes | None  # the storage-key prefix of the table, once a document was seen
    filter_fields: tuple[str, ...]
    # whether the searcher still holds deleted documents (until tantivy merges them
    # away); without any, a term's frequency is its live frequency
    holds_deleted: bool

    def doc_freqs(self, term: str) -> tuple[int, int]:
        """An exact term's (live doc freq, doc freq with deleted), as ``expansions``."""
        with_deleted = int(self.searcher.doc_freq("body", term))
        if not self.holds_deleted:
            return with_deleted, with_deleted
        found = self.searcher.search(tantivy.Query.term_query(self.schema, "body", term), 1)
        return int(found.count), with_deleted

    def documents_with_deleted(self) -> int:
        return int(self.searcher.doc_freq("present", _ALL))

    def expansions(self, prefix: str) -> dict[str, tuple[int, int]]:
        """Indexed terms starting with ``prefix``: (live doc freq, doc freq with deleted)."""
        if not self.holds_deleted:
            return {t: (n, n) for t, n in self.searcher.terms_with_prefix("body", prefix) if n > 0}
        live = dict(
            self.searcher.terms_with_prefix("body", prefix, filter_query=tantivy.Query.all_query())
        )
        raw = dict(self.searcher.terms_with_prefix("body", prefix))
        return {t: (n, raw.get(t, n)) for t, n in live.items() if n > 0}

    def top(
        self, terms: Sequence[str], filters: Sequence[tuple[int, str]], n: int
    ) -> list[tuple[float, bytes]]:
        """The ``n`` best hits by tantivy's own score: (score, storage key)."""
        if not terms or self.table_prefix is None or n <= 0:
            return []
        schema = self.schema
        should = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms
        ]
        clauses = [(tantivy.Occur.Must, tantivy.Query.boolean_query(should))]
        for i, token in filters:
            exact = tantivy.Query.term_query(schema, f"f{i}", token)
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(exact, 0.0)))
        hits = self.searcher.search(tantivy.Query.boolean_query(clauses), n).hits
        if not hits:
            return []
        addresses = [address for _, address in hits]
        his = self.searcher.fast_field_values("id_hi", addresses)
        los = self.searcher.fast_field_values("id_lo", addresses)
        prefix = self.table_prefix
        return [
            (float(score), prefix + hi.to_bytes(8, "big") + lo.to_bytes(8, "big"))
            for (score, _), hi, lo in zip(hits, his, los, strict=True)
        ]


class TextIndex:
    """One search index's tantivy folder: staged changes, commits, the current view."""

    def __init__(self, folder: str, definition: SearchIndexDef, *, writable: bool = True) -> None:
        """``writable=False``: only read what the folder's writer committed (no tantivy
        writer, whose lock the writer process holds)."""
        self.folder = folder
        self.definition = definition
        self.filter_fields = definition.filter_fields
        self._schema = _schema(len(definition.filter_fields))
        self._lock = threading.Lock()
        state = self._read_checkpoint()
        if not writable and state is None:
            raise FileNotFoundError(f"Search index {folder} has no checkpoint to read yet.")
        if writable:
            os.makedirs(folder, exist_ok=True)
            if state is None:
                self._wipe_files()
        self._index = tantivy.Index(self._schema, path=folder)
        self._writer: Any = self._index.writer(_WRITER_HEAP_BYTES, 1) if writable else None
        self.checkpoint_ts: int | None = None if state is None else state["ts"]
        self._documents = 0 if state is None else int(state["documents"])
        self._tokens = 0 if state is None else int(state["tokens"])
        prefix = None if state is None else state.get("tablePrefix")
        self._table_prefix: bytes | None = None if prefix is None else bytes.fromhex(prefix)
        self._staged = 0
        self._view: TextView | None = None
        if self.checkpoint_ts is not None:
            self._publish(self.checkpoint_ts)

    # -- writing (the indexer thread) ---------------------------------------------------

    def reset(self) -> None:
        """Drop everything (a backfill follows)."""
        self._writer.delete_all_documents()
        self._documents = self._tokens = 0
        self._staged += 1  # the next commit must reach tantivy and the checkpoint file

    def stage(self, skey: bytes, old: dict | None, new: dict | None) -> None:
        """Replace the document ``skey`` (old version ``old``) by ``new`` (None: delete)."""
        field = self.definition.search_field
        old_tokens = document_tokens(old, field)
        if old_tokens is not None:
            self._documents -= 1
            self._tokens -= len(old_tokens)
        self._writer.delete_documents_by_term("key", skey[4:].hex())
        self._staged += 1
        new_tokens = document_tokens(new, field)
        if new is None or new_tokens is None:
            return
        if self._table_prefix is None:
            self._table_prefix = skey[:4]
        doc = tantivy.Document()
        doc.add_text("body", " ".join(new_tokens))
        doc.add_text("key", skey[4:].hex())
        doc.add_text("present", _ALL)
        doc.add_unsigned("id_hi", int.from_bytes(skey[4:12], "big"))
        doc.add_unsigned("id_lo", int.from_bytes(skey[12:20], "big"))
        for i, (_, encoded) in enumerate(filter_values(new, self.filter_fields)):
            doc.add_text(f"f{i}", filter_token(encoded))
        self._writer.add_document(doc)
        self._documents += 1
        self._tokens += len(new_tokens)

    @property
    def staged(self) -> int:
        return self._staged

    def commit(self, ts: int) -> None:
        """Make everything staged durable and searchable, then move the checkpoint to ``ts``.

        With nothing staged the index is already the state at ``ts``: only the
        in-memory checkpoint moves (the file's may lag; recovery replays more).
        """
        if self._staged == 0 and self._view is not None:
            self.checkpoint_ts = ts
            with self._lock:
                self._view = replace(self._view, checkpoint_ts=ts)
            return
        self._writer.commit()
        self._staged = 0
        payload = {
            "format": _FORMAT,
            "ts": ts,
            "definition": definition_json(self.definition),
            "documents": self._documents,
            "tokens": self._tokens,
            "tablePrefix": None if self._table_prefix is None else self._table_prefix.hex(),
        }
        write_json_atomically(os.path.join(self.folder, CHECKPOINT_FILE), payload)
        self.checkpoint_ts = ts
        self._publish(ts)

    def _publish(self, ts: int) -> None:
        self._index.reload()
        searcher = self._index.searcher()
        view = TextView(
            searcher,
            self._schema,
            ts,
            self._documents,
            self._tokens,
            self._table_prefix,
            self.filter_fields,
            holds_deleted=searcher.num_docs < searcher.doc_freq("present", _ALL),
        )
        with self._lock:
            self._view = view

    # -- reading (any thread) -------------------------------------------------------------

    def view(self) -> TextView | None:
        with self._lock:
            return self._view

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.rollback()
            except ValueError:
                pass
        self._writer = None
        self._index = None

    def statistics(self) -> dict[str, int | None]:
        return {
            "documents": self._documents,
            "tokens": self._tokens,
            "checkpoint_ts": self.checkpoint_ts,
        }

    # -- internals --------------------------------------------------------------------------

    def _read_checkpoint(self) -> dict[str, Any] | None:
        path = os.path.join(self.folder, CHECKPOINT_FILE)
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise IntegrityError(f"Search index checkpoint {path} is damaged: {exc}") from None
        if state.get("format") != _FORMAT or state.get("definition") != definition_json(
            self.definition
        ):
            return None
        return state

    def _wipe_files(self) -> None:
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def counts_of(tokens: Iterable[str]) -> Counter[str]:
    return Counter(tokens)
