"""A running deployment: the composition root of ``headwater serve``.

It opens the data folder, loads (or generates) the admin key, starts the
function executor, deploys a functions folder if one is given (and redeploys
when it changes: the dev loop), builds the authenticator from the deployed
``auth.config`` and serves the gateway app. Everything else in the gateway is
built from the pieces assembled here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import Database, HeadwaterError
from gateway.admin_key import generate_admin_key
from gateway.admin_key_file import admin_key_path
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.cluster_api import cluster_routes
from gateway.cluster_services import LeaderOnly, install_deploys_of_other_nodes, open_node_database
from gateway.context import GatewayContext, GatewaySettings
from gateway.env_api import env_routes
from gateway.function_logs_api import LongPolls, function_log_routes
from gateway.functions_stamp import (
    functions_inputs_hash,
    is_deployed_unchanged,
    record_deployed,
    recorded_outside,
)
from gateway.http_actions import HttpActionsApp, HttpPrefixMount
from gateway.push_api import push_routes
from gateway.snapshot_export_api import snapshot_export_routes
from gateway.snapshot_import_api import snapshot_import_routes
from gateway.snapshot_worker import SnapshotWorker
from gateway.storage_api import UPLOAD_PATH, storage_routes
from gateway.streaming_export_api import streaming_export_routes
from udf.deployment import Deployment
from udf.executor import Executor
from udf.function_log import FunctionLog
from udf.scheduler import Scheduler

_WATCH_INTERVAL_S = 1.0

logger = logging.getLogger("headwater.backend")


def load_or_create_admin_key(data_dir: Path, instance_name: str, given: str | None) -> str:
    """The key in ``DIR/admin_key``; created (one line) on first start."""
    path = Path(admin_key_path(data_dir))
    if given is not None:
        if not path.exists():
            path.write_text(given + "\n")
            os.chmod(path, 0o600)
        return given
    if path.exists():
        return path.read_text().strip()
    key = generate_admin_key(instance_name)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    os.chmod(path, 0o600)
    return key


def auth_config_of(deployment: Deployment | None) -> dict[str, Any] | None:
    if deployment is None or deployment.analysis.auth_config_json is None:
        return None
    return json.loads(deployment.analysis.auth_config_json)


@dataclass
class Backend:
    db: Database
    executor: Executor
    authenticator: HeadwaterAuthenticator
    admin_key: str
    app: Any
    function_log: FunctionLog
    long_polls: LongPolls
    functions_dir: Path | None = None
    outside_inputs: tuple[str, ...] = ()  # files outside functions_dir its modules import
    site_app: Any = None  # HttpActionsApp: what the site port serves
    _stop_watch: threading.Event | None = None
    _snapshots: SnapshotWorker | None = None
    scheduler: Scheduler | None = None
    _stop_sweep: threading.Event | None = None
    _leader_only: Any = None  # cluster mode: the scheduler runs while this node leads

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        functions_dir: str | os.PathLike[str] | None = None,
        admin_key: str | None = None,
        settings: GatewaySettings | None = None,
        retention_ns: int | None = None,
        store_url: str | None = None,
        address: str = "",
    ) -> Backend:
        """``store_url``: serve as one node of the deployment in that shared store
        (``gateway.cluster_services``), answering other nodes at ``address``."""
        settings = settings or GatewaySettings()
        data = Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        if store_url is not None:
            db, key = open_node_database(
                store_url,
                str(data),
                address=address,
                instance_name=settings.instance_name,
                admin_key=admin_key,
                retention_ns=retention_ns,
            )
        else:
            # The folder's writer lock comes first: a second server is refused before it
            # touches anything (the admin key file included).
            db = Database.open(data, retention_ns=retention_ns)
            try:
                key = load_or_create_admin_key(data, settings.instance_name, admin_key)
            except BaseException:
                db.close()
                raise
        executor = Executor(db, instance_name=settings.instance_name)
        function_log = executor.function_log = FunctionLog()
        long_polls = LongPolls()  # ended by `serve` when the server starts to stop
        outside: tuple[str, ...] = ()
        if functions_dir is not None:
            outside = _deploy_unless_unchanged(executor, data, Path(functions_dir))
        authenticator = HeadwaterAuthenticator(key, auth_config_of(executor.deployment))
        executor.on_deploy(lambda d: authenticator.set_auth_config(auth_config_of(d)))
        context = GatewayContext(executor, authenticator, settings)
        snapshots = SnapshotWorker()  # exports and imports, one at a time, off the event loop
        routes = [
            *snapshot_export_routes(context, db, snapshots, data),
            *snapshot_import_routes(context, db, snapshots, data),
            *push_routes(context, executor),
            *env_routes(context, executor),
            *streaming_export_routes(context, db),
            *function_log_routes(context, function_log, long_polls),
            *storage_routes(executor.file_storage),
            *cluster_routes(context, db),
        ]
        upload_limit = {UPLOAD_PATH: executor.limits.storage_file_bytes_max}
        # HTTP actions: the site port's app, and the same under /http/ on the API port.
        site_app = HttpActionsApp(context, executor)
        api_app = create_app(context, extra_routes=routes, body_limits=upload_limit)
        _register_gauges(executor, api_app.state.sync_hub)
        app = HttpPrefixMount(api_app, site_app)
        backend = cls(db, executor, authenticator, key, app, function_log, long_polls)
        backend.site_app = site_app
        backend._snapshots = snapshots
        # Scheduled functions and crons run from here on (and catch up on what came due);
        # in a cluster, on the leader only.
        if db.cluster is None:
            backend.scheduler = Scheduler(executor)
            backend.scheduler.start()
        else:
            install_deploys_of_other_nodes(executor)
            backend._leader_only = LeaderOnly(db.cluster, lambda: Scheduler(executor))
        backend._stop_sweep = _start_sweeping(executor)
        if functions_dir is not None:
            backend.functions_dir = Path(functions_dir)
            backend.outside_inputs = outside
        return backend

    def watch_functions(self) -> None:
        """Redeploy the functions folder whenever a source file changes (polling)."""
        if self.functions_dir is None or self._stop_watch is not None:
            return
        self._stop_watch = threading.Event()
        threading.Thread(
            target=self._watch_loop,
            args=(self._stop_watch,),
            daemon=True,
            name="headwater-functions-watch",
        ).start()

    def _watch_loop(self, stop: threading.Event) -> None:
        assert self.functions_dir is not None
        outside = self.outside_inputs
        seen = _source_stamp(self.functions_dir, outside)
        while not stop.wait(_WATCH_INTERVAL_S):
            stamp = _source_stamp(self.functions_dir, outside)
            if stamp == seen:
                continue
            seen = stamp
            try:
                report = self.executor.deploy(self.functions_dir)
                if report.outside_inputs != outside:
                    outside = report.outside_inputs
                    seen = _source_stamp(self.functions_dir, outside)
                logger.info(
                    "redeployed %s: %d functions", self.functions_dir, len(report.functions)
                )
            except HeadwaterError as exc:
                logger.error(
                    "redeploy of %s failed, keeping the running code: %s",
                    self.functions_dir,
                    exc.message,
                )

    def close(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        if self._stop_sweep is not None:
            self._stop_sweep.set()
        if self._snapshots is not None:
            self._snapshots.close()
        if self.scheduler is not None:
            self.scheduler.close()
        if self._leader_only is not None:
            self._leader_only.close()
        self.executor.close()
        self.db.close()


def _register_gauges(executor: Executor, hub: Any) -> None:
    """The dashboard's health screen reads what only the gateway knows: its sockets."""
    if hub is None:
        return

    def sync() -> dict[str, Any]:
        stats = hub.statistics()
        return {"connections": stats["connections"], "subscriptions": stats["subscriptions"]}

    executor.dashboard.gauges["sync"] = sync


def _start_sweeping(executor: Executor) -> threading.Event:
    """Stored files no retained read can see, and orphans, removed now and then."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(executor.limits.storage_sweep_interval_s):
            try:
                removed = executor.file_storage.sweep()
                if removed:
                    logger.info("file storage: %d unreferenced files removed", removed)
            except Exception:  # keep serving; the next round tries again
                logger.exception("file storage sweep failed")

    threading.Thread(target=loop, daemon=True, name="headwater-storage-sweep").start()
    return stop


def _deploy_unless_unchanged(
    executor: Executor, data_dir: Path, functions_dir: Path
) -> tuple[str, ...]:
    """Deploy ``functions_dir`` at startup, skipping the bundling when nothing changed;
    the files outside it that its modules import."""
    deployed = executor.deployment
    source_hash = None if deployed is None else deployed.source_hash
    if is_deployed_unchanged(data_dir, functions_dir, source_hash):
        return recorded_outside(data_dir)
    inputs = functions_inputs_hash(functions_dir)
    report = executor.deploy(functions_dir)
    assert executor.deployment is not None
    record_deployed(
        data_dir, functions_dir, inputs, executor.deployment.source_hash, report.outside_inputs
    )
    return report.outside_inputs


def _source_stamp(root: Path, outside: tuple[str, ...] = ()) -> tuple[tuple[str, int, int], ...]:
    found = []
    for path in sorted(root.rglob("*")):
        if "_generated" in path.parts or "node_modules" in path.parts or not path.is_file():
            continue
        stat = path.stat()
        found.append((str(path), stat.st_mtime_ns, stat.st_size))
    for name in outside:
        try:
            stat = Path(name).stat()
            found.append((name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            found.append((name, -1, -1))
    return tuple(found)
