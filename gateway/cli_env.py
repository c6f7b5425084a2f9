"""``headwater env set|get|list|remove``: deployment environment variables without Node.

    headwater env set NAME VALUE   [--url URL --admin-key KEY | --data DIR | --store URL]
    headwater env get NAME
    headwater env list             NAME=value lines, by name
    headwater env remove NAME

With ``--url`` the command talks to that server through the endpoints
``npx convex env`` uses (``gateway.env_api``), with ``--admin-key`` or the key
stored in ``--data``. Without it, when no process holds ``--data`` the change
is committed there directly; when a server holds it (its lock names the URL),
the command talks to that server. With ``--store`` it commits as a short-lived
node of the deployment in that store. A refusal is one line with
Convex's error code, and nothing changes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from engine import HeadwaterError
from engine.environment_variables import EnvChange, read_all
from gateway.admin_key_file import read_stored_admin_key
from gateway.cli_errors import CliError, existing_data_folder
from gateway.cli_store import DEFAULT_DATA, add_store_option

_TIMEOUT_S = 60


def add_env_command(subparsers: Any, formatter: type[argparse.HelpFormatter]) -> None:
    env = subparsers.add_parser(
        "env",
        help="set, get, list or remove deployment environment variables",
        description="Deployment environment variables (process.env in functions).",
        epilog=(
            "Each action takes --url URL (talk to that server), --admin-key KEY (default: the "
            "key stored in --data) and --data DIR (default: headwater_data). Without --url: "
            "the server holding --data, or the folder itself when no process holds it."
        ),
        formatter_class=formatter,
    )
    actions = env.add_subparsers(dest="env_action", required=True, metavar="ACTION")
    specs = (
        ("set", "set NAME to VALUE", ("name", "value")),
        ("get", "print the value of NAME", ("name",)),
        ("list", "print every variable as NAME=value", ()),
        ("remove", "remove NAME", ("name",)),
    )
    for action, text, positionals in specs:
        parser = actions.add_parser(action, help=text, description=text, formatter_class=formatter)
        for positional in positionals:
            parser.add_argument(positional, help=positional.upper())
        parser.add_argument("--url", default=None, help="the server, e.g. http://127.0.0.1:3210")
        parser.add_argument(
            "--admin-key", default=None, help="the server's admin key (default: --data's)"
        )
        parser.add_argument("--data", default=DEFAULT_DATA, help="data folder")
        add_store_option(parser)
        parser.set_defaults(run=cmd_env)


def cmd_env(args: argparse.Namespace) -> int:
    target = _Target.of(args)
    try:
        _env_action(args, target)
    finally:
        target.close()
    return 0


def _env_action(args: argparse.Namespace, target: _Target) -> None:
    action = args.env_action
    if action == "set":
        target.update([EnvChange(args.name, args.value)])
        print(f"Successfully set {args.name}")
    elif action == "remove":
        target.update([EnvChange(args.name, None)])
        print(f"Successfully unset {args.name}")
    elif action == "get":
        found = target.list_all()
        if args.name not in found:
            raise CliError(f'Environment variable "{args.name}" not found.')
        print(found[args.name])
    else:
        for name, value in target.list_all().items():
            print(f"{name}={value}")


class _Target:
    """A server (URL and admin key), or the data folder itself when nothing holds it."""

    def __init__(self, url: str | None, admin_key: str | None, db: Any = None) -> None:
        self.url = url
        self.admin_key = admin_key
        self._db = db
        self._node: contextlib.ExitStack | None = None  # --store: a short-lived node

    @classmethod
    def of(cls, args: argparse.Namespace) -> _Target:
        from engine import Database
        from engine.errors import DataFolderBusyError
        from gateway.cli_deploy import _server_url
        from log.folder_lock import busy_error, read_holder

        if args.url is not None:
            key = args.admin_key or _stored_key(args.data, args.url)
            return cls(_server_url(args.url), key)
        if args.store is not None:
            from gateway.cluster_services import store_database

            node = contextlib.ExitStack()
            target = cls(None, None, node.enter_context(store_database(args.store)))
            target._node = node
            return target
        existing_data_folder(args.data)
        try:
            return cls(None, None, Database.open(args.data))
        except DataFolderBusyError:
            holder = read_holder(args.data)
            if holder.url is None:
                raise busy_error(args.data, holder) from None
            key = args.admin_key or _stored_key(args.data, holder.url)
            return cls(holder.url.rstrip("/"), key)

    def close(self) -> None:
        if self._node is not None:
            self._node.close()
        elif self._db is not None:
            self._db.close()

    def update(self, changes: list[EnvChange]) -> None:
        if self._db is not None:
            from udf.executor import Executor

            executor = Executor(self._db)
            try:
                executor.update_environment_variables(changes)
            except HeadwaterError as exc:  # the server's words: the code, then the message
                raise CliError(f"{exc.code}: {exc.message}") from None
            finally:
                executor.close()
            return
        wire = [{"name": c.name, "value": c.value} for c in changes]
        body = json.dumps({"changes": wire}).encode()
        self._request("POST", "/api/update_environment_variables", body)

    def list_all(self) -> dict[str, str]:
        if self._db is not None:
            return dict(self._db.query(read_all).value)
        reply = self._request("GET", "/api/list_environment_variables", None)
        found = json.loads(reply)["environmentVariables"]
        return {name: found[name] for name in sorted(found)}

    def _request(self, method: str, route: str, body: bytes | None) -> bytes:
        from gateway.cli_deploy import _unreachable

        assert self.url is not None
        request = urllib.request.Request(
            self.url + route,
            data=body,
            headers={
                "Authorization": f"Convex {self.admin_key}",
                "Content-Type": "application/json",
            },
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise CliError(_refusal(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(_unreachable(self.url, exc)) from None


def _stored_key(data: str, url: str) -> str:
    try:
        return read_stored_admin_key(data)
    except OSError:
        raise CliError(
            f"Give the admin key of {url} with --admin-key (no key is stored in {data})."
        ) from None


def _refusal(exc: urllib.error.HTTPError) -> str:
    raw = exc.read().decode(errors="replace")
    try:
        detail = json.loads(raw)
        return f"{detail['code']}: {detail['message']}"
    except (ValueError, KeyError, TypeError):
        return f"the server answered {exc.code}: {raw.strip()[:200]}"
