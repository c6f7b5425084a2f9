"""The one error tree of Headwater.

Every error the world can cause carries a stable machine ``code`` (tests and the
gateway match on it) and a human message. Only ``gateway/`` maps codes to HTTP
statuses and protocol errors. Our own bugs are not in this tree: integrity
checks raise ``IntegrityError``, which is never the caller's fault.

    HeadwaterError
    ├── InvalidValueError        a value breaks the Convex value rules (names the path)
    ├── InvalidIdError           a string is not a document id (of that table)
    ├── SchemaError              a schema document is malformed
    ├── SchemaValidationError    a document breaks its table's validator (names the field)
    ├── DocumentNotFoundError    patch/replace/delete of a missing document
    ├── InvalidQueryError        a malformed query, index range, filter or cursor
    ├── SnapshotOutOfRangeError  a read ts outside retained history
    ├── LimitExceededError       a documented limit was passed (names the limit)
    ├── ReadOnlyError            a write in a read-only transaction
    ├── ConflictError            OCC: a concurrent commit touched the read set (retried)
    ├── DataFolderBusyError      another process holds the data folder's writer lock
    ├── TooManyConflictsError    OCC retries exhausted
    └── IntegrityError           stored data failed a check: a Headwater bug or disk damage
"""

from __future__ import annotations


class HeadwaterError(Exception):
    """Base of every error Headwater raises on purpose."""

    code = "HeadwaterError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidValueError(HeadwaterError):
    code = "InvalidValue"


class InvalidIdError(HeadwaterError):
    code = "InvalidId"


class SchemaError(HeadwaterError):
    code = "InvalidSchema"


class SchemaValidationError(HeadwaterError):
    code = "SchemaValidationFailed"


class DocumentNotFoundError(HeadwaterError):
    code = "DocumentNotFound"


class InvalidQueryError(HeadwaterError):
    code = "InvalidQuery"


class SnapshotOutOfRangeError(HeadwaterError):
    code = "SnapshotOutOfRange"


class LimitExceededError(HeadwaterError):
    code = "LimitExceeded"


class ReadOnlyError(HeadwaterError):
    code = "ReadOnlyTransaction"


class ConflictError(HeadwaterError):
    code = "OptimisticConcurrencyControlFailure"


class DataFolderBusyError(HeadwaterError):
    code = "DataFolderBusy"


class TooManyConflictsError(HeadwaterError):
    code = "TooManyConflicts"


class IntegrityError(HeadwaterError):
    code = "IntegrityError"
