"""What makes ``headwater serve --store`` one node among several of one deployment.

Opening: the store is reached first (a wrong or unreachable URL fails before
anything else), the admin key and the upload-token key live in the store's
meta (every node accepts the same key), the data folder becomes this node's
cache (``engine.cluster_cache``), and commits go through the leader
(``engine.cluster``, forwarded by ``gateway.cluster_api``).

Running: the scheduler and the crons run on the leader only, started when
this node takes the lease and stopped when it loses it, so each job runs once
per deployment; a deploy made through any node (a push, a functions folder)
is a commit, and every other node installs it when it applies that commit.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from engine import Database
from engine.cluster import LEADER, ClusterNode
from engine.cluster_cache import reset_cache
from engine.system_tables import DEPLOYMENT_DOC_ID
from gateway.admin_key import generate_admin_key
from gateway.cluster_api import http_forward
from log.folder_lock import FolderLock
from log.store_url import open_shared_store
from projections.runner import ReplayReport
from udf.deployment import load_deployment

logger = logging.getLogger("headwater.cluster")

ADMIN_KEY_META = "admin_key"


def open_node_database(
    store_url: str,
    data: str,
    *,
    address: str,
    instance_name: str,
    admin_key: str | None = None,
    retention_ns: int | None = None,
) -> tuple[Database, str]:
    """This node's ``Database`` over ``data`` as a cache of the store; and the admin key."""
    store = open_shared_store(store_url)
    try:
        key = store.set_meta_if_absent(
            ADMIN_KEY_META, admin_key or generate_admin_key(instance_name)
        )
        if admin_key and key != admin_key:
            logger.warning(
                "--admin-key differs from the deployment's key in the store; using the store's"
            )
        node = ClusterNode(store, address=address, forward=http_forward(key))
        db = Database.open(data, retention_ns=retention_ns, cluster=node)
    except BaseException:
        store.close()
        raise
    return db, key


@contextlib.contextmanager
def store_database(store_url: str) -> Iterator[Database]:
    """A short-lived node for a command (export, import...): a temporary cache caught up
    from the store; it leads only when no server does (then nothing else could commit)."""
    store = open_shared_store(store_url)
    try:
        lease = store.current_lease()
        may_lead = lease is None or lease.expires_in_ms <= 0
        key = store.set_meta_if_absent(ADMIN_KEY_META, generate_admin_key("headwater"))
        node = ClusterNode(store, forward=http_forward(key), may_lead=may_lead)
        with tempfile.TemporaryDirectory(prefix="headwater-node-") as cache:
            db = Database.open(cache, cluster=node)
            try:
                yield db
            finally:
                db.close()
    finally:
        store.close()


def rebuild_cache(store_url: str, data: str) -> ReplayReport:
    """``headwater replay --store``: empty the node cache ``data`` and rebuild it from the
    store's log (the folder's lock refuses while a server uses it)."""
    store = open_shared_store(store_url)
    try:
        lock = FolderLock.acquire(data)  # the same lock Database takes: no server uses it
        try:
            reset_cache(data, store)
        finally:
            lock.release()
        started = time.perf_counter()
        node = ClusterNode(store, may_lead=False)
        with Database.open(data, cluster=node) as db:
            entries = db.statistics()["committer"]["followed"]
        return ReplayReport(entries, time.perf_counter() - started)
    finally:
        store.close()


def install_deploys_of_other_nodes(executor: Any) -> Callable[[list[Any]], None]:
    """Install a deployment committed through another node once this node applied it;
    the node's heartbeat carries the hash of the code it runs (``headwater status``)."""
    db: Database = executor.db
    node = db.cluster
    assert node is not None

    def running(deployment: Any) -> None:
        node.code_hash = deployment.source_hash

    executor.on_deploy(running)
    if executor.deployment is not None:
        running(executor.deployment)

    def install_newer() -> None:
        deployment = load_deployment(db)
        current = executor.deployment
        if deployment is not None and (current is None or deployment.ts > current.ts):
            logger.info(
                "installing the deployment of ts %d (deployed through another node)", deployment.ts
            )
            executor.install(deployment)

    def on_commit(entries: list[Any]) -> None:
        current = executor.deployment
        for entry in entries:
            if current is not None and entry.ts <= current.ts:
                continue
            if any(w.id == DEPLOYMENT_DOC_ID for w in entry.writes):
                threading.Thread(
                    target=install_newer, name="headwater-install", daemon=True
                ).start()
                return

    db.add_commit_listener(on_commit)
    return on_commit


class LeaderOnly:
    """Starts a service (the scheduler) while this node leads, stops it when it stops."""

    def __init__(self, node: ClusterNode, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._service: Any = None
        node.on_role_change(self._on_role)
        if node.role == LEADER:
            self._on_role(LEADER)

    def _on_role(self, role: str) -> None:
        with self._lock:
            if role == LEADER and self._service is None:
                self._service = self._make()
                self._service.start()
                logger.info("leading: the scheduler runs on this node")
            elif role != LEADER and self._service is not None:
                service, self._service = self._service, None
                threading.Thread(target=service.close, daemon=True).start()

    @property
    def service(self) -> Any:
        return self._service

    def close(self) -> None:
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()
