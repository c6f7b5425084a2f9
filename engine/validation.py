"""Validation: does a value match a validator, and if not, Convex's message why.

Validation finds the first problem and reports it the way Convex does: what
went wrong, the path of the offending part (``.author.name``, ``.tags[2]``),
the value found and the validator expected. Success allocates nothing for
paths: a failure collects its path on the way back up. Apart from the
validator tree (``engine.validators``) because it runs on every write and
every call, while parsing runs once per push.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.errors import SchemaValidationError
from engine.validators import (
    SCALAR_TYPES,
    TableOfId,
    Validator,
    VAny,
    VArray,
    VId,
    VLiteral,
    VObject,
    VRecord,
    VUnion,
    describe,
)
from engine.value_text import render_value
from engine.values import UNSET, is_identifier, values_equal


class _Failure:
    """What is wrong and where; the path grows as the failure leaves each container.

    The text is built only when a message is wanted: a union tries members
    that fail, and those failures are dropped unread.
    """

    __slots__ = ("_text", "segments")

    def __init__(self, text: Callable[[], tuple[str, tuple[tuple[str, str], ...]]]) -> None:
        self._text = text
        self.segments: list[str] = []  # innermost first

    def at(self, segment: str) -> _Failure:
        self.segments.append(segment)
        return self

    def message(self, prefix: str) -> str:
        head, details = self._text()
        path = prefix + "".join(reversed(self.segments))
        lines = [head]
        if path:
            lines.append(f"Path: {path}")
        lines.extend(f"{label}: {text}" for label, text in details)
        return "\n".join(lines)


def _field_segment(name: str) -> str:
    return "." + name if is_identifier(name) else "[" + json.dumps(name) + "]"


def _no_match(validator: Validator, value: object) -> _Failure:
    return _Failure(
        lambda: (
            "Value does not match validator.",
            (("Value", render_value(value)), ("Validator", describe(validator))),
        )
    )


def _object_problem(head: str, obj: object, validator: Validator) -> _Failure:
    return _Failure(
        lambda: (head, (("Object", render_value(obj)), ("Validator", describe(validator))))
    )


def _sentence(text: Callable[[], str]) -> _Failure:
    return _Failure(lambda: (text(), ()))


def _check(v: Validator, value: object, table_of_id: TableOfId) -> _Failure | None:
    expected = SCALAR_TYPES.get(type(v))
    if expected is not None:
        return None if type(value) is expected else _no_match(v, value)
    if isinstance(v, VAny):
        return None if value is not UNSET else _no_match(v, value)
    if isinstance(v, VObject):
        return _check_object(v, value, table_of_id)
    if isinstance(v, VArray):
        if type(value) is not list:
            return _no_match(v, value)
        for index, item in enumerate(value):  # type: ignore[arg-type]
            failure = _check(v.element, item, table_of_id)
            if failure is not None:
                return failure.at(f"[{index}]")
        return None
    if isinstance(v, VUnion):
        return _check_union(v, value, table_of_id)
    if isinstance(v, VLiteral):
        if values_equal(value, v.value):
            return None
        return _sentence(
            lambda: f"`{render_value(value)}` does not match literal validator `{describe(v)}`."
        )
    if isinstance(v, VId):
        return _check_id(v, value, table_of_id)
    if isinstance(v, VRecord):
        return _check_record(v, value, table_of_id)
    raise TypeError(f"not a validator: {v!r}")


def _check_object(v: VObject, value: object, table_of_id: TableOfId) -> _Failure | None:
    if type(value) is not dict:
        return _no_match(v, value)
    obj: dict[str, Any] = value  # type: ignore[assignment]
    for name, spec in v.fields:
        item = obj.get(name, UNSET)
        if item is UNSET:
            if spec.optional:
                continue
            return _object_problem(
                f"Object is missing the required field `{name}`. Consider wrapping the field "
                "validator in `v.optional(...)` if this is expected.",
                obj,
                v,
            )
        failure = _check(spec.validator, item, table_of_id)
        if failure is not None:
            return failure.at(_field_segment(name))
    known = v.field_map
    for name, item in obj.items():
        if name not in known and item is not UNSET:
            return _object_problem(
                f"Object contains extra field `{name}` that is not in the validator.", obj, v
            )
    return None


def _check_union(v: VUnion, value: object, table_of_id: TableOfId) -> _Failure | None:
    if len(v.members) == 1:
        return _check(v.members[0], value, table_of_id)
    for member in v.members:
        if _check(member, value, table_of_id) is None:
            return None
    return _no_match(v, value)


def _check_id(v: VId, value: object, table_of_id: TableOfId) -> _Failure | None:
    if type(value) is not str:
        return _no_match(v, value)
    table = table_of_id(value)  # type: ignore[arg-type]
    if table is None:
        return _no_match(v, value)
    if table == v.table_name:
        return None
    source = "a system table" if table.startswith("_") else f"table `{table}`"
    return _sentence(
        lambda: (
            f"Found ID {json.dumps(value)} from {source}, which does not match the table "
            f"name in validator `{describe(v)}`."
        )
    )


def _bad_key(key: str, keys: Validator) -> _Failure:
    return _Failure(
        lambda: (
            f"Record key {json.dumps(key)} does not match the record's key validator.",
            (("Validator", describe(keys)),),
        )
    )


def _check_record(v: VRecord, value: object, table_of_id: TableOfId) -> _Failure | None:
    if type(value) is not dict:
        return _no_match(v, value)
    for key, item in value.items():  # type: ignore[attr-defined]
        if item is UNSET:
            continue
        if _check(v.keys, key, table_of_id) is not None:
            return _bad_key(key, v.keys)
        failure = _check(v.values, item, table_of_id)
        if failure is not None:
            return failure.at(_field_segment(key))
    return None


def validate(
    validator: Validator, value: object, *, path: str = "", table_of_id: TableOfId
) -> None:
    """Raise SchemaValidationError unless ``value`` matches ``validator``.

    The message names the offending part's path (after ``path``), what was
    found and what was expected. ``table_of_id`` tells ``v.id`` validators
    which table a string is an id of (None: not an id at all).
    """
    failure = _check(validator, value, table_of_id)
    if failure is not None:
        raise SchemaValidationError(failure.message(path))


def matches(validator: Validator, value: object, *, table_of_id: TableOfId) -> bool:
    """True if ``value`` matches ``validator`` (no message is built)."""
    return _check(validator, value, table_of_id) is None
