"""Errors of the function runtime, under engine's ``HeadwaterError``.

    HeadwaterError
    ├── SyscallError        a handler refuses a syscall: a user error the function sees
    ├── BundleError         a functions folder does not bundle (names file:line:col)
    │   └── ModuleCompileError  a pushed module cannot be made runnable
    ├── NodeSetupError      node or the npm packages are missing or broken
    └── AnalysisError       a module throws while it is loaded for analysis

Errors of user code during a call are not exceptions: they come back in the
call's outcome (``udf.outcome.CallError``). An exception out of
``Isolate.run`` means the call could not be run at all (a handler bug, a
conflict the runner retries, ...), and nothing the call wrote counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import HeadwaterError


class SyscallError(HeadwaterError):
    """Raised by a syscall handler to reject the syscall's promise in JS.

    ``message`` becomes the JS Error's message; ``data_json`` (Convex JSON
    text), when given, becomes its ``data``, which the npm package rethrows as
    a ``ConvexError`` (used for errors of nested function calls).
    """

    code = "SyscallFailed"

    def __init__(self, message: str, data_json: str | None = None) -> None:
        super().__init__(message)
        self.data_json = data_json


@dataclass(frozen=True)
class BundleMessage:
    """One esbuild diagnostic, with the file relative to the functions folder."""

    text: str
    file: str | None
    line: int | None
    column: int | None
    line_text: str | None

    def render(self) -> str:
        if self.file is None:
            return self.text
        return f"{self.file}:{self.line}:{self.column}: {self.text}"


class BundleError(HeadwaterError):
    """The functions folder could not be bundled; ``errors`` holds every diagnostic."""

    code = "BundleFailed"

    def __init__(self, message: str, errors: tuple[BundleMessage, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors

    @property
    def file(self) -> str | None:
        return self.errors[0].file if self.errors else None

    @property
    def line(self) -> int | None:
        return self.errors[0].line if self.errors else None


class ModuleCompileError(BundleError):
    """A module (pushed or bundled) is not JavaScript the runtime can load."""

    code = "ModuleCompileFailed"


class NodeSetupError(HeadwaterError):
    code = "NodeSetupFailed"


class AnalysisError(HeadwaterError):
    """A module failed while being loaded for analysis (its top-level code threw)."""

    code = "ModuleAnalysisFailed"
