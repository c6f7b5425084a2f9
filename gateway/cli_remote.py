"""``headwater run`` beside a running server: reads stay local, writes go through it.

Exactly one process commits to a data folder (``log.folder_lock``). ``run``
first tries to become that process; when it is free, everything runs here as
before. When another process holds the folder:

- a query (also with ``--ts``) runs here on a read-only ``Database``: the
  writer keeps the projections current, so local reads are exact;
- a mutation or action is sent to the holder's HTTP API (``/api/function``
  with the admin key in ``<data>/admin_key``), so its commit is ordered, OCC
  validated and seen by live queries like any client's; ``--functions`` is
  bundled here and pushed through the server's push endpoints first;
- if the holder publishes no URL (an ``import`` in progress) or does not
  answer, the write is refused with one line naming the folder and the pid.

``--ts`` is only for queries: a mutation or action always commits at the
current time, so asking for the past is refused, with or without a server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from engine import Database, HeadwaterError
from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import DataFolderBusyError
from engine.limits import LIMITS
from gateway.admin_key_file import admin_key_path, read_stored_admin_key
from log.folder_lock import LockHolder, read_holder
from udf.calls import ADMIN, FunctionCall, FunctionError, FunctionOutcome
from udf.executor import Executor, parse_udf_path

# An action may run for its whole time limit on the server; the request waits a bit longer.
_REMOTE_TIMEOUT_S = LIMITS.action_time_max_ms / 1000 + 60
_SERVER_ERROR_PREFIX = "] Server Error\n"


def run_function(
    data: str,
    path: str,
    args: dict[str, Any],
    *,
    functions: str | None = None,
    ts: int | None = None,
    component_path: str = "",
    store: str | None = None,
) -> FunctionOutcome:
    """Run one function (of the component at ``component_path``; the app's by default)
    against the data folder ``data`` (see the module docstring), or as a node of the
    deployment in ``store`` (its commits go through the leader)."""
    if store is not None:
        from gateway.cluster_services import store_database

        with store_database(store) as db:
            return _run_in(db, path, args, functions, ts, component_path)
    try:
        db = Database.open(data)
    except DataFolderBusyError:
        return _run_beside_writer(data, path, args, functions, ts, component_path)
    with db:
        return _run_in(db, path, args, functions, ts, component_path)


def _run_in(
    db: Database,
    path: str,
    args: dict[str, Any],
    functions: str | None,
    ts: int | None,
    component_path: str,
) -> FunctionOutcome:
    executor = Executor(db)
    try:
        if functions is not None:
            executor.deploy(functions)
        _refuse_ts_for_writes(executor, path, ts, component_path)
        call = FunctionCall(path, args, None, ADMIN, ts=ts, component_path=component_path)
        return executor.run(call)
    finally:
        executor.close()


def _run_beside_writer(
    data: str,
    path: str,
    args: dict[str, Any],
    functions: str | None,
    ts: int | None,
    component_path: str,
) -> FunctionOutcome:
    holder = read_holder(data)
    if functions is not None:
        _deploy_through(data, holder, functions)
    with Database.open(data, read_only=True) as db:
        executor = Executor(db)
        try:
            kind = _kind_of(executor, path, component_path)
            _refuse_ts_for_writes(executor, path, ts, component_path)
            if kind in ("mutation", "action"):
                return _call_through(data, holder, path, args, component_path)
            # A query, or a function that does not exist: answered here, read-only.
            call = FunctionCall(path, args, None, ADMIN, ts=ts, component_path=component_path)
            return executor.run(call)
        finally:
            executor.close()


def _kind_of(executor: Executor, path: str, component_path: str = "") -> str | None:
    deployment = executor.deployment
    if deployment is not None:
        deployment = deployment.for_component(component_path)
    if deployment is None:
        return None
    info = deployment.function(*parse_udf_path(path))
    return None if info is None else info.kind


def _refuse_ts_for_writes(
    executor: Executor, path: str, ts: int | None, component_path: str = ""
) -> None:
    kind = _kind_of(executor, path, component_path)
    if ts is not None and kind in ("mutation", "action"):
        raise HeadwaterError(
            f"--ts reads the past, so only a query can run at a ts; {path} is a {kind}, "
            "which always commits at the current time. Run it without --ts.",
            code="TsOnlyForQueries",
        )


# -- through the server ------------------------------------------------------------


def _server_url(data: str, holder: LockHolder) -> str:
    if holder.url is None:
        who = "another process" if holder.pid is None else f"process {holder.pid}"
        raise DataFolderBusyError(
            f"The data folder {data} is in use by {who}, which is not a server; "
            "writes cannot go through it. Wait for it to finish, then run this again."
        )
    return holder.url.rstrip("/")


def _admin_key(data: str, holder: LockHolder) -> str:
    try:
        return read_stored_admin_key(data)
    except OSError as exc:
        raise HeadwaterError(
            f"Cannot read the admin key {admin_key_path(data)} to send this "
            f"write to the server holding the folder (process {holder.pid}): {exc.strerror}.",
            code="AdminKeyMissing",
        ) from None


def _post(data: str, holder: LockHolder, route: str, body: bytes, content_type: str) -> Any:
    url = _server_url(data, holder)
    request = urllib.request.Request(
        url + route,
        data=body,
        headers={
            "Authorization": f"Convex {_admin_key(data, holder)}",
            "Content-Type": content_type,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=_REMOTE_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode(errors="replace")
        try:
            detail = json.loads(raw)
            message = f"{detail['code']}: {detail['message']}"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code} {raw.strip()}"
        raise HeadwaterError(
            f"The server holding {data} (process {holder.pid}, {url}) refused the call: {message}",
            code="ServerRefused",
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HeadwaterError(
            f"The data folder {data} is held by process {holder.pid}, whose server at {url} "
            f"did not answer ({reason}); the write was not sent.",
            code="ServerUnreachable",
        ) from None


def _call_through(
    data: str, holder: LockHolder, path: str, args: dict[str, Any], component_path: str = ""
) -> FunctionOutcome:
    request = {"path": path, "args": to_convex_json(args), "format": "convex_encoded_json"}
    if component_path:
        request["componentPath"] = component_path
    body = json.dumps(request).encode()
    reply = _post(data, holder, "/api/function", body, "application/json")
    logs = tuple(str(line) for line in reply.get("logLines", ()))
    if reply.get("status") == "success":
        return FunctionOutcome(value=from_convex_json(reply.get("value")), log_lines=logs)
    message = str(reply.get("errorMessage", ""))
    # The server prefixes "[Request ID: ...] Server Error" and ends the text with a newline
    # (Convex's JsError); a local run prints without either.
    _, found, rest = message.partition(_SERVER_ERROR_PREFIX)
    error = FunctionError(
        (rest if found else message).removesuffix("\n"),
        data=from_convex_json(reply["errorData"]) if "errorData" in reply else None,
        is_convex_error="errorData" in reply,
    )
    return FunctionOutcome(error=error, log_lines=logs)


def _deploy_through(data: str, holder: LockHolder, functions: str) -> None:
    from gateway.push_client import PushRefused, push_modules
    from udf.component_bundler import bundle_folder
    from udf.deployment import check_functions_dir

    check_functions_dir(functions)
    url = _server_url(data, holder)
    try:
        built, components = bundle_folder(functions)
        push_modules(
            url,
            _admin_key(data, holder),
            built.modules,
            node_dependencies=built.node_dependencies,
            components=components,
        )
    except PushRefused as exc:
        raise HeadwaterError(
            f"The server holding {data} (process {holder.pid}, {url}) refused the deploy: "
            f"{exc.one_line}",
            code="ServerRefused",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HeadwaterError(
            f"The data folder {data} is held by process {holder.pid}, whose server at {url} "
            f"did not answer ({reason}); the deploy was not sent.",
            code="ServerUnreachable",
        ) from None
