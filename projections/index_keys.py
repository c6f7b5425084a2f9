"""The index keys a write removes and adds, computed once per document version.

Maintaining the B-tree for a write needs the keys of the document's previous
version (to retire them) and of its new version. Recomputing the old keys means
reading the old version back from LMDB, decoding it and encoding its fields
again, though the same keys were computed when that version was written. A
bounded memory of the keys of recently written versions, keyed by (storage key,
ts), answers most of those lookups: a document patched again soon (in a replay,
nearly always within the same batch) costs no read and no encoding for its old
version. A version is superseded at most once, so a hit is forgotten.

The memory is only valid with the schema it was computed under and for writes
that were committed: its owner clears it when either changes (a schema change, an
aborted LMDB transaction).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from engine.key_encoding import encode_value
from engine.schema import IndexDef
from engine.values import UNSET

# Versions remembered; each holds a few short byte strings (about 100 bytes a key).
RECENT_VERSIONS_MAX = 50_000


class IndexPlan:
    """For one table: its indexes' ids, key prefixes and fields, in a fixed order.

    Every index ends with ``_id`` and most share fields, so ``keys_of`` encodes
    each distinct field of a document once and joins the encodings per index:
    the same bytes as ``engine.index_range.index_key`` for each index.
    """

    __slots__ = ("ids", "prefixes", "_paths", "_layouts")
    _paths: tuple[str | tuple[str, ...], ...]

    def __init__(self, indexes: Sequence[IndexDef], id_of: Any, prefix_of: Any) -> None:
        self.ids = tuple(id_of(i.table, i.name) for i in indexes)
        self.prefixes = tuple(prefix_of(iid) for iid in self.ids)
        distinct: list[str] = []
        for index in indexes:
            distinct.extend(f for f in index.fields if f not in distinct)
        # A top-level field is looked up directly; a dotted one walks its parts.
        self._paths = tuple(f if "." not in f else tuple(f.split(".")) for f in distinct)
        self._layouts = tuple(tuple(distinct.index(f) for f in i.fields) for i in indexes)

    def keys_of(self, doc: dict) -> tuple[bytes, ...]:
        encoded = [
            encode_value(doc.get(p, UNSET) if type(p) is str else _field(doc, p))
            for p in self._paths
        ]
        return tuple([b"".join([encoded[n] for n in layout]) for layout in self._layouts])


def _field(doc: Any, parts: tuple[str, ...]) -> Any:
    """``engine.values.get_field`` with the path split beforehand."""
    current = doc
    for part in parts:
        if type(current) is not dict:
            return UNSET
        current = current.get(part, UNSET)
    return current


class RecentVersionKeys:
    """(storage key, ts) -> the index keys of that document version, bounded."""

    def __init__(self, capacity: int = RECENT_VERSIONS_MAX) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[tuple[bytes, int], tuple[bytes, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def remember(self, skey: bytes, ts: int, keys: tuple[bytes, ...]) -> None:
        self._keys[(skey, ts)] = keys
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def take(self, skey: bytes, ts: int) -> tuple[bytes, ...] | None:
        """The remembered keys of a version that is being superseded (then forgotten)."""
        found = self._keys.pop((skey, ts), None)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def clear(self) -> None:
        self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)
