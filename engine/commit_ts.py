"""The commit timestamp placeholder (``ctx.db.vars.commitTs``) of mutations.

A mutation may write a placeholder for its own commit timestamp, which is not
known until the committer orders it. On the wire (syscall JSON) it is
``{"$commitTs": null}``; in engine values it is the ``COMMIT_TS`` sentinel.

While the transaction runs, a staged document holds ``MAX_COMMIT_TS`` (Int64
max) where a placeholder was written, as Convex's pre-commit view does: schema
validation sees an Int64 and an index on the field orders the document after
every committed one. The transaction remembers where the placeholders are
(``PendingCommitTs``), so its own reads hand them back as placeholders, and the
committer swaps each for the entry's ts (``resolve_writes``) before the log
entry is written: the log, and every projection fed from it, only ever holds
the final Int64.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import InvalidValueError
from log.entry import Write

COMMIT_TS_KEY = "$commitTs"
MAX_COMMIT_TS = 2**63 - 1
# Convex's words for a placeholder with a body (crates/value/src/pending.rs).
NOT_NULL = "$commitTs value must be null"
_MAX_JSON = {"$integer": base64.b64encode(struct.pack("<q", MAX_COMMIT_TS)).decode()}

Path = tuple[Any, ...]  # field names and array indexes from the document's top


class _CommitTs:
    """The placeholder in engine values: one instance, compared by identity."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "COMMIT_TS"


COMMIT_TS = _CommitTs()


def is_placeholder_json(obj: Any) -> bool:
    return type(obj) is dict and len(obj) == 1 and COMMIT_TS_KEY in obj


def from_uncommitted_json(obj: Any, *, path: str = "", allow_undefined: bool = False) -> Any:
    """Like ``from_convex_json``, also accepting ``{"$commitTs": null}`` at any depth
    (not inside another ``$`` encoding), which becomes ``COMMIT_TS``. For document
    writes in a mutation only: everywhere else the token stays refused."""
    found: list[Path] = []
    stand_in = _stand_in(obj, (), found)
    value = from_convex_json(stand_in, path=path, allow_undefined=allow_undefined)
    for at in found:
        value = _set_at(value, at, COMMIT_TS)
    return value


def _stand_in(obj: Any, at: Path, found: list[Path]) -> Any:
    """``obj`` with each placeholder as an Int64 (which decodes like any value), its path noted."""
    if type(obj) is dict:
        if len(obj) == 1:
            ((key, body),) = obj.items()
            if key == COMMIT_TS_KEY:
                if body is not None:
                    raise InvalidValueError(NOT_NULL)
                found.append(at)
                return _MAX_JSON
            if type(key) is str and key.startswith("$"):
                return obj  # another encoding: decoded whole, a placeholder in it refused
        return {key: _stand_in(item, (*at, key), found) for key, item in obj.items()}
    if type(obj) is list:
        return [_stand_in(item, (*at, i), found) for i, item in enumerate(obj)]
    return obj


def _get_at(value: Any, at: Path) -> Any:
    for step in at:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _set_at(value: Any, at: Path, new: Any) -> Any:
    if not at:
        return new
    value[at[0]] = _set_at(value[at[0]], at[1:], new)
    return value


def _placeholders(value: Any, at: Path, found: list[Path], ts: int = MAX_COMMIT_TS) -> Any:
    """``value`` with each ``COMMIT_TS`` as ``ts`` (new containers only where one was
    found), its path noted."""
    if value is COMMIT_TS:
        found.append(at)
        return ts
    if type(value) is dict:
        out = None
        for key, item in value.items():
            new = _placeholders(item, (*at, key), found, ts)
            if new is not item:
                out = dict(value) if out is None else out
                out[key] = new
        return value if out is None else out
    if type(value) is list:
        items = [_placeholders(item, (*at, i), found, ts) for i, item in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def index_range_stand_ins(query: Any) -> Any:
    """Query JSON with each placeholder in an index range value as ``MAX_COMMIT_TS``, as
    Convex reads it (crates/common/src/json/query.rs): ``q.eq(field, db.vars.commitTs)``
    matches the documents this mutation wrote with the placeholder there."""
    source = query.get("source") if type(query) is dict else None
    if type(source) is not dict or type(source.get("range")) is not list:
        return query
    ranges = [
        {**item, "value": _stand_in(item["value"], (), [])}
        if type(item) is dict and "value" in item
        else item
        for item in source["range"]
    ]
    return {**query, "source": {**source, "range": ranges}}


def max_view(value: Any) -> Any:
    """``value`` as validators and size limits see it: each placeholder an Int64 max."""
    return _placeholders(value, (), [])


def resolve_value(value: Any, commit_ts: int) -> Any:
    """``value`` with each placeholder as ``commit_ts``: a mutation's result once committed."""
    return _placeholders(value, (), [], commit_ts)


def uncommitted_json(value: Any) -> Any:
    """Convex JSON of ``value``, ``{"$commitTs": null}`` at each placeholder."""
    found: list[Path] = []
    view = _placeholders(value, (), found)
    return to_uncommitted_json(view, found) if found else to_convex_json(value)


def loads_result(text: str, placeholders_allowed: bool) -> Any:
    """A function's result text: a mutation's may hold placeholders (Convex resolves
    them once it commits); any other's is plain Convex JSON."""
    obj = json.loads(text)
    if placeholders_allowed and COMMIT_TS_KEY in text:
        return from_uncommitted_json(obj)
    return from_convex_json(obj)


class PendingCommitTs:
    """Where a transaction's staged documents hold their commit ts placeholders."""

    def __init__(self, paths: Mapping[str, frozenset[Path]] | None = None) -> None:
        self._paths: dict[str, frozenset[Path]] = dict(paths or {})

    def view(self, doc_id: str, doc: dict, kept_fields: Collection[str] = ()) -> tuple[dict, Any]:
        """The pre-commit view of ``doc`` about to be staged and where its placeholders
        are, the earlier ones under ``kept_fields`` (fields a patch left alone) included.
        ``record`` them once the write is staged."""
        found: list[Path] = []
        view = _placeholders(doc, (), found)
        earlier = self._paths.get(doc_id, frozenset())
        return view, frozenset(found) | {p for p in earlier if p[0] in kept_fields}

    def record(self, doc_id: str, paths: frozenset[Path]) -> None:
        if paths:
            self._paths[doc_id] = paths
        else:
            self._paths.pop(doc_id, None)

    def drop(self, doc_id: str) -> None:
        self._paths.pop(doc_id, None)

    def paths_of(self, doc_id: str) -> frozenset[Path]:
        return self._paths.get(doc_id, frozenset())

    def copy(self) -> PendingCommitTs:
        return PendingCommitTs(self._paths)

    def frozen(self) -> Mapping[str, frozenset[Path]]:
        return dict(self._paths)


def to_uncommitted_json(doc: dict, paths: Collection[Path]) -> Any:
    """Convex JSON of a staged document, ``{"$commitTs": null}`` at its placeholders:
    what the mutation that wrote it reads back."""
    out = to_convex_json(doc)
    for at in paths:
        out = _set_at(out, at, {COMMIT_TS_KEY: None})
    return out


def resolve_writes(
    writes: Sequence[Write], paths: Mapping[str, frozenset[Path]], commit_ts: int
) -> tuple[Write, ...]:
    """``writes`` with every placeholder replaced by ``commit_ts`` (an Int64)."""
    if not paths:
        return tuple(writes)
    out = []
    for write in writes:
        at_paths = paths.get(write.id)
        if at_paths and write.value is not None:
            value = _copy_along(write.value, at_paths)
            for at in at_paths:
                if _get_at(value, at) == MAX_COMMIT_TS:
                    value = _set_at(value, at, commit_ts)
            write = Write(write.id, write.table, write.prev_ts, value)
        out.append(write)
    return tuple(out)


def _copy_along(value: Any, paths: Collection[Path]) -> Any:
    """A copy of the containers on ``paths`` (the staged document stays as it was)."""
    if not paths or not isinstance(value, dict | list):
        return value
    copied = dict(value) if type(value) is dict else list(value)
    heads: dict[Any, list[Path]] = {}
    for at in paths:
        if at:
            heads.setdefault(at[0], []).append(at[1:])
    for head, rest in heads.items():
        copied[head] = _copy_along(copied[head], [p for p in rest if p])
    return copied
