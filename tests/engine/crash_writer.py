"""A writer process for the crash tests: commits pairs forever, printing each acknowledgement."""

from __future__ import annotations

import sys

from engine import Database


def main(path: str, start: int) -> None:
    with Database.open(path) as db:
        i = start
        while True:
            r = db.mutate(
                lambda tx, i=i: (
                    tx.insert("pairs", {"i": i, "half": 0}),
                    tx.insert("pairs", {"i": i, "half": 1}),
                )
            )
            print(f"{i} {r.ts}", flush=True)
            i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
