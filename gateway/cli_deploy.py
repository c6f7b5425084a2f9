"""``headwater deploy DIR --url URL --admin-key KEY``: push a functions folder to a running server.

The folder is checked here before anything is sent: a deploy replaces the
whole deployment, so a missing folder, a project folder instead of its
``convex/``, or a folder without function modules would remove every function
of the running app. The last is allowed with ``--allow-empty``; the server
checks again (``udf.deployment``), so no client removes everything by accident.
"""

from __future__ import annotations

import argparse
import json
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
    from gateway.admin_api import zip_functions_dir
    from udf.deployment import check_functions_dir, function_module_paths

    url = _server_url(args.url)
    check_functions_dir(args.dir)
    if not args.allow_empty and not function_module_paths(args.dir):
        raise CliError(
            f"{args.dir} has no function modules (.ts/.js files defining queries, mutations "
            "or actions): deploying it would remove every function of the server. "
            "Pass --allow-empty if that is what you want."
        )
    query = "?allowEmpty=true" if args.allow_empty else ""
    request = urllib.request.Request(
        f"{url}/api/headwater/deploy{query}",
        data=zip_functions_dir(args.dir),
        headers={"Authorization": f"Convex {args.admin_key}", "Content-Type": "application/zip"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=DEPLOY_TIMEOUT_S) as response:
            report = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"error: {_refusal(exc, url)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(_unreachable(url, exc)) from None
    print(f"Deployed {len(report['functions'])} functions at ts {report['ts']}.")
    if report["removed"]:
        print(f"Removed modules: {', '.join(report['removed'])}")
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


def _refusal(exc: urllib.error.HTTPError, url: str) -> str:
    body = exc.read().decode(errors="replace")
    try:
        detail = json.loads(body)
        return f"{detail['code']}: {detail['message']}"
    except (ValueError, KeyError, TypeError):
        pass
    if exc.code == 404:
        return f"{url} is not a Headwater server (no deploy endpoint): check --url."
    return f"the server answered {exc.code}: {body.strip()[:200]}"
