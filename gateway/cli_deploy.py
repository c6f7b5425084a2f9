"""``headwater deploy DIR --url URL --admin-key KEY``: push a functions folder to a running server.

The folder is bundled here and pushed through the same endpoints as the
official CLI (``gateway.push_client``): only modules the server does not hold
unchanged are sent.

The folder is checked here before anything is sent: a deploy replaces the
whole deployment, so a missing folder, a project folder instead of its
``convex/``, or a folder without function modules would remove every function
of the running app. The last is allowed with ``--allow-empty``; the server
checks again (``udf.deployment``), so no client removes everything by accident.
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gateway.cli_errors import CliError

DEPLOY_TIMEOUT_S = 300


def add_deploy_command(subparsers: Any, formatter: type[argparse.HelpFormatter]) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="push a functions folder to a running server",
        formatter_class=formatter,
    )
    deploy.add_argument("dir", help="the convex/ functions folder")
    deploy.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:3210")
    deploy.add_argument(
        "--admin-key", required=True, help="the key `headwater serve` printed (data/admin_key)"
    )
    deploy.add_argument(
        "--allow-empty",
        action="store_true",
        help="deploy even a folder without functions, removing every deployed function",
    )
    deploy.set_defaults(run=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    from gateway.push_client import PushRefused, push_modules
    from udf.component_bundler import bundle_folder
    from udf.deployment import check_functions_dir, function_module_paths

    url = _server_url(args.url)
    check_functions_dir(args.dir)
    if not args.allow_empty and not function_module_paths(args.dir):
        raise CliError(
            f"{args.dir} has no function modules (.ts/.js files defining queries, mutations "
            "or actions): deploying it would remove every function of the server. "
            "Pass --allow-empty if that is what you want."
        )
    # Here, so imports from outside the folder resolve; with convex.config, by the CLI.
    built, components = bundle_folder(args.dir)
    try:
        result = push_modules(
            url,
            args.admin_key,
            built.modules,
            allow_empty=args.allow_empty,
            node_dependencies=built.node_dependencies,
            components=components,
        )
    except PushRefused as exc:
        if exc.status == 404:
            print(
                f"error: {url} is not a Headwater server (no push endpoint): check --url.",
                file=sys.stderr,
            )
        else:
            print(f"error: {exc.one_line}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(_unreachable(url, exc)) from None
    print(f"Deployed {result.functions} functions at ts {result.ts}.")
    if result.removed:
        print(f"Removed modules: {', '.join(result.removed)}")
    return 0


def _server_url(text: str) -> str:
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CliError(
            f"--url {text} is not a server URL: give it with its scheme, "
            f"e.g. http://{text.split('://')[-1].rstrip('/') or '127.0.0.1:3210'}"
        )
    return text.rstrip("/")


def _unreachable(url: str, exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return f"No server answers at {url}: start it with `headwater serve`, or check --url."
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"The server at {url} did not answer within {DEPLOY_TIMEOUT_S} s."
    if isinstance(reason, socket.gaierror):
        return f"Unknown host in --url {url}: check the address."
    return f"Cannot reach {url}: {reason}."
