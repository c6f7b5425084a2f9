"""V8 call sites of an uncaught error, mapped and printed as Convex prints them.

Source: get-convex/convex-backend ``crates/common/src/errors.rs`` (``JsError::from_frames``,
``impl Display for FrameData``, ``format_location``). The runtime hands over each call
site's fields (``udf/js/errors.js``); here, as there:

- a frame in a module with a source map takes the mapped file, line and column; a frame in
  a file with no map (our runtime) is dropped; a frame with no file (``native``,
  ``<anonymous>``) is kept as it is;
- leading and trailing frames inside the runtime or the convex package's server code
  (``convex/src/server/impl``, ``convex/dist/esm/server/impl``) are left out; the
  frames between them stay;
- each frame prints as ``    at [async ]name (file:line:col)`` with Convex's rules for
  method calls (``Type.`` only when the function name starts with the type name, ``[as m]``
  when it ends with the method name), constructors (``new X``) and anonymous top-level
  code (the location alone).

One difference: Convex passes V8's 1-based line and column to a 0-based source map
lookup and prints the 0-based result; we print the exact 1-based original position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from udf.source_map import OriginalPosition

# What Convex omits at either end of a stack (its udf-runtime and the npm package's
# server implementation); "dist/esm" is the same code when no input map names src/.
_INTERNAL_MARKERS = (
    "udf-runtime/src",
    "convex/src/server/impl",
    "convex/dist/esm/server/impl",
    "convex/dist/cjs/server/impl",
)


def _is_internal(frame: Mapping[str, Any]) -> bool:
    name = frame.get("fileName")
    return isinstance(name, str) and any(m in name for m in _INTERNAL_MARKERS)


def map_frames(
    frames: Iterable[Mapping[str, Any]],
    lookup: Callable[[str, int, int], OriginalPosition | None],
    has_map: Callable[[str], bool],
) -> list[dict[str, Any]]:
    """Frames with mapped positions, runtime ends trimmed (``JsError::from_frames``)."""
    mapped: list[dict[str, Any]] = []
    for raw in frames:
        frame = dict(raw)
        file, line, column = (
            frame.get("fileName"),
            frame.get("lineNumber"),
            frame.get("columnNumber"),
        )
        if isinstance(file, str) and isinstance(line, int) and isinstance(column, int):
            if ":" not in file or not has_map(file):
                continue  # not a module URL, or no source map for it
            position = lookup(file, line, column)
            if position is not None:
                frame.update(fileName=position.source, lineNumber=position.line)
                frame["columnNumber"] = position.column
        if not mapped and _is_internal(frame):
            continue
        mapped.append(frame)
    while mapped and _is_internal(mapped[-1]):
        mapped.pop()
    return mapped


def _location(frame: Mapping[str, Any]) -> str:
    if frame.get("isNative"):
        return "native"
    file = frame.get("fileName")
    if file is not None:
        text = str(file)
    else:
        origin = frame.get("evalOrigin")
        text = f"{origin}, <anonymous>" if frame.get("isEval") and origin else "<anonymous>"
    line, column = frame.get("lineNumber"), frame.get("columnNumber")
    if line is not None:
        text += f":{line}"
        if column is not None:
            text += f":{column}"
    return text


def format_frame(frame: Mapping[str, Any]) -> str:
    """One frame as Convex's ``FrameData`` Display writes it."""
    out = "    at "
    if frame.get("isAsync"):
        out += "async "
    if frame.get("isPromiseAll") and frame.get("promiseIndex") is not None:
        out += f"Promise.all (index {frame['promiseIndex']})"
    fn, type_name, method = (
        frame.get("functionName"),
        frame.get("typeName"),
        frame.get("methodName"),
    )
    is_constructor = bool(frame.get("isConstructor"))
    if not (frame.get("isToplevel") is True or is_constructor):
        if fn:
            if type_name and fn.startswith(type_name):
                out += f"{type_name}."
            out += fn
            if method and fn.endswith(method):
                out += f" [as {method}]"
        else:
            if type_name:
                out += f"{type_name}."
            out += method or "<anonymous>"
    elif is_constructor:
        out += f"new {fn or '<anonymous>'}"
    elif fn:
        out += fn
    else:
        return out + _location(frame)
    return f"{out} ({_location(frame)})"


def render_frames(
    frames: Iterable[Mapping[str, Any]],
    lookup: Callable[[str, int, int], OriginalPosition | None],
    has_map: Callable[[str], bool],
) -> tuple[str, ...]:
    """The stack lines of an error, as a client reads them below its message."""
    return tuple(format_frame(f) for f in map_frames(frames, lookup, has_map))
