"""Headwater's engine: the value model, transactions, OCC commit and the Database facade.

Users need only ``Database`` and ``UNSET`` (plus the errors to catch); the
rest lives in private-by-convention modules that the function runtime and the
gateway import directly.
"""

from engine.database import Database
from engine.errors import (
    ConflictError,
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

__all__ = [
    "UNSET",
    "ConflictError",
    "Database",
    "DocumentNotFoundError",
    "HeadwaterError",
    "IntegrityError",
    "InvalidIdError",
    "InvalidQueryError",
    "InvalidValueError",
    "LimitExceededError",
    "MutationResult",
    "QueryResult",
    "ReadOnlyError",
    "SchemaError",
    "SchemaValidationError",
    "SnapshotOutOfRangeError",
    "Subscription",
    "TooManyConflictsError",
    "Transaction",
]
