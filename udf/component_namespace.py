"""What a component instance's functions see of the one catalog: their own tables.

Inside the instance at ``path`` a table ``t`` is the catalog's ``"<path>/t"``
(``engine.components``); the app's tables keep their plain names. Convex gives
every component its own table namespace (``TableNamespace::ByComponent``), so an
id of another component's table names no table there: ``db.get`` answers null
and a write is one on a nonexistent document (``UserFacingModel::get_with_ts``
in ``crates/database/src/bootstrap_model/user_facing.rs``). System tables are
shared by every instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.components import ROOT, qualified_table, split_table
from engine.errors import InvalidIdError
from engine.ids import decode_id
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE

# The field of a scheduled job naming the component that scheduled it (absent: the app).
JOB_NAMESPACE_FIELD = "namespace"


@dataclass(frozen=True)
class ComponentNamespace:
    path: str = ROOT

    @property
    def is_app(self) -> bool:
        return self.path == ROOT

    def table(self, name: str) -> str:
        """The catalog name of the component's ``name`` (system tables stay as they are)."""
        if not isinstance(name, str) or name.startswith("_"):
            return name
        return qualified_table(self.path, name)

    def owns(self, qualified: str | None) -> bool:
        """Whether a catalog table is one this component's functions may touch."""
        if qualified is None:
            return True  # no such table: the engine answers as for any missing table
        component, name = split_table(qualified)
        return component == self.path or (component == ROOT and name.startswith("_"))

    def local(self, qualified: str) -> str:
        """A catalog name as the component knows it."""
        return split_table(qualified)[1]

    def table_numbers(self, numbers: Mapping[str, int]) -> dict[str, int]:
        """The ``name -> number`` map the runtime sees (``db.normalizeId``)."""
        return {self.local(name): n for name, n in numbers.items() if self.owns(name)}

    def foreign_id(self, doc_id: object, table_name_of: object) -> bool:
        """Whether ``doc_id`` is an id of a table of another component (or the app)."""
        if self.is_app and not isinstance(doc_id, str):
            return False
        try:
            number = decode_id(doc_id).table_number
        except InvalidIdError:
            return False
        return not self.owns(table_name_of(number))  # type: ignore[operator]

    def scope_system_query(self, raw: Any) -> Any:
        """A query of ``_scheduled_functions`` narrowed to the jobs this component
        scheduled (Convex keeps them in each component's own system table)."""
        source = raw.get("source") if isinstance(raw, dict) else None
        if not isinstance(source, dict):
            return raw
        table = source.get("tableName") or str(source.get("indexName", "")).partition(".")[0]
        if table != SCHEDULED_FUNCTIONS_TABLE:
            return raw
        mine = {"$undefined": None} if self.is_app else self.path
        own = {"$eq": [{"$field": JOB_NAMESPACE_FIELD}, {"$literal": mine}]}
        return {**raw, "operators": [{"filter": own}, *(raw.get("operators") or [])]}

    def sees_system_document(self, doc_id: str, doc: Mapping[str, Any], tx: Any) -> bool:
        """Whether a document read by id is this component's (a job of another is not)."""
        if JOB_NAMESPACE_FIELD not in doc and self.is_app:
            return True
        table = tx.table_name(decode_id(doc_id).table_number)
        if table != SCHEDULED_FUNCTIONS_TABLE:
            return True
        return doc.get(JOB_NAMESPACE_FIELD, ROOT) == self.path


APP_NAMESPACE = ComponentNamespace(ROOT)
