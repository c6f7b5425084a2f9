"""Benchmark: pushing code to ``headwater serve`` (examples/chat).

Our figure: the server's time for a one-module re-push (start_push, wait_for_schema,
finish_push over loopback; the modules bundled beforehand), against a baseline of
the same push with every module sent. Then, in the same run, the whole commands a
user types: ``npx convex deploy`` (the official CLI: bundling, codegen, typecheck,
push) and ``headwater deploy`` (bundling, push), each a re-deploy with one module
changed. Best of ``RUNS``. Run: ``python -m bench.bench_push``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import print_table, use_test_helpers

ROOT = Path(__file__).resolve().parents[1]
use_test_helpers("gateway")
from cli_process import CONVEX_CLI, Serve, convex_cli_env, headwater  # noqa: E402

from gateway.push_client import call, held_hashes, start_push_request  # noqa: E402
from udf.bundler import bundle  # noqa: E402

CHAT_APP = ROOT / "examples" / "chat" / "convex"
RUNS = 5
COMMAND_TIMEOUT_S = 300


def _push_s(url: str, key: str, modules: tuple, *, send_all: bool) -> float:
    """The three calls of one push (what the server spends, plus loopback round trips)."""
    hashes = {} if send_all else held_hashes(url, key)
    body, _ = start_push_request(key, modules, hashes)
    started = time.perf_counter()
    answer = call(url, key, "/api/deploy2/start_push", body, compress=True)
    wait = {"adminKey": key, "schemaChange": answer["schemaChange"], "timeoutMs": 10000}
    assert call(url, key, "/api/deploy2/wait_for_schema", wait)["type"] == "complete"
    finish = {"adminKey": key, "startPush": answer, "dryRun": False}
    call(url, key, "/api/deploy2/finish_push", finish, compress=True)
    return time.perf_counter() - started


def _timed(command: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{command[:2]} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        functions = project / "convex"
        shutil.copytree(CHAT_APP, functions, ignore=shutil.ignore_patterns("_generated"))
        (project / "package.json").write_text('{"name": "bench", "dependencies": {"convex": "*"}}')
        (project / "node_modules").symlink_to(ROOT / "js" / "node_modules")
        users = functions / "users.ts"
        original = users.read_text()
        with Serve(Path(tmp) / "data") as server:
            url, key = server.url, server.admin_key
            variants = []
            for n in range(2):
                users.write_text(original + f"\nexport const benchMarker{n} = {n};\n")
                variants.append(bundle(functions).modules)
            _push_s(url, key, variants[1], send_all=True)
            one_module = [_push_s(url, key, variants[r % 2], send_all=False) for r in range(RUNS)]
            every_module = [_push_s(url, key, variants[r % 2], send_all=True) for r in range(RUNS)]

            env = convex_cli_env(url, key)
            cli = [str(CONVEX_CLI), "deploy", "--yes"]
            ours = ["headwater", "deploy", str(functions), "--url", url, "--admin-key", key]
            _timed(cli, cwd=project, env=env)  # the first deploy writes _generated/
            npx, own = [], []
            for run in range(RUNS):
                users.write_text(original + f"\nexport const benchRun{run} = {run};\n")
                npx.append(_timed(cli, cwd=project, env=env))
                users.write_text(original + f"\nexport const benchOwn{run} = {run};\n")
                started = time.perf_counter()
                done = headwater(*ours[1:])
                if done.returncode != 0:
                    raise RuntimeError(done.stderr)
                own.append(time.perf_counter() - started)
    rows: list[tuple[object, ...]] = [
        (
            "one-module re-push, server side (ours)",
            min(one_module) * 1e3,
            min(one_module) / min(every_module),
        ),
        ("baseline: every module sent", min(every_module) * 1e3, 1.0),
    ]
    print_table(f"Push of examples/chat (best of {RUNS})", ("what", "ms", "x baseline"), rows)
    rows = [
        ("headwater deploy, one module changed (ours)", min(own), min(own) / min(npx)),
        ("baseline: npx convex deploy, one module changed", min(npx), 1.0),
    ]
    print_table(f"Whole deploy commands (best of {RUNS})", ("what", "seconds", "x npx"), rows)
    print(f"(each: {os.cpu_count()} cores; npx includes codegen and a TypeScript check)")


if __name__ == "__main__":
    main()
