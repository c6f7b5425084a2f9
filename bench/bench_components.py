"""Benchmark: the cost of calling a component's function from a mutation.

tests/e2e/components_app is deployed with the official CLI to ``headwater serve``.
``bench:viaComponent`` adds to a one-shard counter ``ADDS`` times in one
mutation, each addition a call into the @convex-dev/sharded-counter component
(``ctx.runMutation`` of its ``public.add``: an indexed read and a patch in the
component's own table). The baseline, ``bench:viaAppFunction``, is the same code
deployed as an app mutation and called the same way (``ctx.runMutation``), in
the same run; the ratio between the two is the figure (target: at most 1.5x).
``bench:inApp`` shows the code inlined (no nested call at all) for scale. Per
addition: the mutation's time over loopback (best of ``RUNS``) divided by
``ADDS``. Run: ``python -m bench.bench_components``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import print_table, use_test_helpers

ROOT = Path(__file__).resolve().parents[1]
use_test_helpers("gateway")
from cli_process import CONVEX_CLI, Serve, convex_cli_env  # noqa: E402

APP = ROOT / "tests" / "e2e" / "components_app"
ADDS = 50
RUNS = 15
DEPLOY_TIMEOUT_S = 300


def _project(root: Path) -> Path:
    """A copy of the app whose node_modules are hard links (no symlink: the CLI names
    each component by its path under the project)."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    project = root / "project"
    shutil.copytree(APP, project, symlinks=True, copy_function=link_or_copy)
    return project


def _mutation_s(url: str, path: str, args: dict[str, object]) -> float:
    request = urllib.request.Request(
        f"{url}/api/mutation",
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if answer["status"] != "success":
        raise RuntimeError(f"{path} failed: {answer.get('errorMessage')}")
    return elapsed


def main() -> None:
    if not (APP / "node_modules" / "@convex-dev").exists():
        raise SystemExit(f"{APP}/node_modules is missing: run `make setup`")
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp))
        with Serve(Path(tmp) / "data") as server:
            done = subprocess.run(
                [str(CONVEX_CLI), "deploy", "--yes"],
                cwd=project,
                env=convex_cli_env(server.url, server.admin_key),
                capture_output=True,
                text=True,
                timeout=DEPLOY_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npx convex deploy failed:\n{done.stdout}\n{done.stderr}")
            paths = ("bench:viaComponent", "bench:viaAppFunction", "bench:inApp")
            for path in paths:  # warm up, create the shards
                _mutation_s(server.url, path, {"n": ADDS})
            samples: dict[str, list[float]] = {path: [] for path in paths}
            for _ in range(RUNS):  # interleaved, so drift hits all alike
                for path in paths:
                    samples[path].append(_mutation_s(server.url, path, {"n": ADDS}))
    us = {path: min(found) / ADDS * 1e6 for path, found in samples.items()}
    baseline = us["bench:viaAppFunction"]
    ratio = us["bench:viaComponent"] / baseline
    rows: list[tuple[object, ...]] = [
        ("ctx.runMutation of the component's public.add (ours)", us["bench:viaComponent"], ratio),
        ("baseline: ctx.runMutation of the same code as an app function", baseline, 1.0),
        ("the same code inlined (no nested call)", us["bench:inApp"], us["bench:inApp"] / baseline),
    ]
    title = f"One counter addition inside a mutation ({ADDS} per mutation, best of {RUNS})"
    print_table(title, ("what", "us per addition", "x baseline"), rows)
    verdict = "within" if ratio <= 1.5 else "over"
    print(f"component call ratio: {ratio:.2f}x ({verdict} the 1.5x target)")


if __name__ == "__main__":
    main()
