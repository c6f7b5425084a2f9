"""The ``headwater`` command line.

headwater serve [--data DIR] [--host H] [--port P] [--site-port P] [--dashboard-port P]
                [--admin-key K] [--functions DIR]
                [--log-format text|json|none]   (function executions on stderr)
                [--store postgresql://...|mysql://...|sqlite:///... [--advertise URL]]
headwater status --store URL   (the nodes, the leader, their lag: gateway/cli_store.py)
headwater cache-snapshot --data NODE_CACHE --out NEW   (seed a new node: gateway/cli_store.py)
headwater deploy DIR --url URL --admin-key KEY [--allow-empty]   (see gateway/cli_deploy.py)
headwater env set|get|list|remove ...   (see gateway/cli_env.py)
headwater run FUNCTION [ARGS_JSON] [--data DIR] [--functions DIR] [--ts TS]
headwater ts [--data DIR]
headwater codegen DIR
headwater replay [--data DIR]
headwater export / import / kafka-export   (see gateway/cli_export.py)

A failure the user can fix ends with one line on stderr and exit code 1
(``gateway.cli_errors``); ``--ts`` takes ns, base64 or ISO-8601 (``gateway.ts_arguments``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from engine.convex_json import from_convex_json, to_convex_json
from gateway.cli_deploy import add_deploy_command
from gateway.cli_env import add_env_command
from gateway.cli_errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    CliError,
    check_port_free,
    existing_data_folder,
    free_port,
    one_line,
    writable_data_folder,
)
from gateway.cli_export import add_export_commands
from gateway.cli_store import (
    DEFAULT_DATA,
    add_cache_snapshot_command,
    add_status_command,
    add_store_option,
)
from gateway.function_log_printer import LOG_FORMATS
from gateway.ts_arguments import TS_HELP, format_ts, ts_argument

DEFAULT_PORT = 3210
DEFAULT_SITE_PORT = 3211  # HTTP actions (the site origin), as Convex self-hosted serves it
DEFAULT_DASHBOARD_PORT = 6791  # the web dashboard, as Convex self-hosted serves its own


def _cmd_serve(args: argparse.Namespace) -> int:
    from gateway.backend import Backend
    from gateway.dashboard_site import dashboard_app
    from gateway.function_log_printer import print_function_log
    from gateway.memory_release import tune_allocator
    from gateway.server import Site, serve

    tune_allocator()  # before the threads start: see gateway/memory_release.py
    # A server holds many long-lived objects per socket; the default young-generation
    # threshold makes full collections frequent enough to stall live fan-out.
    gc.set_threshold(10_000, 10, 10)

    writable_data_folder(args.data)
    if args.store is not None and args.port == 0:
        args.port = free_port(args.host)  # other nodes must know where to send commits
    check_port_free(args.host, args.port)
    site_port = _site_port(args)
    if site_port:
        check_port_free(args.host, site_port, "--site-port")
    dashboard_port = _dashboard_port(args)  # None: no dashboard; 0: a free port
    if dashboard_port:
        check_port_free(args.host, dashboard_port, "--dashboard-port")
    retention_ns = None if args.retention_hours is None else int(args.retention_hours * 3600e9)
    backend = Backend.open(
        args.data,
        functions_dir=args.functions,
        admin_key=args.admin_key,
        retention_ns=retention_ns,
        store_url=args.store,
        address=args.advertise or _api_address(args.host, args.port),
    )
    backend.watch_functions()
    print_function_log(backend.function_log, sys.stderr, args.log_format)

    def site_ready(url: str) -> None:
        backend.executor.site_url = url

    urls = {"api": "", "dashboard": ""}

    def dashboard_ready(url: str) -> None:
        urls["dashboard"] = url

    def ready(url: str) -> None:
        backend.db.publish_url(url)  # `headwater run` beside us sends its writes here
        backend.executor.cloud_url = url
        urls["api"] = url
        if args.store is not None:
            node = backend.db.cluster
            print(
                f"Headwater node {node.node_id} ({node.role}) of {node.store.describe()} "
                f"is serving at {url} (cache: {args.data})",
                flush=True,
            )
        else:
            print(f"Headwater is serving {args.data} at {url}", flush=True)
        print(f"HTTP actions (convex/http.ts) at {backend.executor.site_url}", flush=True)
        print(f"Admin key: {backend.admin_key}", flush=True)
        if urls["dashboard"]:
            print(
                f"Dashboard: {urls['dashboard']}/dashboard/#admin_key={backend.admin_key}",
                flush=True,
            )
        deployment = backend.executor.deployment
        functions = [] if deployment is None else list(deployment.analysis.functions)
        if functions:
            print(f"Functions: {', '.join(f.udf_path for f in functions)}", flush=True)
        print(_try_line(url, functions), flush=True)

    sites = [Site(backend.site_app, site_port, site_ready)]
    if dashboard_port is not None:
        sites.append(Site(dashboard_app(lambda: urls["api"]), dashboard_port, dashboard_ready))
    try:
        serve(
            backend.app,
            host=args.host,
            port=args.port,
            on_ready=ready,
            on_stop=backend.long_polls.stop,
            sites=sites,
        )
    finally:
        backend.close()
    return 0


def _api_address(host: str, port: int) -> str:
    """Where other nodes reach this one when ``--advertise`` is not given."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _site_port(args: argparse.Namespace) -> int:
    """``--site-port``, else 3211 beside the default API port (Convex self-hosted's
    pair), else a free port: two servers on other ports never fight over 3211."""
    if args.site_port is not None:
        return int(args.site_port)
    return DEFAULT_SITE_PORT if args.port == DEFAULT_PORT else 0


def _dashboard_port(args: argparse.Namespace) -> int | None:
    """``--dashboard-port`` (0: None, no dashboard), else 6791 beside the default API
    port, else a free one (0): two servers on other ports never fight over 6791."""
    if args.dashboard_port is not None:
        return int(args.dashboard_port) or None
    return DEFAULT_DASHBOARD_PORT if args.port == DEFAULT_PORT else 0


def _try_line(url: str, functions: list[Any]) -> str:
    """A command to paste that calls a query of the app actually served."""
    query = _example_query(functions)
    if query is None:
        return f"Deploy functions: headwater deploy convex/ --url {url} --admin-key <the key above>"
    return (
        f"Try: curl -s {url}/api/query -H 'Content-Type: application/json' "
        f'-d \'{{"path": "{query}", "args": {{}}}}\''
    )


def _example_query(functions: list[Any]) -> str | None:
    """The first public query, preferring one that `{}` satisfies."""
    queries = [f for f in functions if f.kind == "query" and f.visibility == "public"]
    no_args = [f for f in queries if _takes_empty_args(f.args_json)]
    chosen = (no_args or queries)[:1]
    return chosen[0].udf_path if chosen else None


def _takes_empty_args(args_json: str | None) -> bool:
    if args_json is None:
        return True
    try:
        validator = json.loads(args_json)
    except ValueError:
        return False
    if validator.get("type") == "any":
        return True
    fields = validator.get("value", {}) if validator.get("type") == "object" else None
    return fields is not None and all(f.get("optional") for f in fields.values())


def _cmd_run(args: argparse.Namespace) -> int:
    from engine.component_tables import component_path_problem
    from gateway.cli_remote import run_function

    try:
        fn_args = from_convex_json(json.loads(args.args), path="args")
    except ValueError as exc:
        print(f"error: ARGS_JSON is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(fn_args, dict):
        print("error: ARGS_JSON must be a JSON object", file=sys.stderr)
        return 2
    problem = component_path_problem(args.component)
    if problem is not None:
        print(f"error: --component {args.component!r}: {problem}", file=sys.stderr)
        return 2
    # With --functions a new data folder is meant; without, a missing one is a typo.
    if args.store is not None:
        pass  # a node of the store's deployment, with a temporary cache
    elif args.functions is None:
        existing_data_folder(args.data)
    else:
        writable_data_folder(args.data)
    # Beside a running server, writes go through it (gateway/cli_remote.py).
    outcome = run_function(
        args.data,
        args.function,
        fn_args,
        functions=args.functions,
        ts=args.ts,
        component_path=args.component,
        store=args.store,
    )
    for line in outcome.log_lines:
        print(line, file=sys.stderr)
    if outcome.error is not None:
        print(_in_headwater_terms(outcome.error.message), file=sys.stderr)
        if outcome.error.is_convex_error:
            print(
                f"ConvexError data: {json.dumps(to_convex_json(outcome.error.data))}",
                file=sys.stderr,
            )
        return 1
    print(json.dumps(to_convex_json(outcome.value), indent=2))
    return 0


def _in_headwater_terms(message: str) -> str:
    """Convex's error texts name its own CLI; on this command line, name ours."""
    ours = "`headwater run ... --functions DIR` or `headwater deploy DIR`"
    return message.replace("`npx convex dev` or `npx convex deploy`", ours).replace(
        "`npx convex dev`", ours
    )


def _cmd_ts(args: argparse.Namespace) -> int:
    from log.lmdb_store import LmdbLog, open_environment
    from log.store_url import open_shared_store

    if args.store is not None:
        store = open_shared_store(args.store)
        try:
            latest = store.latest_ts()
        finally:
            store.close()
    else:
        env = open_environment(existing_data_folder(args.data))
        try:
            latest = LmdbLog(env).latest_ts()
        finally:
            env.close()
    if latest is None:
        raise CliError(f"{args.store or args.data} has no commits yet.")
    print(format_ts(latest))
    return 0


def _cmd_codegen(args: argparse.Namespace) -> int:
    from udf.codegen import write_generated

    if not os.path.isdir(args.dir):
        what = "a file" if os.path.exists(args.dir) else "missing"
        raise CliError(
            f"{args.dir} is {what}: give the folder of Convex functions (usually convex/)."
        )
    out = write_generated(args.dir)
    print(f"Wrote {out}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from engine.recovery import rebuild_projections
    from gateway.cluster_services import rebuild_cache

    if args.store is not None:
        report = rebuild_cache(args.store, args.data)
    else:
        existing_data_folder(args.data)
        report = rebuild_projections(args.data)
    print(
        f"Rebuilt all projections from {report.entries} log entries in "
        f"{report.seconds:.3f} s ({report.entries_per_s:,.0f} entries/s)."
    )
    return 0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _version() -> str:
    try:
        return metadata.version("headwater")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: run `make setup`)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description="A self-hosted reactive backend that speaks the Convex protocol.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"headwater {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)

    serve = command("serve", "serve the HTTP API and live sync")
    serve.add_argument("--data", default=DEFAULT_DATA, help="data folder (created if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    serve.add_argument(
        "--site-port",
        type=int,
        default=None,
        help="port for HTTP actions, the deployment's site URL (default: 3211 with the "
        "default --port, else a free one; 0: a free one); also served under /http/",
    )
    serve.add_argument(
        "--dashboard-port",
        type=int,
        default=None,
        help="port for the web dashboard at /dashboard/ (default: 6791 with the default "
        "--port, else a free one; 0: no dashboard)",
    )
    serve.add_argument(
        "--admin-key", default=None, help="use this admin key (default: the stored or a new one)"
    )
    serve.add_argument("--functions", default=None, help="deploy (and watch) this folder")
    serve.add_argument(
        "--store",
        default=None,
        help="serve the deployment held in this database as one of its nodes: "
        "postgresql://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB or sqlite:///PATH "
        "(--data is then this node's cache, rebuilt from the store when missing or stale)",
    )
    serve.add_argument(
        "--advertise",
        default=None,
        help="with --store: the URL other nodes reach this node's API at "
        "(default: http://HOST:PORT)",
    )
    serve.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        help="keep point-in-time history this long (default: for ever)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="each function execution on stderr: one line (text), one JSON object (json), "
        "or nothing (none)",
    )
    serve.set_defaults(run=_cmd_serve)

    add_deploy_command(sub, HelpFormatter)
    add_env_command(sub, HelpFormatter)
    add_status_command(sub, HelpFormatter)
    add_cache_snapshot_command(sub, HelpFormatter)

    run = command("run", "run one function in-process and print its result")
    run.add_argument("function", help='e.g. "messages:list"')
    run.add_argument("args", nargs="?", default="{}", help="arguments as Convex JSON")
    run.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(run)
    run.add_argument("--functions", default=None, help="deploy this folder first if it changed")
    run.add_argument("--ts", type=ts_argument, default=None, help=f"run a query at this {TS_HELP}")
    run.add_argument(
        "--component",
        default="",
        metavar="PATH",
        help='run the function of this component instance (e.g. "limiter"; default: the app)',
    )
    run.set_defaults(run=_cmd_run)

    ts = command("ts", "print the latest commit ts (ns, base64 and ISO-8601), for --ts")
    ts.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(ts)
    ts.set_defaults(run=_cmd_ts)

    codegen = command("codegen", "write DIR/_generated for a functions folder")
    codegen.add_argument("dir", help="the convex/ functions folder")
    codegen.set_defaults(run=_cmd_codegen)

    replay = command(
        "replay",
        "rebuild every projection from the log (with --store: empty --data, this node's "
        "cache, and rebuild it from the store's log)",
    )
    replay.add_argument("--data", default=DEFAULT_DATA, help="data folder")
    add_store_option(replay)
    replay.set_defaults(run=_cmd_replay)

    add_export_commands(sub, HelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            raise  # our bug: keep the traceback
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
