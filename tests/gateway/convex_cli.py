"""The official Convex CLI (npm ``convex``) as a user runs it against a `headwater serve`.

It talks to the server on loopback only: Sentry is off (``CI``), telemetry is off,
and its version and provisioning hosts point at a closed loopback port. Each
server gets a project folder (``package.json``, ``node_modules`` linked to ours,
the app in ``convex/``) for the CLI to run in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cli_process import ENV, ROOT

CONVEX_CLI = ROOT / "js" / "node_modules" / ".bin" / "convex"
CLOSED_PORT_URL = "http://127.0.0.1:9"
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
    return dict(
        ENV,
        CONVEX_SELF_HOSTED_URL=server.url,
        CONVEX_SELF_HOSTED_ADMIN_KEY=server.admin_key,
        CONVEX_TELEMETRY_DISABLED="1",
        CI="1",
        CONVEX_VERSION_API_ORIGIN=CLOSED_PORT_URL,
        CONVEX_PROVISION_HOST=CLOSED_PORT_URL,
    )


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
