"""Argument and return validation of function calls, with the parsed validators cached
by their JSON text (a deployment's functions share few distinct validators; the cache
is bounded and emptied on every deploy)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.errors import HeadwaterError
from engine.limits import Limits
from engine.validation import validate
from engine.validators import parse_validator
from udf.outcome import FunctionInfo


class CallValidators:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._parsed: dict[str, Any] = {}

    def clear(self) -> None:
        self._parsed = {}

    def args_problem(
        self, info: FunctionInfo, args: dict[str, Any], table_of_id: Callable[[str], str | None]
    ) -> str | None:
        """Why ``args`` fail the function's argument validator (Convex's text), or None."""
        return self._problem(info.args_json, args, table_of_id, "ArgumentValidationError")

    def returns_problem(
        self, info: FunctionInfo, value: Any, table_of_id: Callable[[str], str | None]
    ) -> str | None:
        """Why ``value`` fails the function's returns validator (Convex's text), or None."""
        return self._problem(info.returns_json, value, table_of_id, "ReturnsValidationError")

    def _problem(
        self,
        text: str | None,
        value: Any,
        table_of_id: Callable[[str], str | None],
        kind: str,
    ) -> str | None:
        validator = self._validator(text)
        if validator is None:
            return None
        try:
            validate(validator, value, table_of_id=table_of_id)
        except HeadwaterError as exc:
            return f"{kind}: {exc.message}"
        return None

    def _validator(self, text: str | None) -> Any:
        if text is None or text == "null":
            return None
        found = self._parsed.get(text)
        if found is None:
            if len(self._parsed) >= self._limits.validator_cache_entries_max:
                self._parsed.clear()
            found = self._parsed[text] = parse_validator(json.loads(text))
        return found
