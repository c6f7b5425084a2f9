"""A writer process for the search crash test: inserts, updates and deletes until killed."""

from __future__ import annotations

import random
import sys

from engine import Database

WORDS = ["apple", "apricot", "banana", "band", "cherry", "date"]


def main(path: str) -> None:
    rng = random.Random()
    with Database.open(path) as db:
        ids: list[str] = []
        while True:
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
            doc = {"body": body, "embedding": [rng.random() + 0.01 for _ in range(4)]}
            if ids and rng.random() < 0.2:
                victim = ids.pop(rng.randrange(len(ids)))
                db.mutate(lambda tx, i=victim: tx.delete(i))
            elif ids and rng.random() < 0.2:
                target = rng.choice(ids)
                db.mutate(lambda tx, i=target, d=doc: tx.replace(i, d))
            else:
                ids.append(db.mutate(lambda tx, d=doc: tx.insert("messages", d)).value)
            print(len(ids), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
