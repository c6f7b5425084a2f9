"""``process.env`` for each call: the deployment's variables at the call's snapshot.

Queries and mutations see the variables of their snapshot ts (so a query is
deterministic and a point-in-time read sees the values of its time) and get
the variables table's range in their read set: a live query re-runs, and a
mutation conflicts, when a variable changes. Actions see the newest values.

A change (``update_environment``) is one commit, which also re-evaluates
``auth.config`` under the new values.

Scanning the table costs ~70 µs, so the newest set is cached: it stays valid
from the ts it was read at for as long as a watch on the table has not fired,
for every snapshot the subscription notifier has already passed (a commit the
notifier has not matched yet could be a change). Other snapshots scan.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine import Database
from engine.environment_variables import EnvChange, apply_changes, read_all
from engine.errors import ConflictError
from engine.limits import LIMITS, Limits
from engine.read_set import Interval, ReadSet
from engine.system_tables import DEPLOYMENT_DOC_ID, DEPLOYMENT_TABLE, ENVIRONMENT_VARIABLES_TABLE
from engine.transaction import Transaction
from udf.deployment import Deployment, analysis_to_json
from udf.isolate import AUTH_CONFIG_MODULE, Isolate

_TABLE_INDEX = f"{ENVIRONMENT_VARIABLES_TABLE}.by_creation_time"
_WHOLE_TABLE = ReadSet.of([(_TABLE_INDEX, Interval(b"", None))])


class _Cached:
    def __init__(self, from_ts: int, env: Mapping[str, str], watch: Any) -> None:
        self.from_ts = from_ts
        self.env = env
        self.watch = watch


class EnvironmentSnapshots:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def snapshot(self, tx: Transaction | None) -> Mapping[str, str]:
        """The variables at ``tx``'s snapshot (read-tracked); newest if ``tx`` is None."""
        if tx is not None:
            return self._at(tx)
        latest = self._db.begin(writable=False)
        try:
            return self._at(latest)
        finally:
            latest.close()

    def _at(self, tx: Transaction) -> Mapping[str, str]:
        ts = tx.snapshot_ts
        hit = self._hit(ts)
        if hit is not None:
            tx.reads.add(_TABLE_INDEX, b"", None)
            return hit
        env: Mapping[str, str] = MappingProxyType(read_all(tx))
        self._store(ts, env)
        return env

    def _hit(self, ts: int) -> Mapping[str, str] | None:
        cached = self._cached
        if cached is None or ts < cached.from_ts:
            return None
        # Read processed_ts before closed: the notifier closes a fired watch first.
        if ts > self._db.processed_ts or cached.watch.closed:
            return None
        return cached.env

    def _store(self, ts: int, env: Mapping[str, str]) -> None:
        with self._lock:
            current = self._cached
            # A live entry stays: it already answers every snapshot the notifier passed.
            if current is not None and not current.watch.closed:
                return
            watch = self._db.watch(_WHOLE_TABLE, ts, lambda _ts: None)
            self._cached = _Cached(ts, env, watch)
        if current is not None:
            current.watch.close()


@dataclass(frozen=True)
class EnvUpdate:
    ts: int  # the commit ts (the snapshot ts when nothing changed)
    deployment: Deployment | None  # the deployment with its re-evaluated auth config, if changed


def update_environment(
    db: Database,
    deployment: Deployment | None,
    changes: Iterable[EnvChange],
    limits: Limits = LIMITS,
) -> EnvUpdate:
    """Apply a batch of variable changes as one commit.

    ``auth.config`` may name variables, so it is evaluated again under the new
    set, in the same transaction (Convex does this too): a change that leaves it
    naming a missing variable is refused (``AuthConfigMissingEnvironmentVariable``)
    and changes nothing; a changed result is stored with the deployment.
    """
    batch = list(changes)
    auth_module = deployment is not None and any(
        m.path == AUTH_CONFIG_MODULE for m in deployment.modules
    )

    def change(tx: Transaction) -> Deployment | None:
        env = apply_changes(tx, batch, limits)
        if not auth_module or deployment is None:
            return None
        record = tx.get(DEPLOYMENT_DOC_ID)
        if record is None or record["sourceHash"] != deployment.source_hash:
            raise ConflictError("The deployment changed while the variables were being set.")
        with Isolate(deployment.runnable, heap_bytes_max=limits.isolate_heap_bytes_max) as iso:
            auth_json = iso.analyze_auth_config(env)
        if auth_json == deployment.analysis.auth_config_json:
            return None
        analysis = dataclasses.replace(deployment.analysis, auth_config_json=auth_json)
        tx.write_system(
            DEPLOYMENT_TABLE,
            DEPLOYMENT_DOC_ID,
            {  # every other field (the component tree, versions) kept
                **{k: v for k, v in record.items() if not k.startswith("_")},
                "analysis": analysis_to_json(analysis),
            },
        )
        return dataclasses.replace(deployment, analysis=analysis)

    result = db.mutate(change)
    updated = result.value
    if updated is not None:
        updated = dataclasses.replace(updated, ts=result.ts)
    return EnvUpdate(result.ts, updated)
