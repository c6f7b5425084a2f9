"""Validators: the `v.*` type language of Convex, parsed from its JSON form.

Schemas (document types) and function arguments and return values are all
described by the same validator JSON (function-runtime §2.7):

    {"type": "null" | "number" | "bigint" | "commitTs" | "boolean" | "string"
             | "bytes" | "any"}
    {"type": "literal", "value": <convex JSON of a string, number, bigint or boolean>}
    {"type": "id", "tableName": "<table>"}
    {"type": "array", "value": <validator>}
    {"type": "record", "keys": <validator>, "values": {"fieldType": <validator>, "optional": false}}
    {"type": "object", "value": {"<field>": {"fieldType": <validator>, "optional": <bool>}}}
    {"type": "union", "value": [<validator>, ...]}

The legacy ``map`` and ``set`` types read as ``any``, as the reference server
does. ``number`` is Float64, ``bigint`` is Int64 (Python ``int``), and
``commitTs`` holds a commit timestamp, which is an Int64 once resolved.

A parsed validator is a tree of frozen dataclasses. Object fields are kept
sorted by name, so two validators that differ only in field order are equal
and ``validator_to_json`` gives back a dict equal to the one parsed.

Checking a value against a validator is ``engine.validation``; values as text
in messages, ``engine.value_text``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.convex_json import from_convex_json, to_convex_json
from engine.errors import InvalidValueError, SchemaError
from engine.limits import LIMITS
from engine.value_text import json_preview, render_key, render_value
from engine.values import is_identifier, values_equal

TableOfId = Callable[[str], "str | None"]
"""Maps a string to the table of the document id it encodes, or None if it is not an id."""

# --- the validator tree -----------------------------------------------------


@dataclass(frozen=True)
class Validator:
    """Base of every validator node."""


# The validators without parameters. ``VAny`` accepts every value; the others
# accept exactly one Python type (``VCommitTs``: a resolved commit ts, Int64).
@dataclass(frozen=True)
class VNull(Validator): ...


@dataclass(frozen=True)
class VFloat64(Validator): ...


@dataclass(frozen=True)
class VInt64(Validator): ...


@dataclass(frozen=True)
class VCommitTs(Validator): ...


@dataclass(frozen=True)
class VBoolean(Validator): ...


@dataclass(frozen=True)
class VString(Validator): ...


@dataclass(frozen=True)
class VBytes(Validator): ...


@dataclass(frozen=True)
class VAny(Validator): ...


@dataclass(frozen=True, eq=False)
class VLiteral(Validator):
    """Exactly one value; equality is Convex equality (``1n`` is not ``1``)."""

    value: str | int | float | bool

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VLiteral) and values_equal(self.value, other.value)

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, json.dumps(to_convex_json(self.value))))


@dataclass(frozen=True)
class VId(Validator):
    table_name: str


@dataclass(frozen=True)
class VArray(Validator):
    element: Validator


@dataclass(frozen=True)
class VRecord(Validator):
    keys: Validator
    values: Validator


@dataclass(frozen=True)
class FieldValidator:
    """One field of an object validator: ``v.optional(...)`` sets ``optional``."""

    validator: Validator
    optional: bool = False


@dataclass(frozen=True)
class VObject(Validator):
    """``fields`` is sorted by name; ``field_map`` is the same, for lookups."""

    fields: tuple[tuple[str, FieldValidator], ...]
    field_map: Mapping[str, FieldValidator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.fields, key=lambda item: item[0]))
        object.__setattr__(self, "fields", ordered)
        object.__setattr__(self, "field_map", dict(ordered))

    @classmethod
    def of(cls, fields: Mapping[str, Validator | FieldValidator]) -> VObject:
        """Build from a mapping; plain validators become required fields."""
        return cls(
            tuple(
                (name, f if isinstance(f, FieldValidator) else FieldValidator(f))
                for name, f in fields.items()
            )
        )


@dataclass(frozen=True)
class VUnion(Validator):
    members: tuple[Validator, ...]


# class: (JSON type, `v.*` text, the Python type it accepts or None for any)
_SIMPLE_KINDS: dict[type, tuple[str, str, type | None]] = {
    VNull: ("null", "v.null()", type(None)),
    VFloat64: ("number", "v.float64()", float),
    VInt64: ("bigint", "v.int64()", int),
    VCommitTs: ("commitTs", "v.commitTs()", int),
    VBoolean: ("boolean", "v.boolean()", bool),
    VString: ("string", "v.string()", str),
    VBytes: ("bytes", "v.bytes()", bytes),
    VAny: ("any", "v.any()", None),
}
_SIMPLE: dict[str, Validator] = {kind[0]: cls() for cls, kind in _SIMPLE_KINDS.items()}
_SIMPLE["map"] = _SIMPLE["set"] = VAny()  # legacy types, read as any
# The Python type each scalar validator accepts (what validation checks first).
SCALAR_TYPES: dict[type, type] = {
    cls: kind[2] for cls, kind in _SIMPLE_KINDS.items() if kind[2] is not None
}

# --- parsing ----------------------------------------------------------------


def _bad(path: str, reason: str) -> SchemaError:
    where = f" at {path}" if path else ""
    return SchemaError(f"Invalid validator{where}: {reason}")


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _member(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _bad(path, f'a "{obj.get("type")}" validator needs a "{key}" property')
    return obj[key]


def parse_validator(obj: object, *, path: str = "") -> Validator:
    """The validator that JSON ``obj`` describes; SchemaError naming ``path`` if malformed."""
    return _parse(obj, path, LIMITS.value_depth_max)


def _parse(obj: object, path: str, depth_left: int) -> Validator:
    if depth_left <= 0:
        raise _bad(path, f"validators nest more than {LIMITS.value_depth_max} levels deep")
    if type(obj) is not dict:
        raise _bad(path, f"expected a validator object, got {json_preview(obj)}")
    kind = obj.get("type")
    if type(kind) is not str:
        raise _bad(path, 'a validator needs a string "type" property')
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple
    if kind == "literal":
        return _parse_literal(_member(obj, "value", path), _join(path, "value"))
    if kind == "id":
        table = _member(obj, "tableName", path)
        # A component's table is named "<component path>/<table>" (engine.components)
        # once its schema is placed in the deployment's catalog.
        if not isinstance(table, str) or not all(is_identifier(p) for p in table.split("/")):
            raise _bad(path, f"v.id() needs an identifier table name, got {json_preview(table)}")
        return VId(table)
    if kind == "array":
        return VArray(_parse(_member(obj, "value", path), _join(path, "value"), depth_left - 1))
    if kind == "record":
        return _parse_record(obj, path, depth_left)
    if kind == "object":
        return _parse_object(_member(obj, "value", path), _join(path, "value"), depth_left)
    if kind == "union":
        members = _member(obj, "value", path)
        if type(members) is not list:
            raise _bad(path, f"v.union() needs a list of validators, got {json_preview(members)}")
        return VUnion(
            tuple(
                _parse(m, f"{_join(path, 'value')}[{i}]", depth_left - 1)
                for i, m in enumerate(members)
            )
        )
    raise _bad(path, f"unknown validator type {json_preview(kind)}")


def _parse_literal(raw: object, path: str) -> VLiteral:
    try:
        value = from_convex_json(raw, path=path)
    except InvalidValueError as exc:
        raise _bad(path, f"v.literal() holds an invalid value: {exc}") from None
    if type(value) not in (str, int, float, bool):
        raise _bad(
            path,
            f"v.literal() must be a string, number, bigint or boolean, got {render_value(value)}",
        )
    return VLiteral(value)


def _parse_field(raw: object, path: str, depth_left: int) -> FieldValidator:
    if type(raw) is not dict:
        raise _bad(path, f'expected {{"fieldType": ..., "optional": ...}}, got {json_preview(raw)}')
    if "fieldType" not in raw:
        raise _bad(path, 'a field needs a "fieldType" property')
    optional = raw.get("optional")
    if type(optional) is not bool:
        raise _bad(path, 'a field needs a boolean "optional" property')
    inner = _parse(raw["fieldType"], _join(path, "fieldType"), depth_left - 1)
    return FieldValidator(inner, optional)


def _parse_object(raw: object, path: str, depth_left: int) -> VObject:
    if type(raw) is not dict:
        raise _bad(path, f"v.object() needs an object of fields, got {json_preview(raw)}")
    fields: list[tuple[str, FieldValidator]] = []
    for name, spec in raw.items():
        if not is_identifier(name):
            raise _bad(
                path,
                f"field name {json_preview(name)} is not an identifier (1 to "
                f"{LIMITS.identifier_chars_max} ASCII letters, digits and underscores, "
                "not starting with a digit)",
            )
        fields.append((name, _parse_field(spec, _join(path, name), depth_left)))
    return VObject(tuple(fields))


def _parse_record(obj: Mapping[str, Any], path: str, depth_left: int) -> VRecord:
    keys = _parse(_member(obj, "keys", path), _join(path, "keys"), depth_left - 1)
    values = _parse_field(_member(obj, "values", path), _join(path, "values"), depth_left)
    if not _is_record_key(keys):
        raise _bad(
            path,
            "Records can only have string keys (v.string(), v.id() or a union of those; "
            f"string literal keys are not supported), but the keys are `{describe(keys)}`",
        )
    if values.optional:
        raise _bad(path, "Records cannot have optional values")
    return VRecord(keys, values.validator)


def _is_record_key(v: Validator) -> bool:
    """Record keys are strings: v.string(), v.id(...), or unions of those (no literals)."""
    if isinstance(v, VUnion):
        return all(_is_record_key(m) for m in v.members)
    return isinstance(v, (VString, VId))


# --- back to JSON and to text ----------------------------------------------


def validator_to_json(validator: Validator) -> dict[str, Any]:
    """The validator JSON of ``validator``, as the npm package exports it."""
    simple = _SIMPLE_KINDS.get(type(validator))
    if simple is not None:
        return {"type": simple[0]}
    if isinstance(validator, VLiteral):
        return {"type": "literal", "value": to_convex_json(validator.value)}
    if isinstance(validator, VId):
        return {"type": "id", "tableName": validator.table_name}
    if isinstance(validator, VArray):
        return {"type": "array", "value": validator_to_json(validator.element)}
    if isinstance(validator, VRecord):
        return {
            "type": "record",
            "keys": validator_to_json(validator.keys),
            "values": {"fieldType": validator_to_json(validator.values), "optional": False},
        }
    if isinstance(validator, VObject):
        return {
            "type": "object",
            "value": {
                name: {"fieldType": validator_to_json(f.validator), "optional": f.optional}
                for name, f in validator.fields
            },
        }
    if isinstance(validator, VUnion):
        return {"type": "union", "value": [validator_to_json(m) for m in validator.members]}
    raise TypeError(f"not a validator: {validator!r}")


def describe(validator: Validator | FieldValidator) -> str:
    """The validator as the `v.*` expression that builds it, for messages."""
    if isinstance(validator, FieldValidator):
        inner = describe(validator.validator)
        return f"v.optional({inner})" if validator.optional else inner
    simple = _SIMPLE_KINDS.get(type(validator))
    if simple is not None:
        return simple[1]
    if isinstance(validator, VLiteral):
        return f"v.literal({render_value(validator.value)})"
    if isinstance(validator, VId):
        return f"v.id({json.dumps(validator.table_name)})"
    if isinstance(validator, VArray):
        return f"v.array({describe(validator.element)})"
    if isinstance(validator, VRecord):
        return f"v.record({describe(validator.keys)}, {describe(validator.values)})"
    if isinstance(validator, VObject):
        inner = ", ".join(f"{render_key(name)}: {describe(f)}" for name, f in validator.fields)
        return f"v.object({{{inner}}})"
    if isinstance(validator, VUnion):
        return f"v.union({', '.join(describe(m) for m in validator.members)})"
    raise TypeError(f"not a validator: {validator!r}")
