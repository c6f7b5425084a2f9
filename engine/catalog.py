"""Table names and numbers: which tables exist, derived from the ``_tables`` documents.

Tables are never renamed or dropped, so a name-to-number pair, once committed,
holds for ever; the catalog therefore caches it in memory and needs no read
set. Creating a table is a write to ``_tables`` in the creating transaction, so
two transactions racing to create tables conflict through OCC like any others.

The committer tells the catalog about a new table just after the commit is
visible, so a miss is not final: ``Transaction.table_number`` then looks in
its own snapshot's ``_tables``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from engine.system_tables import FIRST_USER_TABLE_NUMBER, SYSTEM_TABLE_NUMBERS, TABLES_TABLE
from log.entry import LogEntry


class Catalog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, int] = dict(SYSTEM_TABLE_NUMBERS)
        self._by_number: dict[int, str] = {n: t for t, n in SYSTEM_TABLE_NUMBERS.items()}

    def number_of(self, table: str) -> int | None:
        return self._by_name.get(table)

    def name_of(self, number: int) -> str | None:
        return self._by_number.get(number)

    def all_tables(self) -> dict[str, int]:
        return dict(self._by_name)

    def user_tables(self) -> dict[str, int]:
        return {t: n for t, n in self._by_name.items() if not t.startswith("_")}

    def next_free_number(self, also_taken: Iterable[int] = ()) -> int:
        taken = set(self._by_number) | set(also_taken)
        number = FIRST_USER_TABLE_NUMBER
        while number in taken:
            number += 1
        return number

    def observe(self, table_docs: Iterable[dict]) -> None:
        """Record ``_tables`` documents (on open and after each commit)."""
        with self._lock:
            for doc in table_docs:
                self._by_name[doc["name"]] = doc["number"]
                self._by_number[doc["number"]] = doc["name"]

    def observe_entry(self, entry: LogEntry) -> None:
        docs = [w.value for w in entry.writes if w.table == TABLES_TABLE and w.value is not None]
        if docs:
            self.observe(docs)
