"""Component namespaces: how a component instance's tables and modules are named inside.

Every component instance has a path: ``""`` for the app, ``"limiter"`` for the
app's ``app.use(limiter)``, ``"workpool/batchWorker"`` for a component a
component installed. Its tables live in the one catalog under a qualified name,
``"<component path>/<table>"`` (the app's keep their plain names), so table
numbers, ids, indexes, OCC, the log and every projection work unchanged and an
id can never name a table of two components. Table and component names are
identifiers, so the last ``/`` always separates the table from its component.

A component *definition* (a folder with ``convex.config.js``) has one module
set however many instances use it; its modules are stored under a key naming
the definition path (the app's: ``""``).
"""

from __future__ import annotations

from engine.values import check_table_name, is_identifier

ROOT = ""  # the app's component path and definition path
SEPARATOR = "/"


def qualified_table(component_path: str, table: str) -> str:
    """The catalog's name of ``table`` in the component at ``component_path``."""
    return table if component_path == ROOT else f"{component_path}{SEPARATOR}{table}"


def split_table(qualified: str) -> tuple[str, str]:
    """(component path, table name as the component knows it) of a catalog name."""
    component, sep, table = qualified.rpartition(SEPARATOR)
    return (component, table) if sep else (ROOT, qualified)


def component_of_table(qualified: str) -> str:
    return split_table(qualified)[0]


def in_component(qualified: str, component_path: str) -> bool:
    """Whether a catalog table belongs to the component (system tables belong to all)."""
    component, table = split_table(qualified)
    return component == component_path or (component == ROOT and table.startswith("_"))


def child_path(parent: str, name: str) -> str:
    """The path of the child ``name`` installed by the component at ``parent``."""
    return name if parent == ROOT else f"{parent}{SEPARATOR}{name}"


def parent_path(path: str) -> str | None:
    """The installing component's path (None for the app)."""
    if path == ROOT:
        return None
    return path.rpartition(SEPARATOR)[0]


def module_key(definition_path: str, module_path: str) -> str:
    """The natural key of a module in ``_modules`` (the app's modules keep their path)."""
    return module_path if definition_path == ROOT else f"{definition_path}//{module_path}"


def check_qualified_table_name(table: str) -> None:
    """A user table name, alone (the app's) or after its component's path."""
    component, sep, name = (
        table.rpartition(SEPARATOR) if isinstance(table, str) else ("", "", table)
    )
    check_table_name(name)
    if sep and not all(is_identifier(part) for part in component.split(SEPARATOR)):
        check_table_name(table)  # raises: the whole name is no valid table name
