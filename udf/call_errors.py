"""Convex's words for a failed call: the refusals before a function runs, and the
text a failure has when it reaches a caller.

Sources (get-convex/convex-backend): ``crates/udf/src/validation.rs``
(``missing_or_internal_error``, ``new_inner``), ``crates/application/src/lib.rs``
(``any_udf``, behind ``/api/function`` and ``/api/run``), ``crates/common/src/errors.rs``
(``JsError``'s Display) and ``crates/application/src/redaction.rs``
(``RedactedJsError``, what clients get).

A ``JsError`` prints as its message, a newline, then one line per stack frame, each
ending in a newline: ``"Uncaught Error: boom\\n    at handler (../convex/a.ts:3:9)\\n"``.
That text is what a client's ``errorMessage`` carries after ``[Request ID: X] Server
Error\\n``, and what a function that called the failed one through ``ctx.runQuery``
(and friends) sees as the message of the error it catches. Our ``FunctionError.message``
is the same text without its final newline; ``js_error_text`` puts it back.
"""

from __future__ import annotations

from udf.calls import FunctionKind

KIND_NAMES: dict[str, str] = {
    "query": "Query",
    "mutation": "Mutation",
    "action": "Action",
    "httpAction": "HttpAction",
}


def not_found_public(shown_path: str) -> str:
    """A typed call (``/api/query``, sync, nested) of a function that does not exist or
    that the caller may not see; ``shown_path`` is ``messages:send`` (no ``.js``)."""
    return f"Could not find public function for '{shown_path}'."


def not_found_any(shown_path: str) -> str:
    """``/api/function`` and ``/api/run`` (``npx convex run``): the kind is not known yet."""
    return f"Could not find function for '{shown_path}'. Did you forget to run `npx convex dev`?"


def wrong_kind(canonical_path: str, expected: FunctionKind, defined: str) -> str:
    """``canonical_path`` keeps the module's extension: ``messages.js:send``."""
    return (
        f"Trying to execute {canonical_path} as {KIND_NAMES[expected]}, "
        f"but it is defined as {KIND_NAMES[defined]}."
    )


def js_error_text(message: str) -> str:
    """A JsError as Convex prints it: ``FunctionError.message`` and a final newline."""
    return message + "\n"
