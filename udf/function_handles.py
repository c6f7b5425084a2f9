"""Function handles: strings naming one function of one component instance.

Convex's form (``crates/common/src/bootstrap_model/components/handles.rs``) is
``function://<id>#<name>``: ``<id>`` a document id in ``_function_handles``,
``<name>`` the function's path (``lib:add``), advisory only: the id alone says
which function. Convex stores one document per function; here no document is
stored: the id is a digest of (component path, function path), so the same
function always gets the same handle, and a handle is resolved by finding the
deployed function whose id it is. A handle of a function that is not deployed
(any more) is "Function handle not found", as Convex's ``FunctionHandlesModel``
(crates/model/src/components/handles.rs) says.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.errors import InvalidIdError
from engine.ids import decode_id, encode_id
from engine.system_tables import FUNCTION_HANDLES_TABLE, SYSTEM_TABLE_NUMBERS
from udf.errors import SyscallError

PREFIX = "function://"
NOT_FOUND = "Function handle not found"
_TABLE_NUMBER = SYSTEM_TABLE_NUMBERS[FUNCTION_HANDLES_TABLE]


def handle_id(component_path: str, udf_path: str) -> str:
    """The fixed ``_function_handles`` id of one function of one instance."""
    digest = hashlib.sha256(f"{component_path}\x00{udf_path}".encode()).digest()
    return encode_id(_TABLE_NUMBER, digest[:16])


def create_handle(deployment: Any, component_path: str, udf_path: str) -> str:
    """``function://<id>#<udf path>`` of a deployed function."""
    info = _function(deployment, component_path, udf_path)
    if info is None:
        raise SyscallError(NOT_FOUND)
    return f"{PREFIX}{handle_id(component_path, info.udf_path)}#{info.udf_path}"


def resolve_handle(deployment: Any, handle: object) -> tuple[str, str]:
    """(component path, udf path) of the deployed function a handle names."""
    if not isinstance(handle, str) or not handle.startswith(PREFIX):
        raise SyscallError(f"Invalid function handle {handle}")
    id_text = handle[len(PREFIX) :].partition("#")[0]
    try:
        parsed = decode_id(id_text)
    except InvalidIdError as exc:
        raise SyscallError(f"Invalid function handle {handle}") from exc
    if parsed.table_number != _TABLE_NUMBER or deployment is None:
        raise SyscallError(NOT_FOUND)
    for path in deployment.tree.instances:
        code = deployment.for_component(path)
        if code is None:
            continue
        for info in code.analysis.functions:
            if info.kind != "httpAction" and handle_id(path, info.udf_path) == id_text:
                return path, info.udf_path
    raise SyscallError(NOT_FOUND)


def _function(deployment: Any, component_path: str, udf_path: str) -> Any:
    code = None if deployment is None else deployment.for_component(component_path)
    if code is None:
        return None
    module, _, export = udf_path.partition(":")
    return code.function(f"{module.removesuffix('.js')}.js", export or "default")
