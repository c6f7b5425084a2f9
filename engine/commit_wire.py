"""A ``PendingCommit`` as bytes, so a follower node can hand its commit to the leader.

In a cluster (``engine.cluster``) only the lease holder orders commits; any
other node runs the transaction locally and sends the leader exactly what its
own committer would have validated: the snapshot ts, the read set and the
writes. The leader validates it against its write log, which holds every
node's commits, so OCC stays serializable across nodes.

Layout: a JSON object (UTF-8)::

    {"v": 1, "snapshot_ts": int,
     "writes": base64 of log.codec.encode_entry(LogEntry(TS_MAX, writes)),
     "indexes": [[index_id, [[lo_b64, hi_b64 | null], ...]], ...],
     "searches": [[index_id, [term, ...], prefix | null, [[path, value_b64], ...]], ...],
     "commit_ts_paths": {document_id: [[field or array index, ...], ...]},
     "receipt": base64 | null}

The writes reuse the log's entry codec (checked, checksummed) under the
largest ts, so every ``prev_ts`` is below it; the leader re-checks the read
set's shape when it rebuilds it. Bytes that do not decode raise
``BadCommitPayloadError``: they come from another process and are never trusted.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from engine.errors import HeadwaterError, IntegrityError
from engine.pending_commit import PendingCommit
from engine.read_set import Interval, ReadSet, SearchRead
from log.codec import decode_entry, encode_entry
from log.entry import TS_MAX, LogEntry

WIRE_VERSION = 1


class BadCommitPayloadError(HeadwaterError):
    """A forwarded commit that does not decode (a version mismatch or damage)."""

    code = "BadCommitPayload"


def encode_pending(pending: PendingCommit) -> bytes:
    read_set = pending.read_set
    payload = {
        "v": WIRE_VERSION,
        "snapshot_ts": pending.snapshot_ts,
        "writes": _b64(encode_entry(LogEntry(TS_MAX, tuple(pending.writes)))),
        "indexes": [
            [index_id, [[_b64(i.lo), None if i.hi is None else _b64(i.hi)] for i in intervals]]
            for index_id, intervals in read_set.indexes
        ],
        "searches": [
            [s.index_id, list(s.terms), s.prefix, [[path, _b64(v)] for path, v in s.filters]]
            for s in read_set.searches
        ],
        "commit_ts_paths": {
            doc_id: [list(path) for path in sorted(paths, key=repr)]
            for doc_id, paths in dict(pending.commit_ts_paths).items()
        },
        "receipt": None if pending.receipt is None else _b64(pending.receipt),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def decode_pending(data: bytes) -> PendingCommit:
    try:
        payload = json.loads(data)
        if payload.get("v") != WIRE_VERSION:
            raise BadCommitPayloadError(
                f"Forwarded commit of wire version {payload.get('v')!r}; this node speaks "
                f"{WIRE_VERSION}: run the same Headwater version on every node"
            )
        snapshot_ts = payload["snapshot_ts"]
        if type(snapshot_ts) is not int or snapshot_ts < 0:
            raise BadCommitPayloadError(f"Forwarded commit: bad snapshot ts {snapshot_ts!r}")
        writes = decode_entry(base64.b64decode(payload["writes"], validate=True)).writes
        indexes = tuple(
            (
                index_id,
                tuple(
                    Interval(_unb64(lo), None if hi is None else _unb64(hi)) for lo, hi in intervals
                ),
            )
            for index_id, intervals in payload["indexes"]
        )
        searches = tuple(
            SearchRead(
                index_id,
                tuple(terms),
                prefix,
                tuple((path, _unb64(value)) for path, value in filters),
            )
            for index_id, terms, prefix, filters in payload["searches"]
        )
        paths = {
            doc_id: frozenset(tuple(path) for path in doc_paths)
            for doc_id, doc_paths in payload["commit_ts_paths"].items()
        }
        receipt = payload.get("receipt")
        return PendingCommit(
            snapshot_ts,
            ReadSet(indexes, searches),
            writes,
            paths,
            None if receipt is None else _unb64(receipt),
        )
    except BadCommitPayloadError:
        raise
    except (HeadwaterError, IntegrityError, ValueError, KeyError, TypeError) as exc:
        raise BadCommitPayloadError(f"Forwarded commit does not decode: {exc}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if type(text) is not str:
        raise BadCommitPayloadError(f"Forwarded commit: expected base64 text, got {text!r}")
    return base64.b64decode(text, validate=True)
