"""The ``headwater`` command line.

headwater serve [--data DIR] [--host H] [--port P] [--admin-key K] [--functions DIR]
headwater deploy DIR --url URL --admin-key KEY
headwater run FUNCTION [ARGS_JSON] [--data DIR] [--functions DIR] [--ts TS]
headwater codegen DIR
headwater replay [--data DIR]
headwater export / import / kafka-export   (see gateway/cli_export.py)
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from engine import HeadwaterError
from engine.convex_json import from_convex_json, to_convex_json
from engine.recovery import rebuild_projections
from gateway.cli_export import add_export_commands

DEFAULT_DATA = "headwater_data"
DEFAULT_PORT = 3210


def _cmd_serve(args: argparse.Namespace) -> int:
    from gateway.backend import Backend
    from gateway.memory_release import tune_allocator
    from gateway.server import serve

    tune_allocator()  # before the threads start: see gateway/memory_release.py
    # A server holds many long-lived objects per socket; the default young-generation
    # threshold makes full collections frequent enough to stall live fan-out.
    gc.set_threshold(10_000, 10, 10)

    retention_ns = None if args.retention_hours is None else int(args.retention_hours * 3600e9)
    backend = Backend.open(
        args.data,
        functions_dir=args.functions,
        admin_key=args.admin_key,
        retention_ns=retention_ns,
    )
    backend.watch_functions()

    def ready(url: str) -> None:
        print(f"Headwater is serving {args.data} at {url}", flush=True)
        print(f"Admin key: {backend.admin_key}", flush=True)
        if backend.executor.deployment is not None:
            functions = [f.udf_path for f in backend.executor.deployment.analysis.functions]
            print(f"Functions: {', '.join(functions)}", flush=True)
        print(
            f"Try: curl -s {url}/api/query -H 'Content-Type: application/json' "
            '-d \'{"path": "channels:list", "args": {}}\'',
            flush=True,
        )

    try:
        serve(backend.app, host=args.host, port=args.port, on_ready=ready)
    finally:
        backend.close()
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from gateway.admin_api import zip_functions_dir

    request = urllib.request.Request(
        args.url.rstrip("/") + "/api/headwater/deploy",
        data=zip_functions_dir(args.dir),
        headers={"Authorization": f"Convex {args.admin_key}", "Content-Type": "application/zip"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            report = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            detail = json.loads(body)
            print(f"error: {detail['code']}: {detail['message']}", file=sys.stderr)
        except (ValueError, KeyError):
            print(f"error: {exc.code} {body}", file=sys.stderr)
        return 1
    print(f"Deployed {len(report['functions'])} functions at ts {report['ts']}.")
    if report["removed"]:
        print(f"Removed modules: {', '.join(report['removed'])}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from engine import Database
    from udf.calls import ADMIN, FunctionCall
    from udf.executor import Executor

    try:
        fn_args = from_convex_json(json.loads(args.args), path="args")
    except ValueError as exc:
        print(f"error: ARGS_JSON is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(fn_args, dict):
        print("error: ARGS_JSON must be a JSON object", file=sys.stderr)
        return 2
    with Database.open(args.data) as db:
        executor = Executor(db)
        try:
            if args.functions is not None:
                executor.deploy(args.functions)
            outcome = executor.run(FunctionCall(args.function, fn_args, None, ADMIN, ts=args.ts))
        finally:
            executor.close()
    for line in outcome.log_lines:
        print(line, file=sys.stderr)
    if outcome.error is not None:
        print(outcome.error.message, file=sys.stderr)
        if outcome.error.is_convex_error:
            print(
                f"ConvexError data: {json.dumps(to_convex_json(outcome.error.data))}",
                file=sys.stderr,
            )
        return 1
    print(json.dumps(to_convex_json(outcome.value), indent=2))
    return 0


def _cmd_codegen(args: argparse.Namespace) -> int:
    from udf.codegen import write_generated

    out = write_generated(args.dir)
    print(f"Wrote {out}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    report = rebuild_projections(args.data)
    print(
        f"Rebuilt all projections from {report.entries} log entries in "
        f"{report.seconds:.3f} s ({report.entries_per_s:,.0f} entries/s)."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater", description="A self-hosted reactive backend."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API and live sync")
    serve.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--admin-key", default=None, help="use this admin key")
    serve.add_argument("--functions", default=None, help="deploy (and watch) this folder")
    serve.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        help="keep point-in-time history this long (default: for ever)",
    )
    serve.set_defaults(run=_cmd_serve)

    deploy = sub.add_parser("deploy", help="push a functions folder to a running server")
    deploy.add_argument("dir", help="the convex/ functions folder")
    deploy.add_argument("--url", required=True)
    deploy.add_argument("--admin-key", required=True)
    deploy.set_defaults(run=_cmd_deploy)

    run = sub.add_parser("run", help="run one function in-process and print its result")
    run.add_argument("function", help='e.g. "messages:list"')
    run.add_argument("args", nargs="?", default="{}", help="arguments as Convex JSON")
    run.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    run.add_argument("--functions", default=None, help="deploy this folder first if it changed")
    run.add_argument("--ts", type=int, default=None, help="run a query at this ts (ns)")
    run.set_defaults(run=_cmd_run)

    codegen = sub.add_parser("codegen", help="write DIR/_generated for a functions folder")
    codegen.add_argument("dir")
    codegen.set_defaults(run=_cmd_codegen)

    replay = sub.add_parser("replay", help="rebuild every projection from the log")
    replay.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    replay.set_defaults(run=_cmd_replay)

    add_export_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.run(args))
    except (HeadwaterError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
