"""Our push results in the JSON shapes the official CLI validates (zod, npm 1.48).

``start_push_response``: StartPushResponse — ``analysis[""]`` (the root app: its
definition metadata, schema, analysed modules, udf config), ``app`` (the
checked component), ``schemaChange`` (``indexDiffs[""]``), ``appAuth`` and
``environmentVariables``. The CLI echoes the whole object back in
``finish_push``, so the push id travels in it as an extra key (``PUSH_ID_KEY``).

``finish_push_diff``: FinishPushDiff — ``componentDiffs[""]`` (moduleDiff,
indexDiff, cronDiff, schemaDiff, udfConfigDiff) and ``authDiff``. Auth
entries are the providers as JSON text and crons are named, as the reference
reports them.
"""

from __future__ import annotations

import json
from typing import Any

from engine.components import split_table
from udf.deployment import Deployment
from udf.outcome import Analysis, FunctionInfo
from udf.push import PreparedPush
from udf.schema_check import SchemaStatus

PUSH_ID_KEY = "headwaterPushId"
TS_KEY = "headwaterTs"  # finish_push: the commit ts of the push (for headwater deploy)
ROOT = ""
_UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action"}


def functions_by_module(analysis: Analysis, paths: list[str]) -> dict[str, Any]:
    """``functions``: every analysed module (not ``_deps/``) with its functions."""
    found: dict[str, Any] = {}
    for path in paths:
        if path.startswith("_deps/"):
            continue
        defined = [f for f in analysis.functions if f.module == path and f.kind in _UDF_TYPES]
        found[path] = {
            "functions": [_function(f) for f in defined],
            "httpRoutes": None,
            "cronSpecs": None,
            "sourceMapped": None,
        }
    if "http.js" in found and analysis.http_routes:
        found["http.js"]["httpRoutes"] = [
            {"route": {"path": r.path, "method": r.method}, "pos": None}
            for r in analysis.http_routes
        ]
    if "crons.js" in found and analysis.crons_json is not None:
        crons = _crons(analysis)
        found["crons.js"]["cronSpecs"] = [
            {"identifier": n, "spec": _cron_spec(c)} for n, c in crons.items()
        ]
    return found


def _cron_spec(job: Any) -> dict[str, Any]:
    """One cron as the reference serializes it (``udfArgs`` are bytes there: left out)."""
    job = job if isinstance(job, dict) else {}
    return {"udfPath": job.get("name"), "udfArgs": None, "cronSchedule": job.get("schedule")}


def _function(f: FunctionInfo) -> dict[str, Any]:
    return {
        "name": f.name,
        "pos": None,
        "udfType": _UDF_TYPES[f.kind],
        "visibility": None if f.visibility is None else {"kind": f.visibility},
        "args": f.args_json,
        "returns": f.returns_json,
    }


def _crons(analysis: Analysis | None) -> dict[str, Any]:
    if analysis is None or analysis.crons_json is None:
        return {}
    found = json.loads(analysis.crons_json)
    if isinstance(found, str):  # export() is JSON text of the table
        found = json.loads(found)
    return found if isinstance(found, dict) else {}


def _schema(prepared: PreparedPush) -> Any:
    if prepared.analysis.schema_json is None:
        return None
    return prepared.new_schema.to_json()


def auth_providers(analysis: Analysis | None) -> list[dict[str, Any]]:
    """``appAuth``: the providers of ``auth.config`` as the CLI reads them."""
    if analysis is None or analysis.auth_config_json is None:
        return []
    config = json.loads(analysis.auth_config_json)
    providers = config.get("providers") if isinstance(config, dict) else None
    return [p for p in providers or [] if isinstance(p, dict)]


def schema_change(prepared: PreparedPush) -> dict[str, Any]:
    return {
        "allocatedComponentIds": {},
        "schemaIds": {ROOT: prepared.push_id or None},
        "indexDiffs": {ROOT: prepared.index_diff},
    }


def start_push_response(prepared: PreparedPush) -> dict[str, Any]:
    analysis = prepared.analysis
    paths = [m.path for m in prepared.modules if m.environment == "isolate"]
    paths += [m.path for m in prepared.modules if m.environment != "isolate"]
    routes = [{"path": r.path, "method": r.method} for r in analysis.http_routes]
    return {
        "environmentVariables": dict(prepared.env),
        "externalDepsId": None,
        "componentDefinitionPackages": {ROOT: None},
        "appAuth": auth_providers(analysis),
        "analysis": {
            ROOT: {
                "definition": {
                    "path": ROOT,
                    "definitionType": {"type": "app"},
                    "childComponents": [],
                    "httpMounts": {},
                    "exports": {"type": "branch", "branch": []},
                    "envVars": [],
                },
                "schema": _schema(prepared),
                "functions": functions_by_module(analysis, sorted(paths)),
                "udfConfig": {
                    "serverVersion": prepared.udf_server_version or "",
                    "importPhaseRngSeed": None,
                    "importPhaseUnixTimestamp": None,
                },
            }
        },
        "app": {
            "definitionPath": ROOT,
            "componentPath": ROOT,
            "args": {},
            "childComponents": {},
            "httpRoutes": {"httpModuleRoutes": routes or None, "mounts": []},
            "exports": {},
        },
        "schemaChange": schema_change(prepared),
        PUSH_ID_KEY: prepared.push_id,
    }


def schema_status(status: SchemaStatus) -> dict[str, Any]:
    """``wait_for_schema``'s answer (failed, complete or in progress with counts)."""
    if status.error is not None:
        return {
            "type": "failed",
            "error": status.error,
            "componentPath": ROOT if status.table is None else split_table(status.table)[0],
            "tableName": None if status.table is None else split_table(status.table)[1],
        }
    if status.complete:
        return {"type": "complete"}
    return {
        "type": "inProgress",
        "components": {
            ROOT: {
                "schemaValidationComplete": status.validation_complete,
                "indexesComplete": status.indexes_complete,
                "indexesTotal": status.indexes_total,
            }
        },
    }


def empty_finish_diff() -> dict[str, Any]:
    """What a dry run's finish answers (the reference: an empty diff, nothing changed)."""
    return {"authDiff": {"added": [], "removed": []}, "definitionDiffs": {}, "componentDiffs": {}}


def finish_push_diff(
    prepared: PreparedPush, previous: Deployment | None, removed: tuple[str, ...]
) -> dict[str, Any]:
    before = {m.path for m in previous.modules} if previous is not None else set()
    after = [m.path for m in prepared.modules]
    old_analysis = None if previous is None else previous.analysis
    old_auth = {_canonical(p) for p in auth_providers(old_analysis)}
    new_auth = {_canonical(p) for p in auth_providers(prepared.analysis)}
    old_crons, new_crons = _crons(old_analysis), _crons(prepared.analysis)
    old_version = None if previous is None else previous.udf_server_version
    new_version = prepared.udf_server_version
    version_diff = None
    if new_version is not None and new_version != old_version:
        version_diff = {
            "previous_version": old_version or "Unspecified version",
            "next_version": new_version,
        }
    schema_diff = None
    if not prepared.schema_unchanged:
        schema_diff = {
            "previous_schema": None if previous is None else _schema_text(old_analysis),
            "next_schema": _schema_text(prepared.analysis),
        }
    diff = prepared.index_diff
    return {
        "authDiff": {"added": sorted(new_auth - old_auth), "removed": sorted(old_auth - new_auth)},
        "definitionDiffs": {},
        "componentDiffs": {
            ROOT: {
                "diffType": {"type": "create" if previous is None else "modify"},
                "moduleDiff": {
                    "added": [p for p in after if p not in before],
                    "removed": list(removed),
                },
                "udfConfigDiff": version_diff,
                "cronDiff": {
                    "added": sorted(set(new_crons) - set(old_crons)),
                    "updated": sorted(
                        n for n in set(new_crons) & set(old_crons) if new_crons[n] != old_crons[n]
                    ),
                    "deleted": sorted(set(old_crons) - set(new_crons)),
                },
                "indexDiff": {
                    "added_indexes": diff["added_indexes"],
                    "removed_indexes": diff["removed_indexes"],
                    "enabled_indexes": diff["enabled_indexes"],
                    "disabled_indexes": diff["disabled_indexes"],
                },
                "schemaDiff": schema_diff,
            }
        },
    }


def _schema_text(analysis: Analysis | None) -> str | None:
    return None if analysis is None else analysis.schema_json


def _canonical(provider: dict[str, Any]) -> str:
    return json.dumps(provider, sort_keys=True, separators=(",", ":"))


def module_hashes(deployment: Deployment | None) -> list[dict[str, str]]:
    """``get_config_hashes``' ``moduleHashes``: what the CLI may send as hashes only."""
    if deployment is None:
        return []
    return [
        {"path": m.path, "hash": m.sha256, "environment": m.environment} for m in deployment.modules
    ]
