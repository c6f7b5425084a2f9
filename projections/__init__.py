"""Projections of the log: each consumes committed entries in order, behind a checkpoint.

Stored projections (documents, B-tree indexes) live in the log's LMDB
environment and are applied in the committing transaction; live projections
(the subscription matcher, later search and Kafka) are fed after durability.
"""

from projections.btree import BtreeIndexes
from projections.documents import DocumentStore
from projections.protocol import LiveProjection, StoredProjection
from projections.runner import ProjectionRunner, ReplayReport
from projections.subscriptions import SubscriptionMatcher

__all__ = [
    "BtreeIndexes",
    "DocumentStore",
    "LiveProjection",
    "ProjectionRunner",
    "ReplayReport",
    "StoredProjection",
    "SubscriptionMatcher",
]
