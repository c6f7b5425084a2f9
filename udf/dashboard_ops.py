"""The dashboard's `_system/dashboard/ops:*` functions (see `udf.dashboard_functions`).

Each handler is `(context, tx, args) -> value`, registered by its path."""

from __future__ import annotations

from typing import Any

QUERIES: dict[str, Any] = {}
MUTATIONS: dict[str, Any] = {}
