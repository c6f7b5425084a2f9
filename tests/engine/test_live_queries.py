"""Subscriptions fire exactly when a commit touches what the query read."""

from __future__ import annotations

from engine import Database


def _channel(tx, ch):
    return [
        m["body"]
        for m in tx.query("messages")
        .with_index("by_channel", lambda r: r.eq("channel", ch))
        .collect()
    ]


def test_commit_outside_read_set_does_not_fire_and_inside_does(chat_db):
    db = chat_db
    db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "one"}))
    changes = []
    sub = db.subscribe(_channel, "a", on_change=changes.append)
    assert sub.result.value == ["one"]

    db.mutate(lambda tx: tx.insert("messages", {"channel": "b", "body": "elsewhere"}))
    db.wait_for_subscriptions()
    assert changes == []

    r = db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "two"}))
    db.wait_for_subscriptions()
    assert [c.value for c in changes] == [["one", "two"]]
    assert changes[0].ts == r.ts
    assert sub.result.value == ["one", "two"]

    sub.close()
    db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "three"}))
    db.wait_for_subscriptions()
    assert len(changes) == 1


def test_on_change_is_called_even_when_the_result_is_unchanged(chat_db):
    db = chat_db
    doc = db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "x"})).value
    changes = []
    db.subscribe(lambda tx: tx.get(doc)["channel"], on_change=changes.append)
    db.mutate(lambda tx: tx.patch(doc, {"likes": 3.0}))
    db.wait_for_subscriptions()
    assert [c.value for c in changes] == ["a"]


def test_a_get_subscription_ignores_other_documents(db):
    a, b = db.mutate(lambda tx: (tx.insert("t", {"v": 1}), tx.insert("t", {"v": 2}))).value
    changes = []
    db.subscribe(lambda tx: tx.get(a)["v"], on_change=changes.append)
    for i in range(5):
        db.mutate(lambda tx, i=i: tx.patch(b, {"v": i}))
    db.wait_for_subscriptions()
    assert changes == []
    db.mutate(lambda tx: tx.patch(a, {"v": 10}))
    db.wait_for_subscriptions()
    assert [c.value for c in changes] == [10]


def test_many_subscribers_only_the_touched_ones_rerun(tmp_path):
    with Database.open(tmp_path / "d") as db:
        ids = db.mutate(lambda tx: [tx.insert("t", {"v": i}) for i in range(50)]).value
        fired: dict[int, int] = {}
        for i, doc_id in enumerate(ids):
            db.subscribe(
                lambda tx, d=doc_id: tx.get(d)["v"],
                on_change=lambda r, i=i: fired.__setitem__(i, fired.get(i, 0) + 1),
            )
        db.mutate(lambda tx: tx.patch(ids[7], {"v": -1}))
        db.wait_for_subscriptions()
        assert fired == {7: 1}


def test_watch_fires_once_for_the_first_touching_commit(chat_db):
    db = chat_db
    doc = db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "x"})).value
    result = db.query(lambda tx: tx.get(doc))
    fired = []
    db.watch(result.read_set, result.ts, fired.append)
    db.mutate(lambda tx: tx.insert("messages", {"channel": "b", "body": "y"}))
    db.wait_for_subscriptions()
    assert fired == []
    r1 = db.mutate(lambda tx: tx.patch(doc, {"body": "z"}))
    db.mutate(lambda tx: tx.patch(doc, {"body": "w"}))
    db.wait_for_subscriptions()
    assert fired == [r1.ts]
    assert db.processed_ts >= r1.ts


def test_watch_registered_late_fires_for_a_commit_already_passed(chat_db):
    db = chat_db
    doc = db.mutate(lambda tx: tx.insert("messages", {"channel": "a", "body": "x"})).value
    result = db.query(lambda tx: tx.get(doc))
    r1 = db.mutate(lambda tx: tx.patch(doc, {"body": "z"}))
    assert db.wait_processed(r1.ts)
    fired = []
    db.watch(result.read_set, result.ts, fired.append)
    assert fired == [r1.ts]
