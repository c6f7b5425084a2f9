"""Function handles: strings naming one function of one component instance.

Convex's form (``crates/common/src/bootstrap_model/components/handles.rs``) is
``function://<id>#<name>``: ``<id>`` a document id in ``_function_handles``,
``<name>`` the function's path. Convex stores one document per handle; here no
document is stored: the id is a digest of (component path, function path), so
the same function always gets the same handle, and the name part carries the
component path and function path, which the id vouches for.
"""

from __future__ import annotations

import hashlib

from engine.errors import InvalidIdError
from engine.ids import decode_id, encode_id
from engine.system_tables import FUNCTION_HANDLES_TABLE, SYSTEM_TABLE_NUMBERS
from udf.errors import SyscallError

PREFIX = "function://"
_TABLE_NUMBER = SYSTEM_TABLE_NUMBERS[FUNCTION_HANDLES_TABLE]


def handle_id(component_path: str, udf_path: str) -> str:
    """The fixed ``_function_handles`` id of one function of one instance."""
    digest = hashlib.sha256(f"{component_path}\x00{udf_path}".encode()).digest()
    return encode_id(_TABLE_NUMBER, digest[:16])


def create_handle(component_path: str, udf_path: str) -> str:
    """``function://<id>#<component path>/<udf path>`` (the name part is advisory in
    Convex; here it also says which function the id stands for)."""
    where = f"{component_path}/{udf_path}" if component_path else udf_path
    return f"{PREFIX}{handle_id(component_path, udf_path)}#{where}"


def resolve_handle(handle: object) -> tuple[str, str]:
    """(component path, udf path) a handle names; Convex's error text otherwise."""
    if not isinstance(handle, str) or not handle.startswith(PREFIX):
        raise SyscallError(f"Invalid function handle {handle}")
    id_text, _, name = handle[len(PREFIX) :].partition("#")
    try:
        parsed = decode_id(id_text)
    except InvalidIdError as exc:
        raise SyscallError(f"Invalid function handle {handle}") from exc
    # Module paths have folders too: find the split whose id matches.
    for cut in [i for i, ch in enumerate(name) if ch == "/"] + [-1]:
        component_path = name[:cut] if cut >= 0 else ""
        udf_path = name[cut + 1 :]
        if parsed.table_number == _TABLE_NUMBER and handle_id(component_path, udf_path) == id_text:
            return component_path, udf_path
    raise SyscallError(f"Invalid function handle {handle}")
