"""OCC as a property: for any interleaving of transactions that read and write a few
documents, the transactions the committer accepts are serializable in commit-ts
order — replaying them one at a time in that order reproduces every value each
one read and the final state — and the rule holds in both directions: a
transaction with writes is refused exactly when a commit after its snapshot wrote
a document it read (``patch`` reads the document it patches), and commits when
the commits it overlapped in time touched only other documents."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine import ConflictError, Database

KEYS = 3

# One step: (transaction number, action, key). Actions: read, write, commit.
steps = st.lists(
    st.tuples(
        st.integers(0, 1), st.sampled_from(["read", "write", "commit"]), st.integers(0, KEYS - 1)
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=steps)
# The classic lost update: both read key 0, one commits a write, the other writes after.
@example(
    script=[(0, "read", 0), (1, "read", 0), (1, "write", 0), (1, "commit", 0), (0, "write", 1)]
)
# Overlapping in time but disjoint: tx 0 reads key 0 and writes key 2 while tx 1 commits
# a write to key 1. Nothing tx 0 read changed, so it must commit.
@example(
    script=[(0, "read", 0), (1, "write", 1), (1, "commit", 0), (0, "write", 2), (0, "commit", 0)]
)
# A read-only transaction is never refused, even when what it read changed.
@example(script=[(0, "read", 0), (1, "write", 0), (1, "commit", 0), (0, "commit", 0)])
def test_accepted_transactions_are_serializable_in_commit_order(tmp_path_factory, script):
    path = tmp_path_factory.mktemp("occ")
    with Database.open(path) as db:
        ids = db.mutate(lambda tx: [tx.insert("kv", {"k": k, "v": 0.0}) for k in range(KEYS)]).value
        open_txs: dict[int, object] = {}
        logs: dict[int, list[tuple[str, int, float]]] = {}
        committed: list[tuple[int, list[tuple[str, int, float]]]] = []
        # Keys written by each accepted commit, in commit order; a transaction
        # remembers how many there were when it began (its snapshot).
        written_by_commit: list[set[int]] = []
        began_after: dict[int, int] = {}
        counter = 0.0
        for who, action, key in script + [(w, "commit", 0) for w in range(3)]:
            tx = open_txs.get(who)
            if tx is None:
                if action == "commit":
                    continue
                tx = open_txs[who] = db.begin(writable=True)
                logs[who] = []
                began_after[who] = len(written_by_commit)
            if action == "read":
                logs[who].append(("read", key, tx.get(ids[key])["v"]))
            elif action == "write":
                counter += 1.0
                tx.patch(ids[key], {"v": counter})
                logs[who].append(("write", key, counter))
            else:
                del open_txs[who]
                log = logs[who]
                touched = {k for _, k, _ in log}  # read, or patched (a patch reads first)
                writes = {k for op, k, _ in log if op == "write"}
                later = written_by_commit[began_after[who] :]
                must_conflict = bool(writes) and any(touched & keys for keys in later)
                try:
                    ts = db.commit(tx)
                except ConflictError:
                    assert must_conflict, f"refused, though no later commit wrote {touched}"
                    continue
                assert not must_conflict, f"committed although a later commit wrote {touched}"
                if writes:
                    committed.append((ts, log))
                    written_by_commit.append(writes)
        final = db.query(lambda tx: [tx.get(i)["v"] for i in ids]).value

    state = [0.0] * KEYS
    for _, log in sorted(committed, key=lambda c: c[0]):
        for op, key, value in log:
            if op == "read":
                # Reads see the serial state, or this transaction's own earlier write.
                own = [
                    v for o, k, v in log[: log.index((op, key, value))] if o == "write" and k == key
                ]
                assert value == (own[-1] if own else state[key])
        for op, key, value in log:
            if op == "write":
                state[key] = value
    assert state == final
