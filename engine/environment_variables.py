"""Deployment environment variables: a system table, so they live in the log.

Each variable is one ``_environment_variables`` document ``{"name", "value"}``
with a fixed id derived from its name, so setting a name twice replaces the
same document and a change is an ordinary commit: replay rebuilds the set, a
point-in-time read sees the values of its time, and a read of the table
conflicts with (and re-runs on) a change like any other read.

A change is one transaction holding a batch of sets and removes. Names and
values are checked before anything is written (Convex's rules and error
codes); the count and total size are checked on the set the batch leaves, so
a refused batch changes nothing.

``read_all`` scans the whole table inside a transaction; it records the
table's range in the read set, which is what a function reading
``process.env`` needs (a change re-runs the live queries that read it).

A snapshot export carries the variables; ``variables_from_export`` checks them
before an import writes anything and ``import_variables`` sets them in one commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import HeadwaterError
from engine.limits import LIMITS, Limits
from engine.system_tables import ENVIRONMENT_VARIABLES_TABLE, keyed_system_id
from engine.transaction import Transaction

# Convex's rule: a letter or underscore first, then letters, digits and underscores.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvironmentVariableError(HeadwaterError):
    """A bad environment variable name, value or set; ``code`` is Convex's."""

    code = "EnvironmentVariableNameInvalid"


@dataclass(frozen=True)
class EnvChange:
    """Set ``name`` to ``value``; ``value`` None removes it."""

    name: str
    value: str | None


def env_var_id(name: str) -> str:
    return keyed_system_id(ENVIRONMENT_VARIABLES_TABLE, name)


def check_name(name: object, limits: Limits = LIMITS) -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise EnvironmentVariableError(
            f"The environment variable name {name} is invalid. Environment variable names must "
            "begin with a letter and may only include characters a-z, A-Z, 0-9, and underscores.",
            code="EnvironmentVariableNameInvalid",
        )
    if len(name) > limits.env_var_name_chars_max:
        raise EnvironmentVariableError(
            f"The environment variable name {name} is too long. Environment variable names "
            f"must be less than {limits.env_var_name_chars_max}.",
            code="EnvironmentVariableNameTooLong",
        )
    return name


def check_value(value: object, limits: Limits = LIMITS) -> str:
    if not isinstance(value, str):
        raise EnvironmentVariableError(
            "An environment variable's value must be a string.",
            code="EnvironmentVariableValueInvalid",
        )
    size = len(value.encode())
    if size > limits.env_var_value_bytes_max:
        raise EnvironmentVariableError(
            f"The environment variable value is {size} bytes, which is too large. "
            f"(max size: {limits.env_var_value_bytes_max})",
            code="EnvironmentVariableValueTooLarge",
        )
    return value


def read_all(tx: Transaction) -> dict[str, str]:
    """Every variable at the transaction's snapshot (its writes included), by name.

    Records the table's whole range in the read set."""
    docs = tx.query(ENVIRONMENT_VARIABLES_TABLE).collect()
    return {doc["name"]: doc["value"] for doc in sorted(docs, key=lambda d: d["name"])}


def apply_changes(
    tx: Transaction, changes: Iterable[EnvChange], limits: Limits = LIMITS
) -> dict[str, str]:
    """Write a batch of sets and removes inside ``tx``; returns the resulting set.

    Every name and value is checked first; removes apply before sets (Convex's
    order), so a batch may remove and set one name. Raises (writing nothing
    the caller will commit) when the result passes the count or size limit.
    """
    batch = [_checked(change, limits) for change in changes]
    current = read_all(tx)
    result = dict(current)
    for change in sorted(batch, key=lambda c: c.value is not None):
        if change.value is None:
            result.pop(change.name, None)
        else:
            result[change.name] = change.value
    _check_totals(result, limits)
    for name in sorted(set(current) | set(result)):
        if current.get(name) == result.get(name):
            continue
        value = result.get(name)
        tx.write_system(
            ENVIRONMENT_VARIABLES_TABLE,
            env_var_id(name),
            None if value is None else {"name": name, "value": value},
        )
    return result


def variables_from_export(text: bytes) -> tuple[EnvChange, ...]:
    """The variables of an export's ``_environment_variables/documents.jsonl``, checked
    by the same rules as a change, so a bad file is refused before an import writes."""
    found = []
    for line in text.decode().splitlines():
        doc = json.loads(line) if line.strip() else None
        if not isinstance(doc, dict):
            raise EnvironmentVariableError(
                "An exported environment variable line is not a document.",
                code="InvalidValue",
            )
        found.append(EnvChange(check_name(doc.get("name")), check_value(doc.get("value"))))
    return tuple(found)


def import_variables(
    db: Any, variables: Iterable[EnvChange], *, replace: bool = False
) -> int | None:
    """Set ``variables`` in one commit (``replace``: removing every other); the commit ts,
    or None when nothing changed. ``db`` is an ``engine.Database``."""
    batch = list(variables)

    def write(tx: Transaction) -> bool:
        removals = [EnvChange(name, None) for name in read_all(tx)] if replace else []
        apply_changes(tx, [*removals, *batch])
        return tx.has_writes()

    result = db.mutate(write)
    return int(result.ts) if result.value else None


def _checked(change: EnvChange, limits: Limits) -> EnvChange:
    check_name(change.name, limits)
    if change.value is not None:
        check_value(change.value, limits)
    return change


def _check_totals(result: Mapping[str, str], limits: Limits) -> None:
    if len(result) > limits.env_vars_max:
        raise EnvironmentVariableError(
            f"The environment variable limit ({limits.env_vars_max}) has been met.",
            code="EnvVarLimitMet",
        )
    total = sum(len(name.encode()) + len(value.encode()) for name, value in result.items())
    if total > limits.env_vars_total_bytes_max:
        raise EnvironmentVariableError(
            f"The total size of all environment variables ({total} bytes) exceeds the limit "
            f"({limits.env_vars_total_bytes_max} bytes).",
            code="EnvVarTotalSizeLimitMet",
        )
