"""Checking the stored data against a push's new schema, before the push commits.

``start_push`` begins the check on its own thread and ``wait_for_schema`` reports
its progress; ``finish_push`` refuses while it runs or after it failed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from engine.errors import HeadwaterError, SchemaValidationError
from engine.limits import LIMITS
from engine.schema import CREATION_TIME_FIELD, ID_FIELD
from engine.validation import validate

# Reading every document for the schema check is not a user function: no read limits.
_CHECK_LIMITS = dataclasses.replace(
    LIMITS, read_bytes_max=1 << 50, documents_read_max=1 << 40, index_ranges_max=1 << 40
)


class SchemaNotReady(HeadwaterError):
    code = "SchemaNotReady"


@dataclass(frozen=True)
class SchemaStatus:
    """What ``wait_for_schema`` answers: done or not, and the reference's counts."""

    validation_complete: bool
    indexes_complete: int
    indexes_total: int
    error: str | None = None
    table: str | None = None

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and self.validation_complete
            and (self.indexes_complete == self.indexes_total)
        )


class SchemaCheck:
    """Checks the stored documents against a push's schema at its base snapshot.

    Runs on its own thread from ``start``: every table whose validator the push
    changes is read whole; a table an added index covers is read too (the pass that
    prepares its backfill, which the commit then writes). Progress is counted per
    table; a violation ends the check with the reference's message."""

    def __init__(self, executor: Any, prepared: Any) -> None:
        self._db = executor.db
        self._prepared = prepared
        new, old = prepared.new_schema, prepared.old_schema
        added_tables = {d["name"].split(".")[0] for d in prepared.index_diff["added_indexes"]}
        self._validate = [
            name
            for name, table in new.tables.items()
            if new.schema_validation
            and table.document_validator is not None
            and not (
                old.schema_validation
                and name in old.tables
                and old.tables[name].document_validator == table.document_validator
            )
        ]
        self._backfill = sorted(added_tables)
        enabled = [d for d in prepared.index_diff["added_indexes"] if not d["staged"]]
        self._added_enabled = {d["name"] for d in enabled}
        self._indexes_total = sum(
            len(t.indexes) + len(t.search_indexes) + len(t.vector_indexes)
            for t in new.tables.values()
        )
        self._lock = threading.Condition()
        self._tables_done: set[str] = set()
        self._done = not (self._validate or self._backfill)
        self._error: str | None = None
        self._error_table: str | None = None

    def start(self) -> SchemaCheck:
        if not self._done:
            threading.Thread(target=self._run, daemon=True, name="headwater-schema-check").start()
        return self

    def run_inline(self) -> None:
        if not self._done:
            self._run()

    def _run(self) -> None:
        try:
            tx = self._db.begin(writable=False, limits=_CHECK_LIMITS)
            try:
                for table in sorted(set(self._validate) | set(self._backfill)):
                    self._check_table(tx, table)
                    with self._lock:
                        self._tables_done.add(table)
                        self._lock.notify_all()
            finally:
                tx.close()
        except SchemaValidationError as exc:
            with self._lock:
                self._error = exc.message
        finally:
            with self._lock:
                self._done = True
                self._lock.notify_all()

    def _check_table(self, tx: Any, table: str) -> None:
        number = tx.table_number(table)
        schema = self._prepared.new_schema
        validator = schema.tables[table].document_validator if table in self._validate else None
        if number is None:
            return
        for _, doc in tx.snapshot.iter_table(number):
            if validator is None:
                continue
            user = {k: v for k, v in doc.items() if k not in (ID_FIELD, CREATION_TIME_FIELD)}
            try:
                validate(validator, user, table_of_id=tx.table_of_id)
            except HeadwaterError as exc:
                self._error_table = table
                raise SchemaValidationError(
                    f'Document with ID "{doc[ID_FIELD]}" in table "{table}" does not match '
                    f"the schema: {exc.message}"
                ) from None

    def status(self) -> SchemaStatus:
        with self._lock:
            return self._status()

    def _status(self) -> SchemaStatus:
        pending = {n for n in self._added_enabled if n.split(".")[0] not in self._tables_done}
        validated = self._done or set(self._validate) <= self._tables_done
        complete = self._indexes_total - (0 if self._done else len(pending))
        return SchemaStatus(
            validated, complete, self._indexes_total, self._error, self._error_table
        )

    def wait(self, timeout_s: float) -> SchemaStatus:
        """The status once the check ends or changes, at most ``timeout_s`` from now."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            seen = self._status()
            while not self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
                now = self._status()
                if now != seen:
                    return now
            return self._status()

    def raise_if_failed(self) -> None:
        status = self.wait(0)
        if status.error is not None:
            raise SchemaValidationError(status.error)
        if not status.validation_complete:
            raise SchemaNotReady(
                "The data is still being checked against the new schema: wait for "
                "wait_for_schema to answer complete before finish_push.",
            )
