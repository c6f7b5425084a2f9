"""A deployment: bundled modules and what they define, stored through the engine.

A deploy is one committed transaction: every module is a ``_modules``
document (fixed id per path), the ``_deployment`` document records the
analysis (functions, validators, auth config, crons) and the source hash,
modules that are gone are deleted, and the schema is applied (existing data
checked, new indexes backfilled). So a deploy is in the log, survives a
restart, and either happens whole or not at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from engine import Database
from engine.limits import LIMITS
from engine.schema import Schema, parse_schema
from engine.schema_apply import apply_schema
from engine.system_tables import (
    DEPLOYMENT_DOC_ID,
    DEPLOYMENT_TABLE,
    MODULES_TABLE,
    keyed_system_id,
)
from engine.transaction import Transaction
from udf.bundler import BundledModule
from udf.outcome import Analysis, FunctionInfo, HttpRoute

# Reading a deployment's code is not a user function: the per-call read limits do not apply.
_LOAD_LIMITS = dataclasses.replace(
    LIMITS, read_bytes_max=1 << 50, documents_read_max=1 << 40, index_ranges_max=1 << 40
)


@dataclass(frozen=True)
class Deployment:
    modules: tuple[BundledModule, ...]
    analysis: Analysis
    source_hash: str
    ts: int  # the commit ts of the deploy

    def function(self, module: str, name: str) -> FunctionInfo | None:
        return self.analysis.function(module, name)


def source_hash(modules: tuple[BundledModule, ...]) -> str:
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.path):
        for part in (module.path, module.source, module.source_map or ""):
            digest.update(part.encode())
            digest.update(b"\x00")
    return digest.hexdigest()


def analysis_to_json(analysis: Analysis) -> str:
    return json.dumps(
        {
            "functions": [dataclasses.asdict(f) for f in analysis.functions],
            "httpRoutes": [dataclasses.asdict(r) for r in analysis.http_routes],
            "schema": analysis.schema_json,
            "authConfig": analysis.auth_config_json,
            "crons": analysis.crons_json,
        },
        separators=(",", ":"),
    )


def analysis_from_json(text: str) -> Analysis:
    data = json.loads(text)
    return Analysis(
        functions=tuple(FunctionInfo(**f) for f in data["functions"]),
        http_routes=tuple(HttpRoute(**r) for r in data["httpRoutes"]),
        schema_json=data["schema"],
        auth_config_json=data["authConfig"],
        crons_json=data["crons"],
    )


def schema_of(analysis: Analysis) -> Schema:
    """The schema a deployment declares (no schema.ts: the empty schema, no validation)."""
    return Schema.empty() if analysis.schema_json is None else parse_schema(analysis.schema_json)


def store_deployment(
    tx: Transaction, modules: tuple[BundledModule, ...], analysis: Analysis
) -> list[str]:
    """Write a deployment inside ``tx``; returns the module paths it removed."""
    apply_schema(tx, schema_of(analysis))
    previous = tx.get(DEPLOYMENT_DOC_ID)
    before = set() if previous is None else set(previous["modules"])
    paths = [m.path for m in modules]
    for module in modules:
        tx.write_system(
            MODULES_TABLE,
            keyed_system_id(MODULES_TABLE, module.path),
            {"path": module.path, "source": module.source, "sourceMap": module.source_map},
        )
    removed = sorted(before - set(paths))
    for path in removed:
        tx.write_system(MODULES_TABLE, keyed_system_id(MODULES_TABLE, path), None)
    tx.write_system(
        DEPLOYMENT_TABLE,
        DEPLOYMENT_DOC_ID,
        {
            "modules": paths,
            "analysis": analysis_to_json(analysis),
            "sourceHash": source_hash(modules),
        },
    )
    return removed


def load_deployment(db: Database) -> Deployment | None:
    """The deployment in force at the newest ts, or None if nothing was deployed."""
    tx = db.begin(writable=False, limits=_LOAD_LIMITS)
    try:
        record = tx.get(DEPLOYMENT_DOC_ID)
        if record is None:
            return None
        modules = []
        for path in record["modules"]:
            doc: Any = tx.get(keyed_system_id(MODULES_TABLE, path))
            modules.append(BundledModule(doc["path"], doc["source"], doc["sourceMap"]))
        version = tx.snapshot.get(_storage_key(DEPLOYMENT_DOC_ID))
        ts = version[0] if version is not None else tx.snapshot_ts
        return Deployment(
            tuple(modules), analysis_from_json(record["analysis"]), record["sourceHash"], ts
        )
    finally:
        tx.close()


def _storage_key(doc_id: str) -> bytes:
    from engine.ids import decode_id

    return decode_id(doc_id).storage_key()
