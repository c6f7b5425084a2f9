"""The official Convex CLI (npm ``convex``) as a user runs it against a `headwater serve`.

It talks to the server on loopback only (``cli_process.convex_cli_env``). Each
server gets a project folder (``package.json``, ``node_modules`` linked to ours,
the app in ``convex/``) for the CLI to run in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cli_process import CONVEX_CLI, ROOT, convex_cli_env

STEP_TIMEOUT_S = 60


def make_project(root: Path, app: Path | None = None, name: str = "cli-test") -> Path:
    """A project folder for the CLI; ``app`` (a functions folder) is copied to ``convex/``."""
    project = root / "project"
    if app is not None:
        shutil.copytree(app, project / "convex")
    else:
        (project / "convex").mkdir(parents=True)
    package = {"name": name, "dependencies": {"convex": "*"}}
    (project / "package.json").write_text(json.dumps(package))
    (project / "node_modules").symlink_to(ROOT / "js" / "node_modules")
    return project


def convex_env(server: Any) -> dict[str, str]:
    return convex_cli_env(server.url, server.admin_key)


def npx_convex(
    server: Any, *args: str, cwd: Path | None = None, timeout_s: float = STEP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``npx convex ARGS`` in ``cwd`` (default: the server's ``project``)."""
    return subprocess.run(
        [str(CONVEX_CLI), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd or server.project,
        env=convex_env(server),
        stdin=subprocess.DEVNULL,
    )
