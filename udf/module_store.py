"""Module documents in ``_modules``: one per module of each definition, keyed by
``module_key(definition path, module path)`` (the app's modules keep their path).

A module is stored as pushed (``source``, ``sourceMap``, ``environment``,
``sha256``: the CLI's form and hash, so a push can skip unchanged modules) and,
for isolate modules, in the compiled form the runtime loads (``runnable``,
``runnableMap``: a restart needs no Node).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.components import module_key
from engine.system_tables import MODULES_TABLE, keyed_system_id
from engine.transaction import Transaction
from udf.bundler import ISOLATE, BundledModule
from udf.module_compiler import RunnableModule, compile_modules


def write_modules(
    tx: Transaction,
    definition_path: str,
    modules: Iterable[BundledModule],
    runnable: Iterable[RunnableModule],
) -> set[str]:
    """Write one definition's modules; returns their keys."""
    compiled = {r.path: r for r in runnable}
    keys = set()
    for module in modules:
        ready = compiled.get(module.path)
        key = module_key(definition_path, module.path)
        keys.add(key)
        tx.write_system(
            MODULES_TABLE,
            keyed_system_id(MODULES_TABLE, key),
            {
                "path": module.path,
                "source": module.source,
                "sourceMap": module.source_map,
                "environment": module.environment,
                "sha256": module.sha256,
                "runnable": None if ready is None else ready.code,
                "runnableMap": None if ready is None else ready.source_map,
            },
        )
    return keys


def delete_modules(tx: Transaction, keys: Iterable[str]) -> None:
    for key in keys:
        tx.write_system(MODULES_TABLE, keyed_system_id(MODULES_TABLE, key), None)


def read_modules(
    tx: Transaction, definition_path: str, paths: Iterable[str]
) -> tuple[tuple[BundledModule, ...], tuple[RunnableModule, ...]]:
    """One definition's modules as pushed and as the runtime loads them."""
    modules = []
    runnable = []
    for path in paths:
        doc: Any = tx.get(keyed_system_id(MODULES_TABLE, module_key(definition_path, path)))
        module = BundledModule(
            doc["path"], doc["source"], doc["sourceMap"], doc.get("environment", ISOLATE)
        )
        modules.append(module)
        if doc.get("runnable") is not None:
            runnable.append(RunnableModule(doc["path"], doc["runnable"], doc["runnableMap"]))
        elif module.environment == ISOLATE:  # stored before modules were compiled
            runnable.extend(compile_modules([module]))
    return tuple(modules), tuple(runnable)


def stored_keys(record: Any) -> set[str]:
    """Every module key a ``_deployment`` record names (the app's and each definition's)."""
    if record is None:
        return set()
    keys = set(record["modules"])
    definitions = (record.get("components") or {}).get("definitions") or {}
    for definition_path, stored in definitions.items():
        keys.update(module_key(definition_path, p) for p in stored["modules"])
    return keys
