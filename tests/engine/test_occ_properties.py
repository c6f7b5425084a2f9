"""OCC as a property: for any interleaving of transactions that read and write a few
documents, the transactions the committer accepts are serializable in commit-ts
order — replaying them one at a time in that order reproduces every value each
one read and the final state — and a transaction is refused only if a commit
after its snapshot wrote something it read."""

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
def test_accepted_transactions_are_serializable_in_commit_order(tmp_path_factory, script):
    path = tmp_path_factory.mktemp("occ")
    with Database.open(path) as db:
        ids = db.mutate(lambda tx: [tx.insert("kv", {"k": k, "v": 0.0}) for k in range(KEYS)]).value
        open_txs: dict[int, object] = {}
        logs: dict[int, list[tuple[str, int, float]]] = {}
        committed: list[tuple[int, list[tuple[str, int, float]]]] = []
        counter = 0.0
        for who, action, key in script + [(w, "commit", 0) for w in range(3)]:
            tx = open_txs.get(who)
            if tx is None:
                if action == "commit":
                    continue
                tx = open_txs[who] = db.begin(writable=True)
                logs[who] = []
            if action == "read":
                logs[who].append(("read", key, tx.get(ids[key])["v"]))
            elif action == "write":
                counter += 1.0
                tx.patch(ids[key], {"v": counter})
                logs[who].append(("write", key, counter))
            else:
                del open_txs[who]
                try:
                    ts = db.commit(tx)
                except ConflictError:
                    continue
                if any(op == "write" for op, _, _ in logs[who]):
                    committed.append((ts, logs[who]))
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
