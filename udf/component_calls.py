"""Which function a nested call, a schedule or a function handle names, from where.

The npm package sends one of three function addresses (``getFunctionAddress``
in convex-js ``src/server/components/paths.ts``): ``{name}`` — a function of the
calling component itself, any visibility; ``{reference}`` — ``_reference/
childComponent/<child>/<module path...>/<export>`` from ``components.x.y.z``, a
*public* function of a child of the calling component (an internal one is not
exported: Convex's ``ComponentsModel::resolve_export``, crates/model/src/
components/mod.rs), or ``_reference/function/<udf path>`` in the caller;
``{functionHandle}`` — whatever function of whichever instance the handle names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.components import child_path
from udf.errors import SyscallError
from udf.function_handles import resolve_handle

REFERENCE_PREFIX = "_reference/"


@dataclass(frozen=True)
class FunctionAddress:
    component_path: str
    udf_path: str  # "lib:check"


def resolve_address(
    deployment: Any, caller_path: str, args: dict[str, Any], syscall: str
) -> FunctionAddress:
    """The function the syscall's ``name``/``reference``/``functionHandle`` names."""
    handle, name, reference = args.get("functionHandle"), args.get("name"), args.get("reference")
    if isinstance(handle, str):
        return FunctionAddress(*resolve_handle(deployment, handle))
    if isinstance(name, str) and reference is None:
        return FunctionAddress(caller_path, name)
    if isinstance(reference, str) and name is None:
        return _resolve_reference(deployment, caller_path, reference)
    raise SyscallError(
        f"Invalid arguments for {syscall}: exactly one of name, reference or functionHandle "
        "must be given."
    )


def _resolve_reference(deployment: Any, caller_path: str, reference: str) -> FunctionAddress:
    parts = reference.split("/")
    if len(parts) < 2 or parts[0] + "/" != REFERENCE_PREFIX:
        raise SyscallError(f"Invalid reference: {reference}")
    kind, rest = parts[1], parts[2:]
    if kind == "function" and rest:
        return FunctionAddress(caller_path, "/".join(rest))
    if kind == "componentArgument":
        raise SyscallError("Component argument references are not supported.")
    if kind != "childComponent" or not rest:
        raise SyscallError(f"Invalid reference {reference}")
    child, attributes = rest[0], rest[1:]
    path = child_path(caller_path, child)
    tree = None if deployment is None else deployment.tree
    if tree is None or tree.instance(path) is None:
        raise SyscallError(f'Child component "{child}" not found')
    if len(attributes) < 2:
        raise SyscallError(f'Child component "{child}" does not export {_shown(attributes)}')
    module, export = "/".join(attributes[:-1]), attributes[-1]
    child_deployment = deployment.for_component(path)
    info = None if child_deployment is None else child_deployment.function(f"{module}.js", export)
    if info is None or info.visibility != "public":
        raise SyscallError(f'Child component "{child}" does not export {_shown(attributes)}')
    return FunctionAddress(path, info.udf_path)


def _shown(attributes: list[str]) -> str:
    return "[" + ", ".join(f'"{a}"' for a in attributes) + "]"
