"""The crons of every component instance, as one set for ``_cron_jobs``.

Each instance runs its definition's ``crons.js`` (Convex keeps cron jobs per
component); an instance's crons call its own functions. A deploy syncs the
union (``engine.cron_jobs.sync_cron_jobs``): the app's crons keyed by their
identifier, an instance's by ``"<path>/<identifier>"``.
"""

from __future__ import annotations

from typing import Any

from engine.cron_jobs import check_targets, parse_crons


def all_cron_specs(deployment: Any) -> dict[str, dict[str, Any]]:
    """Every instance's crons (checked: each names a mutation or action of its instance)."""
    specs: dict[str, dict[str, Any]] = {}
    for path in sorted(deployment.tree.instances):
        code = deployment.for_component(path)
        if code is None:
            continue
        found = parse_crons(code.analysis.crons_json, path)
        check_targets(found, lambda module, export, c=code: _kind(c, module, export))
        specs.update(found)
    return specs


def _kind(code: Any, module: str, export: str) -> str | None:
    info = code.function(module, export)
    return None if info is None else info.kind
