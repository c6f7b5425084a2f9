"""A deployed copy of the dashboard fixture app, and calls of ``_system/dashboard/``
functions as the dashboard makes them (admin identity, by name)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine import Database
from udf.calls import ADMIN, FunctionCall, Identity
from udf.executor import Executor
from udf.function_log import FunctionLog
from udf.scheduler import Scheduler

DASHOPS_APP = Path(__file__).parent / "fixtures" / "dashops" / "convex"


class DashboardApp:
    def __init__(self, root: Path) -> None:
        self.functions = root / "convex"
        shutil.copytree(DASHOPS_APP, self.functions)
        self.db = Database.open(root / "data")
        self.ex = Executor(self.db)
        self.ex.function_log = FunctionLog()
        self.ex.deploy(self.functions)
        self.scheduler = Scheduler(self.ex)
        self.scheduler.start()

    def close(self) -> None:
        self.scheduler.close()
        self.ex.close()
        self.db.close()

    def call(self, name: str, args: dict | None = None, kind: Any = "query", **options: Any):
        path = name if name.startswith("_system/") else f"_system/dashboard/{name}"
        identity = options.pop("identity", ADMIN)
        return self.ex.run(FunctionCall(path, args or {}, kind, identity=identity, **options))

    def ok(self, name: str, args: dict | None = None, kind: Any = "query", **options: Any):
        outcome = self.call(name, args, kind, **options)
        assert outcome.error is None, outcome.error.message
        return outcome.value

    def error(self, name: str, args: dict | None = None, kind: Any = "query") -> str:
        outcome = self.call(name, args, kind)
        assert outcome.error is not None, outcome.value
        return outcome.error.message

    def run(self, path: str, args: dict | None = None, kind: Any = None):
        outcome = self.ex.run(FunctionCall(path, args or {}, kind, identity=ADMIN))
        assert outcome.error is None, outcome.error.message
        return outcome.value

    def redeploy(self, files: dict[str, str | None]) -> None:
        """Write (or, for None, remove) module files, then deploy again."""
        for name, text in files.items():
            path = self.functions / name
            if text is not None:
                path.write_text(text)
            else:
                path.unlink()
        self.ex.deploy(self.functions)


ANONYMOUS_CALLER = Identity()
