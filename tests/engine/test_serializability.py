"""Serializable OCC: concurrent read-modify-write transfers keep the invariant, and
the committed history, replayed one transaction at a time in ts order, explains
every value each transaction read."""

from __future__ import annotations

import random
import threading

from engine import Database, TooManyConflictsError

ACCOUNTS = 6
START_BALANCE = 100
THREADS = 8
TRANSFERS_PER_THREAD = 25


def test_concurrent_transfers_are_serializable(tmp_path):
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    with Database.open(tmp_path / "bank") as db:
        ids = db.mutate(
            lambda tx: [
                tx.insert("accounts", {"n": i, "balance": START_BALANCE}) for i in range(ACCOUNTS)
            ]
        ).value
        history: list[tuple[int, int, int, int, int, int]] = []
        lock = threading.Lock()

        def transfer(tx, src, dst, amount):
            a, b = tx.get(ids[src]), tx.get(ids[dst])
            moved = min(amount, a["balance"])
            tx.patch(ids[src], {"balance": a["balance"] - moved})
            tx.patch(ids[dst], {"balance": b["balance"] + moved})
            return a["balance"], b["balance"], moved

        def worker(k):
            rng = random.Random(seed + k)
            for _ in range(TRANSFERS_PER_THREAD):
                src, dst = rng.sample(range(ACCOUNTS), 2)
                try:
                    r = db.mutate(transfer, src, dst, rng.randint(1, 40))
                except TooManyConflictsError:
                    continue
                seen_src, seen_dst, moved = r.value
                with lock:
                    history.append((r.ts, src, dst, seen_src, seen_dst, moved))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        final = db.query(lambda tx: [tx.get(i)["balance"] for i in ids]).value
        assert sum(final) == ACCOUNTS * START_BALANCE
        assert len(history) > THREADS * TRANSFERS_PER_THREAD // 2

        # Replay serially in commit order: every read must match the serial state.
        balances = [START_BALANCE] * ACCOUNTS
        timestamps = [h[0] for h in sorted(history)]
        assert len(set(timestamps)) == len(timestamps)
        for _, src, dst, seen_src, seen_dst, moved in sorted(history):
            assert (balances[src], balances[dst]) == (seen_src, seen_dst)
            balances[src] -= moved
            balances[dst] += moved
        assert balances == final
        assert db.statistics()["committer"]["conflicts"] > 0


def test_a_write_outside_the_read_set_does_not_conflict(tmp_path):
    with Database.open(tmp_path / "d") as db:
        a, b = db.mutate(lambda tx: (tx.insert("t", {"v": 1}), tx.insert("t", {"v": 2}))).value
        tx1 = db.begin(writable=True)
        tx1.patch(a, {"v": tx1.get(a)["v"] + 1})
        db.mutate(lambda tx: tx.patch(b, {"v": 20}))  # commits first, touches only b
        db.commit(tx1)  # no ConflictError
        assert db.query(lambda tx: tx.get(a)["v"]).value == 2


def test_a_write_inside_the_read_set_conflicts(tmp_path):
    import pytest

    from engine import ConflictError

    with Database.open(tmp_path / "d") as db:
        a = db.mutate(lambda tx: tx.insert("t", {"v": 1})).value
        tx1 = db.begin(writable=True)
        assert len(tx1.query("t").collect()) == 1  # reads the whole table
        tx1.insert("t", {"v": 3})
        db.mutate(lambda tx: tx.insert("t", {"v": 2}))  # a phantom inside tx1's range
        with pytest.raises(ConflictError):
            db.commit(tx1)
        assert db.query(lambda tx: len(tx.query("t").collect())).value == 2
        del a
