"""fetch() from an action to a loopback server, through `headwater serve` and the
official Python client; an unreachable host fails the action in Convex's words
and the server keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the loopback server lives beside this file
sys.path.insert(0, str(HERE.parent / "gateway"))  # and the serve helper beside the gateway tests
from cli_process import Serve  # noqa: E402
from loopback_server import loopback_server  # noqa: E402

CLIENT_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
CLIENT = """
import json, sys
from convex import ConvexClient

url, good, closed = sys.argv[1:4]
client = ConvexClient(url)
out = {"result": client.action("pages:fetchAndSave", {"url": good})}
try:
    client.action("pages:fetchAndSave", {"url": closed})
except Exception as exc:
    out["error"] = str(exc)
out["saved"] = client.query("pages:list")
print(json.dumps(out))
"""


@pytest.mark.slow
def test_an_action_fetches_from_a_loopback_server(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/echo"
    functions = tmp_path / "app" / "convex"  # serve writes _generated/ beside the functions
    shutil.copytree(HERE / "fixtures" / "fetcher" / "convex", functions)
    serve = Serve(tmp_path / "data", "--functions", str(functions))
    with loopback_server() as upstream, serve as server:
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, server.url, f"{upstream}/echo", closed],
            capture_output=True,
            text=True,
            timeout=120,
            env=CLIENT_ENV,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == {"status": 200, "type": "application/json"}
    assert out["saved"] == [{"body": '{"asked":"hello"}', "method": "POST"}]
    assert (
        f"Uncaught Error: error sending request for url ({closed}): client error (Connect): "
        "tcp connect error: Connection refused (os error 111)"
    ) in out["error"]
