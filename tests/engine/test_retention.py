"""Retention: reads inside the window are unchanged by compaction; older ones are refused."""

from __future__ import annotations

import itertools

import pytest
from schemas import CHAT_SCHEMA

from engine import Database, SnapshotOutOfRangeError

SECOND = 1_000_000_000


def _clock():
    ticks = itertools.count(1_700_000_000 * SECOND, SECOND)
    return lambda: next(ticks)


def _channel(tx, ch):
    return [
        (m["body"], m.get("likes"))
        for m in tx.query("messages")
        .with_index("by_channel", lambda r: r.eq("channel", ch))
        .collect()
    ]


def test_compaction_keeps_every_read_inside_the_window(tmp_path):
    with Database.open(tmp_path / "d", clock=_clock(), retention_ns=20 * SECOND) as db:
        db.set_schema(CHAT_SCHEMA)
        ids, seen = [], []
        for step in range(40):
            if step % 3 == 0 or not ids:
                ids.append(
                    db.mutate(
                        lambda tx, s=step: tx.insert(
                            "messages", {"channel": "a", "body": f"m{s}", "likes": 0.0}
                        )
                    ).value
                )
            elif step % 3 == 1:
                db.mutate(lambda tx, s=step: tx.patch(ids[-1], {"likes": float(s)}))
            else:
                db.mutate(lambda tx: tx.delete(ids.pop(0)))
            r = db.query(_channel, "a")
            seen.append((r.ts, r.value))
        keep = ids[-1]
        report = db.compact_history()
        assert report is not None and report.document_versions_removed > 0
        assert report.index_versions_removed > 0
        floor = db.first_ts()
        assert floor == report.floor_ts
        for ts, value in seen:
            if ts >= floor:
                assert db.query(_channel, "a", ts=ts).value == value
            else:
                with pytest.raises(SnapshotOutOfRangeError):
                    db.query(_channel, "a", ts=ts)
        assert db.query(lambda tx: tx.get(keep)) is not None
        again = db.compact_history()  # nothing newer to drop: a no-op
        assert again is None or again.document_versions_removed == 0


def test_without_a_window_history_is_kept(tmp_path):
    with Database.open(tmp_path / "d") as db:
        first = db.mutate(lambda tx: tx.insert("t", {"v": 1}))
        db.mutate(lambda tx: tx.patch(first.value, {"v": 2}))
        assert db.compact_history() is None
        assert db.query(lambda tx: tx.get(first.value)["v"], ts=first.ts).value == 1
