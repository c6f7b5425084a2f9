"""Point-in-time reads: a value read at ts T stays the same for ever (also across restarts)."""

from __future__ import annotations

import random

from engine import Database


def _channel(tx, ch):
    return [
        (m["body"], m.get("likes"))
        for m in tx.query("messages")
        .with_index("by_channel", lambda r: r.eq("channel", ch))
        .collect()
    ]


def test_reads_at_past_timestamps_never_change(tmp_path):
    from schemas import CHAT_SCHEMA

    rng = random.Random(7)
    snapshots: list[tuple[int, object, object]] = []
    with Database.open(tmp_path / "d") as db:
        db.set_schema(CHAT_SCHEMA)
        ids: list[str] = []
        for step in range(60):
            op = rng.random()
            if op < 0.5 or not ids:
                ids.append(
                    db.mutate(
                        lambda tx, s=step: tx.insert(
                            "messages", {"channel": rng.choice("ab"), "body": f"m{s}", "likes": 0.0}
                        )
                    ).value
                )
            elif op < 0.8:
                target = rng.choice(ids)
                db.mutate(lambda tx, t=target, s=step: tx.patch(t, {"likes": float(s)}))
            else:
                target = ids.pop(rng.randrange(len(ids)))
                db.mutate(lambda tx, t=target: tx.delete(t))
            now = db.query(_channel, "a")
            snap_all = db.query(lambda tx: sorted(d["_id"] for d in tx.query("messages").collect()))
            snapshots.append((now.ts, now.value, snap_all.value))
        for ts, value, everything in snapshots:
            assert db.query(_channel, "a", ts=ts).value == value
            assert (
                db.query(
                    lambda tx: sorted(d["_id"] for d in tx.query("messages").collect()), ts=ts
                ).value
                == everything
            )
            # Descending order over history agrees too.
            desc = db.query(
                lambda tx: [
                    m["body"]
                    for m in tx.query("messages")
                    .with_index("by_channel", lambda r: r.eq("channel", "a"))
                    .order("desc")
                    .collect()
                ],
                ts=ts,
            ).value
            assert desc == [b for b, _ in reversed(value)]
    with Database.open(tmp_path / "d") as db:
        for ts, value, _ in snapshots:
            assert db.query(_channel, "a", ts=ts).value == value


def test_any_timestamp_between_commits_sees_the_commits_before_it(tmp_path):
    with Database.open(tmp_path / "d") as db:
        first = db.mutate(lambda tx: tx.insert("t", {"v": 1}))
        second = db.mutate(lambda tx: tx.patch(first.value, {"v": 2}))
        between = (first.ts + second.ts) // 2
        assert first.ts < between < second.ts
        assert db.query(lambda tx: tx.get(first.value)["v"], ts=between).value == 1
        assert db.query(lambda tx: tx.get(first.value)["v"], ts=second.ts).value == 2
        assert db.query(lambda tx: tx.get(first.value), ts=first.ts - 1).value is None


def test_paginating_at_a_past_timestamp_returns_each_document_once(tmp_path):
    with Database.open(tmp_path / "d") as db:
        ids = db.mutate(lambda tx: [tx.insert("t", {"i": i}) for i in range(7)]).value
        then = db.latest_ts()
        db.mutate(lambda tx: tx.insert("t", {"i": 99}))
        for order in ("asc", "desc"):
            seen, cursor = [], None
            while True:
                page = db.query(
                    lambda tx, c=cursor, o=order: tx.query("t").order(o).paginate(c, 2), ts=then
                ).value
                seen.extend(d["_id"] for d in page.page)
                cursor = page.continue_cursor
                if page.is_done:
                    break
            assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
