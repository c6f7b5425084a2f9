"""The dashboard's `_system/dashboard/ops:*` functions (see `udf.dashboard_functions`).

Each handler is `(context, tx, args) -> value`, registered by its path; each lives in
the module of its screen: functions, deploys, schedules, files, health."""

from __future__ import annotations

from typing import Any

from udf.dashboard_deploys import list_deploys
from udf.dashboard_files import delete_stored_file, list_files
from udf.dashboard_functions_list import list_functions
from udf.dashboard_health import health
from udf.dashboard_schedules import cancel_job, list_crons, list_scheduled

_OPS = "_system/dashboard/ops:"

QUERIES: dict[str, Any] = {
    _OPS + "functions": list_functions,
    _OPS + "deploys": list_deploys,
    _OPS + "scheduled": list_scheduled,
    _OPS + "crons": list_crons,
    _OPS + "files": list_files,
    _OPS + "health": health,
}
MUTATIONS: dict[str, Any] = {
    _OPS + "cancelJob": cancel_job,
    _OPS + "deleteFile": delete_stored_file,
}
