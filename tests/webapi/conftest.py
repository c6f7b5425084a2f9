"""An isolate holding functions that run the code a test gives them (in an
action, a query or a mutation), and a helper to call them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from udf import Isolate, bundle
from udf.node import ensure_node_modules
from udf.outcome import CallOutcome

FIXTURE_APP = Path(__file__).parent / "fixtures" / "convex"
_EXPORTS = {"action": "inAction", "query": "inQuery", "mutation": "inMutation"}


class NoSyscalls:
    def handle(self, op: str, args_json: str) -> str:
        raise AssertionError(f"unexpected syscall {op}")


@pytest.fixture(scope="session")
def web_isolate(tmp_path_factory: pytest.TempPathFactory):
    ensure_node_modules()
    target = tmp_path_factory.mktemp("webapp") / "convex"
    shutil.copytree(FIXTURE_APP, target)
    iso = Isolate(bundle(target).modules)
    yield iso
    iso.close()


class Runner:
    """``run(code)``: the code (an async function body) in a fresh call."""

    def __init__(self, isolate: Isolate) -> None:
        self._isolate = isolate

    def outcome(
        self,
        code: str,
        kind: str = "action",
        *,
        handler: Any = None,
        input: Any = None,
        **opts: Any,
    ) -> CallOutcome:
        args: dict[str, Any] = {"code": code}
        if input is not None:
            args["input"] = input
        settings: dict[str, Any] = {"seed": 7, "now_ms": 1_700_000_000_000.0, "time_limit_s": 5.0}
        settings.update(opts)
        return self._isolate.run(
            kind, "web.js", _EXPORTS[kind], json.dumps([args]), handler or NoSyscalls(), **settings
        )

    def __call__(self, code: str, kind: str = "action", **kw: Any) -> Any:
        out = self.outcome(code, kind, **kw)
        assert out.error is None, out.error
        return json.loads(out.result_json or "null")

    def error(self, code: str, kind: str = "action", **kw: Any) -> str:
        out = self.outcome(code, kind, **kw)
        assert out.error is not None, out.result_json
        return out.error.message


@pytest.fixture
def run(web_isolate: Isolate) -> Runner:
    return Runner(web_isolate)
