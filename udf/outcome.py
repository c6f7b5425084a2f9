"""Plain data the runtime hands back: call outcomes and module analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FunctionKind = Literal["query", "mutation", "action"]
AnalyzedKind = Literal["query", "mutation", "action", "httpAction"]

# CallError.code values.
UNCAUGHT_ERROR = "UncaughtError"  # user code threw (or a syscall it awaited failed)
FUNCTION_NOT_FOUND = "FunctionNotFound"
WRONG_FUNCTION_KIND = "WrongFunctionKind"
NEVER_RESOLVES = "NeverResolves"  # pending promise with nothing left to wait for
TIME_LIMIT = "TimeLimitExceeded"
MEMORY_LIMIT = "MemoryLimitExceeded"


@dataclass(frozen=True)
class CallError:
    """Why a call failed, as the function's caller sees it.

    ``message`` reads ``Uncaught Error: ...`` for thrown errors; ``stack`` holds
    the frames as Convex prints them, mapped to the user's files
    (``    at handler (../convex/messages.ts:9:11)``, ``udf.stack_frames``);
    ``data_json`` is the Convex JSON of a ConvexError's data.
    """

    code: str
    message: str
    data_json: str | None = None
    stack: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The message followed by the stack lines, one per line."""
        return "\n".join((self.message, *self.stack))

    @property
    def is_convex_error(self) -> bool:
        return self.data_json is not None


@dataclass(frozen=True)
class CallOutcome:
    """The end of one call: Convex JSON of the result, or an error; never both.

    ``syscall_count`` counts the handler calls the function made (including
    fire-and-forget notices); ``user_time_s`` is the time spent running JS.
    """

    result_json: str | None
    error: CallError | None
    log_lines: tuple[str, ...]
    syscall_count: int
    user_time_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FunctionInfo:
    """One registered function of a module, as analysis found it."""

    module: str  # "messages.js"
    name: str  # the export name
    kind: AnalyzedKind
    visibility: Literal["public", "internal"] | None
    args_json: str | None  # exportArgs(): the args validator JSON
    returns_json: str | None  # exportReturns(): "null" when none was declared

    @property
    def udf_path(self) -> str:
        """``messages:send`` (``default`` exports are just the module)."""
        stem = self.module.removesuffix(".js")
        return stem if self.name == "default" else f"{stem}:{self.name}"


@dataclass(frozen=True)
class HttpRoute:
    path: str  # "/hello" or a prefix route "/files/*"
    method: str


@dataclass(frozen=True)
class Analysis:
    """What a deployment's modules define."""

    functions: tuple[FunctionInfo, ...]
    http_routes: tuple[HttpRoute, ...]
    schema_json: str | None  # default export of schema.js, ``export()``
    auth_config_json: str | None  # default export of auth.config.js
    crons_json: str | None  # default export of crons.js, ``export()``

    def function(self, module: str, name: str) -> FunctionInfo | None:
        return next((f for f in self.functions if f.module == module and f.name == name), None)
