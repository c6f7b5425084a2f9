"""Headwater's engine: the value model, transactions, OCC commit and the Database facade.

Users need only ``Database`` and ``UNSET`` (plus the errors to catch); the
rest lives in modules that the function runtime and the gateway import
directly. Names are resolved lazily (PEP 562) so that importing a leaf such as
``engine.errors`` does not pull in the whole wiring — ``log/`` and
``projections/`` import engine leaves, and the wiring imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy_exports import lazy_exports

_EXPORTS = {
    "Database": "engine.database",
    "MutationResult": "engine.results",
    "QueryResult": "engine.results",
    "Subscription": "engine.subscription_manager",
    "Transaction": "engine.transaction",
    "UNSET": "engine.values",
    "ConflictError": "engine.errors",
    "DataFolderBusyError": "engine.errors",
    "DocumentNotFoundError": "engine.errors",
    "HeadwaterError": "engine.errors",
    "IntegrityError": "engine.errors",
    "InvalidIdError": "engine.errors",
    "InvalidQueryError": "engine.errors",
    "InvalidValueError": "engine.errors",
    "LimitExceededError": "engine.errors",
    "ReadOnlyError": "engine.errors",
    "SchemaError": "engine.errors",
    "SchemaValidationError": "engine.errors",
    "SnapshotOutOfRangeError": "engine.errors",
    "TooManyConflictsError": "engine.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from engine.database import Database
    from engine.errors import (
        ConflictError,
        DataFolderBusyError,
        DocumentNotFoundError,
        HeadwaterError,
        IntegrityError,
        InvalidIdError,
        InvalidQueryError,
        InvalidValueError,
        LimitExceededError,
        ReadOnlyError,
        SchemaError,
        SchemaValidationError,
        SnapshotOutOfRangeError,
        TooManyConflictsError,
    )
    from engine.results import MutationResult, QueryResult
    from engine.subscription_manager import Subscription
    from engine.transaction import Transaction
    from engine.values import UNSET
